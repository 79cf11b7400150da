"""Terminal rendering of an optimize result (grid or search): the measured candidates,
fastest first, and the verdict of the alternating re-timing."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..bench.noise import LEGEND, stats_noise
from ..optimizer.result import OptimizeResult
from .bench_table import NOISY_MARK
from .where import where_measured

SHOWN = 20  # rows of the candidate table; the report lists every trial


def print_optimize(result: OptimizeResult, console: Console) -> None:
    """Print the measured candidates (fastest first; a noisy latency marked, the reasons
    under the table), the fallback log, the notes and the verdict."""
    measured = sorted((t for t in result.trials if t.measured), key=lambda t: t.per_image_ms)
    table = Table(title=f"{result.strategy}: {len(result.trials)} trials, {len(measured)} measured in full "
                        f"in {result.elapsed_s:.0f} s ({result.quality_metric} drop, latency per image)")
    # The label is the thing to read (and to type): never cut or folded; the reasons of the
    # rejected ones are in report.md, the drop column already says how far off they are.
    table.add_column("candidate", no_wrap=True)
    # The latency is the objective's statistic per image (p50 unless --objective p90);
    # 80 columns hold these five, p90 and the reasons are in report.md.
    for col in ("ms/img", "drop", "MB"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True, min_width=8)
    shaky = []
    for t in measured[:SHOWN]:
        status = "chosen" if t.number == result.winner.number else t.status
        why = stats_noise(t.attrs.get("latency_stats") or {}, t.attrs.get("conditions"))
        shaky += [f"{t.label}: {why}"] if why else []
        table.add_row(t.label, f"{t.per_image_ms:.3f}" + (f"[yellow]{NOISY_MARK}[/yellow]" if why else ""),
                      _drop(t), f"{t.size_bytes / 1e6:.2f}", status)
    console.print(table)
    console.print(f"latencies and outputs {trials_measured_on(result)}")
    if shaky:
        console.print(f"{NOISY_MARK} {LEGEND}:")
        for line in shaky:
            console.print(f"  {line}")
    if len(measured) > SHOWN:
        console.print(f"... {len(measured) - SHOWN} slower candidates in report.md")
    for line in result.fallback:
        console.print(f"fallback: {line}")
    for note in result.notes:
        console.print(f"note: {note}")
    c = result.confirm_ms
    console.print(
        f"chosen [bold]{result.winner.label}[/bold]: {c['winner']:.3f} ms per image vs "
        f"{c['hand_picked']:.3f} for the best hand-picked ({result.hand_picked_best.label}) = "
        f"[bold]{result.speedup_vs_hand_picked:.2f}x[/bold], vs {c['baseline']:.3f} for fp32 on "
        f"ONNX Runtime = {result.speedup_vs_baseline:.2f}x{_interval(result.speedup_interval)} "
        f"(alternating re-timing)")


def trials_measured_on(result: OptimizeResult) -> str:
    """Where the measured trials ran (:func:`~edgeopt.report.where.where_measured`): here,
    or each board that measured one, emulated or not."""
    emulated = result.machine.get("emulated")
    return where_measured({"device": t.attrs.get("device"), "emulated": emulated}
                          for t in result.trials if t.measured)


def _drop(t) -> str:
    """The drop, and its 95% upper bound when the verdict was judged on it ("0.76 ≤3.30")."""
    bound = t.attrs.get("drop_bound")
    return f"{t.drop:.2f}" if bound is None else f"{t.drop:.2f} ≤{bound:.2f}"


def _interval(span: tuple[float, float]) -> str:
    low, high = span
    return "" if low != low or high != high else f" [{low:.2f}..{high:.2f}]"
