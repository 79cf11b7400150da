"""Terminal rendering of pruning results and sensitivity tables."""

from __future__ import annotations

from typing import Any, Sequence

from .console_table import ConsoleTable, Styled, columns


def prune_table(report: Any) -> ConsoleTable:
    """Per-layer channels before/after of a PruneReport (the layers that lost channels),
    with the MAC and parameter totals and the layers left alone (first 10) as notes."""
    table = ConsoleTable("channels per prunable group",
                         columns(("layer", "name"), "channels before", "after", "removed"))
    for c in report.layers:
        if c.channels_after != c.channels_before:
            table.add_row(c.name, str(c.channels_before), str(c.channels_after),
                          f"{1 - c.channels_after / c.channels_before:.0%}")
    table.notes.append(f"MACs {report.macs_before:,} -> {report.macs_after:,} ({report.macs_removed:.1%} removed); "
                       f"params {report.params_before:,} -> {report.params_after:,}")
    table.notes += [Styled(f"not pruned: {name}: {why}", "dim") for name, why in list(report.skipped.items())[:10]]
    return table




def sensitivity_table(rows: Sequence[dict]) -> ConsoleTable:
    """Rows of :func:`edgeopt.passes.diagnostics.sensitivity.sensitivity_table` as a table
    (the first column names the layer, the others are numbers); a note when there is none."""
    cols = list(rows[0]) if rows else ["layer"]
    table = ConsoleTable("quality drop (points of top-1 agreement) per layer as its own ratio grows",
                         columns((cols[0], "name"), *cols[1:]))
    for r in rows:
        table.add_row(*[f"{v:.1f}" if isinstance(v, float) else str(v) for v in r.values()])
    if not rows:
        table.notes.append("no prunable layer")
    return table
