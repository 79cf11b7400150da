"""Terminal rendering of pruning results and sensitivity tables."""

from __future__ import annotations

from typing import Any, Sequence

from rich.console import Console
from rich.table import Table


def print_prune(report: Any, console: Console) -> None:
    """Per-layer channels before/after and the MAC and parameter totals of a PruneReport."""
    table = Table("layer", "channels before", "after", "removed", title="channels per prunable group")
    for c in report.layers:
        if c.channels_after != c.channels_before:
            table.add_row(c.name[:40], str(c.channels_before), str(c.channels_after),
                          f"{1 - c.channels_after / c.channels_before:.0%}")
    console.print(table)
    console.print(
        f"MACs {report.macs_before:,} -> {report.macs_after:,} ({report.macs_removed:.1%} removed); "
        f"params {report.params_before:,} -> {report.params_after:,}"
    )
    for name, why in list(report.skipped.items())[:10]:
        console.print(f"[dim]not pruned: {name}: {why}[/dim]")


def print_sensitivity(rows: Sequence[dict], console: Console) -> None:
    """Rows of :func:`edgeopt.passes.diagnostics.sensitivity.sensitivity_table` as a table."""
    if not rows:
        console.print("no prunable layer")
        return
    cols = list(rows[0])
    table = Table(*cols, title="quality drop (points of top-1 agreement) per layer as its own ratio grows")
    for r in rows:
        table.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()])
    console.print(table)
