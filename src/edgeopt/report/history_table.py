"""Terminal rendering of ``edgeopt history``: the runs stored in the results history."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.table import Table

from ..store import RunInfo


def print_history(runs: Sequence[RunInfo], path: str, console: Console) -> None:
    """One row per stored run (use its id as ``history:ID``)."""
    table = Table("id", "kind", "name", "started", "host", "cpu", "cells measured", title=f"results history {path}")
    for r in runs:
        table.add_row(str(r.id), r.kind, r.name, r.started, r.host, r.cpu_model, f"{r.measured}/{r.cells}")
    console.print(table)
