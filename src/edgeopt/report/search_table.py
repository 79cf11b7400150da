"""Terminal rendering of an ``optimize --search`` result: the Pareto front and the verdict."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def print_search(result: Any, console: Console) -> None:
    """The Pareto front as a Rich table (latency per image in ms, quality drop in points,
    size in MB), the trial counts, fallback lines and notes, then the verdict with the
    alternating re-timing of the winner against the best hand-picked and the fp32
    baseline (ms per image and speed-ups)."""
    table = Table(title=f"Pareto front ({result.quality_metric} drop vs latency per image)")
    for col in ("trial", "p50 ms/img", "p90 ms", "drop (points)", "size MB", ""):
        table.add_column(col)
    for t in sorted(result.pareto, key=lambda r: r.per_image_ms):
        mark = "chosen" if t.number == result.winner.number else ""
        table.add_row(t.label, f"{t.per_image_ms:.3f}", f"{t.p90_ms:.3f}", f"{t.drop:.2f}",
                      f"{t.size_bytes / 1e6:.2f}", mark)
    console.print(table)
    done = sum(1 for t in result.trials if t.state == "complete" and t.duplicate_of is None)
    console.print(f"{len(result.trials)} trials ({done} measured in full) in {result.elapsed_s:.0f} s")
    for line in result.fallback:
        console.print(f"fallback: {line}")
    for note in result.notes:
        console.print(f"note: {note}")
    c = result.confirm_ms
    console.print(
        f"chosen [bold]{result.winner.label}[/bold]: {c['winner']:.3f} ms per image vs "
        f"{c['hand_picked']:.3f} for the best hand-picked ({result.hand_picked_best.label}) = "
        f"[bold]{result.speedup_vs_hand_picked:.2f}x[/bold], vs {c['baseline']:.3f} for fp32 on "
        f"ONNX Runtime = {result.speedup_vs_baseline:.2f}x (alternating re-timing)")
