"""Terminal rendering of an optimize result (same rows as the Markdown/HTML report)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..optimizer.select import OptimizeResult, result_summary
from .optimize_report import COLUMNS, candidate_rows


def print_optimize(result: OptimizeResult, console: Console) -> None:
    """Print the candidate table and the verdict."""
    summary = result_summary(result)
    table = Table(*COLUMNS, title=f"candidates for {result.model.source}")
    for row in candidate_rows(summary):
        table.add_row(*[cell.replace("**", "") for cell in row])
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]{note}[/yellow]")
    console.print(
        f"chosen: [bold]{result.winner.label}[/bold]: p50 {result.confirm_p50_ms['winner']:.3f} ms vs "
        f"{result.confirm_p50_ms['baseline']:.3f} ms for {result.baseline.label} "
        f"({result.confirmed_speedup:.2f}x, alternating re-timing)"
    )
