"""Terminal rendering of ``edgeopt history``: the runs stored in the results history."""

from __future__ import annotations

from typing import Sequence

from ..store import RunInfo
from .console_table import ConsoleTable, columns


def history_table(runs: Sequence[RunInfo], path: str) -> ConsoleTable:
    """One row per stored run (use its id as ``history:ID``)."""
    table = ConsoleTable(f"results history {path}",
                         columns("id", ("kind", "name"), ("name", "name"), ("started", "name"), ("host", "name"),
                                 ("cpu", "text"), "cells measured"))
    for r in runs:
        table.add_row(str(r.id), r.kind, r.name, r.started, r.host, r.cpu_model, f"{r.measured}/{r.cells}")
    return table
