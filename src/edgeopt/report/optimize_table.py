"""Terminal rendering of an optimize result (grid or search): the measured candidates,
fastest first, and the verdict of the alternating re-timing."""

from __future__ import annotations

from rich.console import Console

from ..bench.noise import LEGEND, stats_noise
from ..optimizer.result import OptimizeResult
from .bench_table import NOISY_MARK
from .console_table import ConsoleTable, Printer, Styled, columns
from .where import where_measured

SHOWN = 20  # rows of the candidate table; the report lists every trial


def optimize_table(result: OptimizeResult) -> ConsoleTable:
    """The measured candidates (fastest first; a noisy latency marked, the reasons under
    the table), then as notes the fallback log, the notes and the verdict."""
    measured = sorted((t for t in result.trials if t.measured), key=lambda t: t.per_image_ms)
    # The latency is the objective's statistic per image (p50 unless --objective p90); p90
    # and the reasons of the rejected ones are in report.md (the drop says how far off they are).
    table = ConsoleTable(f"{result.strategy}: {len(result.trials)} trials, {len(measured)} measured in full "
                         f"in {result.elapsed_s:.0f} s ({result.quality_metric} drop, latency per image)",
                         columns(("candidate", "name"), "ms/img", "drop", "MB", ("status", "name")))
    shaky = []
    for t in measured[:SHOWN]:
        chosen = t.number == result.winner.number
        why = stats_noise(t.attrs.get("latency_stats") or {}, t.attrs.get("conditions"))
        shaky += [f"{t.label}: {why}"] if why else []
        table.add_row(Styled(t.label, "bold") if chosen else t.label,
                      (f"{t.per_image_ms:.3f}", Styled(NOISY_MARK if why else "", "yellow")),
                      _drop(t), f"{t.size_bytes / 1e6:.2f}", Styled("chosen", "bold green") if chosen else t.status)
    notes: list = [f"latencies and outputs {trials_measured_on(result)}"]
    if shaky:
        notes += [f"{NOISY_MARK} {LEGEND}:", *(f"  {line}" for line in shaky)]
    if len(measured) > SHOWN:
        notes.append(f"... {len(measured) - SHOWN} slower candidates in report.md")
    notes += [f"fallback: {line}" for line in result.fallback] + [f"note: {note}" for note in result.notes]
    c = result.confirm_ms
    notes.append(("chosen ", Styled(result.winner.label, "bold"),
                  f": {c['winner']:.3f} ms per image vs {c['hand_picked']:.3f} for the best hand-picked "
                  f"({result.hand_picked_best.label}) = ", Styled(f"{result.speedup_vs_hand_picked:.2f}x", "bold"),
                  f", vs {c['baseline']:.3f} for fp32 on ONNX Runtime = {result.speedup_vs_baseline:.2f}x"
                  f"{_interval(result.speedup_interval)} (alternating re-timing)"))
    table.notes += notes
    return table


def print_optimize(result: OptimizeResult, console: Console) -> None:
    """:func:`optimize_table` on the console."""
    Printer(console).table(optimize_table(result))


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
