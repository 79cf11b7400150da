"""Terminal rendering of ``edgeopt compare``: two benchmark runs side by side with the noise."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console

from ..bench.compare import CellComparison
from ..bench.noise import LEGEND
from .bench_table import NOISY_MARK, ms
from .console_table import Cell, ConsoleTable, Printer, Styled, columns

_VERDICT_STYLE = {"B faster": "green", "B slower": "red", "within noise": "dim", "not comparable": "magenta"}


def compare_table(rows: Sequence[CellComparison], a_name: str, b_name: str) -> ConsoleTable:
    """One row per cell: its model (when the runs hold several), both p50s (ms per image)
    with their CV (marked when noisy), B/A with its 95% interval, and the verdict. Under
    the table: the errors, the noisy cells and why, and a line counting the verdicts.
    Fits 80 columns."""
    models = list(dict.fromkeys(r.model for r in rows))
    several = len(models) > 1
    table = ConsoleTable("B / A of p50 latency per image (below 1: B faster)",
                         columns(*([("model", "name")] if several else []), ("cell", "name"), "A p50", "A rcv",
                                 "B p50", "B rcv", "B/A", "95% int.", ("verdict", "name")),
                         before=[f"A = {a_name}", f"B = {b_name}"] + ([] if several else [f"model: {models[0]}"]))
    notes, shaky = [], []
    for r in rows:
        cell = f"{r.backend} b{r.batch} t{r.threads}"
        style = _VERDICT_STYLE.get(r.verdict, "yellow")
        table.add_row(*([r.model] if several else []), cell, ms(r.a_ms), _cv(r.a_cv, r.a_noisy), ms(r.b_ms),
                      _cv(r.b_cv, r.b_noisy), "-" if r.ratio is None else f"{r.ratio:.3f}",
                      "-" if r.low is None else f"{r.low:.3f}-{r.high:.3f}", Styled(r.verdict, style))
        where = f"{r.model} {cell}" if several else cell
        notes += [f"{where}: {r.verdict} ({r.note})"] if r.note else []
        shaky += [f"{where} {side}: {why}" for side, why in (("A", r.a_noisy), ("B", r.b_noisy)) if why]
    table.notes += notes
    if shaky:
        table.notes += [f"{NOISY_MARK} {LEGEND}:", *(f"  {line}" for line in shaky)]
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    table.notes.append(", ".join(f"{n} {v}" for v, n in counts.items()))
    unchecked = sum(r.interference_checked is False for r in rows)
    if unchecked:
        table.notes.append(f"{unchecked} cell(s) compared without checking interference: a run has no recorded "
                           f"conditions (written before edgeopt recorded them)")
    return table


def print_compare(rows: Sequence[CellComparison], a_name: str, b_name: str, console: Console) -> None:
    """:func:`compare_table` on the console."""
    Printer(console).table(compare_table(rows, a_name, b_name))


def _cv(cv: float | None, why: str) -> Cell:
    return ("-" if cv is None else f"{cv:.0%}", Styled(NOISY_MARK if why and cv is not None else "", "yellow"))
