"""Terminal rendering of ``edgeopt compare``: two benchmark runs side by side with the noise."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.table import Table

from ..bench.compare import CellComparison

_VERDICT_STYLE = {"B faster": "green", "B slower": "red", "within noise": "dim", "not comparable": "magenta"}


def print_compare(rows: Sequence[CellComparison], a_name: str, b_name: str, console: Console) -> None:
    """One row per cell: both medians (ms per image, runs, spread), B/A with its 95%
    interval, and the verdict; a summary line counts the verdicts."""
    table = Table("model", "backend", "b", "t", "A ms/img", "A runs", "A cv", "B ms/img", "B runs", "B cv",
                  "B/A", "95% interval", "verdict",
                  title="B / A of median latency (below 1: B faster); cv = std/mean of a cell's runs")
    for r in rows:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v:.3f}"

        def cv(v: float | None) -> str:
            return "-" if v is None else f"{v:.0%}"

        style = _VERDICT_STYLE.get(r.verdict, "yellow")
        table.add_row(r.model, r.backend, str(r.batch), str(r.threads), ms(r.a_ms), str(r.a_runs), cv(r.a_cv),
                      ms(r.b_ms), str(r.b_runs), cv(r.b_cv), "-" if r.ratio is None else f"{r.ratio:.3f}",
                      "-" if r.low is None else f"{r.low:.3f}..{r.high:.3f}",
                      f"[{style}]{r.verdict}[/{style}]" + (f" ({r.note})" if r.note else ""))
    console.print(f"A = {a_name}\nB = {b_name}")
    console.print(table)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r.verdict] = counts.get(r.verdict, 0) + 1
    console.print(", ".join(f"{n} {v}" for v, n in counts.items()))
    unchecked = sum(r.interference_checked is False for r in rows)
    if unchecked:
        console.print(f"{unchecked} cell(s) compared without checking interference: a run has no recorded "
                      f"conditions (written before edgeopt recorded them)")
