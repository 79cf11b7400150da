"""Terminal rendering of ``edgeopt compare``: two benchmark runs side by side with the noise."""

from __future__ import annotations

from typing import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from ..bench.compare import CellComparison
from ..bench.noise import LEGEND
from .bench_table import NOISY_MARK, ms

_VERDICT_STYLE = {"B faster": "green", "B slower": "red", "within noise": "dim", "not comparable": "magenta"}


def print_compare(rows: Sequence[CellComparison], a_name: str, b_name: str, console: Console) -> None:
    """One row per cell: both p50s (ms per image) with their CV (marked when noisy), B/A with
    its 95% interval, and the verdict; a row naming the model before its cells when the runs
    hold several models. Under the table: the errors, the noisy cells and why, and a line
    counting the verdicts. Fits 80 columns."""
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                  title="B / A of p50 latency per image (below 1: B faster)")
    for name in ("cell", "A p50", "A rcv", "B p50", "B rcv", "B/A", "95% int.", "verdict"):
        table.add_column(name, no_wrap=name != "verdict", justify="left" if name in ("cell", "verdict") else "right")
    models = list(dict.fromkeys(r.model for r in rows))
    notes, shaky = [], []
    for model in models:
        if len(models) > 1:
            table.add_row(f"[bold]{model.removeprefix('zoo:')}[/bold]")
        for r in (r for r in rows if r.model == model):
            cell = f"{r.backend} b{r.batch} t{r.threads}"
            style = _VERDICT_STYLE.get(r.verdict, "yellow")
            table.add_row(cell, ms(r.a_ms), _cv(r.a_cv, r.a_noisy), ms(r.b_ms), _cv(r.b_cv, r.b_noisy),
                          "-" if r.ratio is None else f"{r.ratio:.3f}",
                          "-" if r.low is None else f"{r.low:.3f}-{r.high:.3f}",
                          f"[{style}]{r.verdict}[/{style}]")
            where = f"{model.removeprefix('zoo:')} {cell}" if len(models) > 1 else cell
            notes += [f"{where}: {r.verdict} ({r.note})"] if r.note else []
            shaky += [f"{where} {side}: {why}" for side, why in (("A", r.a_noisy), ("B", r.b_noisy)) if why]
    console.print(f"A = {a_name}\nB = {b_name}")
    if len(models) == 1:
        console.print(f"model: {models[0]}")
    console.print(table)
    for line in notes:
        console.print(line)
    if shaky:
        console.print(f"{NOISY_MARK} {LEGEND}:")
        for line in shaky:
            console.print(f"  {line}")
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()))
    unchecked = sum(r.interference_checked is False for r in rows)
    if unchecked:
        console.print(f"{unchecked} cell(s) compared without checking interference: a run has no recorded "
                      f"conditions (written before edgeopt recorded them)")


def _cv(cv: float | None, why: str) -> str:
    if cv is None:
        return "-"
    return f"{cv:.0%}" + (f"[yellow]{NOISY_MARK}[/yellow]" if why else "")
