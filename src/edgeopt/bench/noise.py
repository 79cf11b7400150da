"""The one rule that calls a benchmark cell noisy, and why.

A cell is noisy when its runs spread so much that its p50 is a weak summary: the
coefficient of variation (std / mean of the timed runs) above :data:`NOISY_CV`. pyperf
warns on the same reading (``pyperf check``: "the standard deviation is N% of the mean"
from 10%, ``pyperf/_cli.py: format_checks``);
benchmark tables and reports mark such a cell, and its p50 interval shows how far the
number can move.

The measurement conditions (other processes' CPU share, steal time, throttling recorded
beside the runs, :mod:`edgeopt.bench.conditions`) add a reason: a result's
``conditions`` record is read with ``getattr``, so a result without one (older files,
other writers) counts as free of interference.
"""

from __future__ import annotations

from typing import Any

from .conditions import interference as conditions_interference

NOISY_CV = 0.10
"""CV (a fraction) above which a cell is noisy: pyperf's threshold for an unstable
benchmark (issue 16 saw an ORT cell at CV 161% on a machine at load 6-10 on 2 cores)."""

LEGEND = f"noisy: CV (std/mean) of the runs above {NOISY_CV:.0%}, or interference recorded"
"""The legend line printed under a table that marks noisy cells."""


def noisy(result: Any) -> str | None:
    """Why ``result`` (a :class:`~edgeopt.bench.harness.BenchResult`) is noisy, or None.

    The reasons of :func:`noise_reason` for its CV and its ``conditions`` record (absent:
    none). A cell without timed runs is not noisy (it has no number to doubt; its error
    says why).
    """
    stats = getattr(result, "stats", None)
    if stats is None:
        return None
    return noise_reason(stats.cv, getattr(result, "conditions", None))


def noise_reason(cv: float | None, conditions: Any = None) -> str | None:
    """The rule itself, for any record of a measurement (a result, a trial's statistics):
    the reasons joined by "; " (a CV above :data:`NOISY_CV`, e.g. "cv 161% > 10%"; the
    interference of the ``conditions`` record, :func:`interference`), or None.

    Args:
        cv: std / mean of the runs (a fraction); None when not known (no CV reason).
        conditions: the measurement's conditions record, or None.
    """
    reasons = []
    if cv is not None and cv > NOISY_CV:
        # One decimal where whole percents would read "cv 10% > 10%".
        shown = f"{cv:.0%}" if f"{cv:.0%}" != f"{NOISY_CV:.0%}" else f"{cv:.1%}"
        reasons.append(f"cv {shown} > {NOISY_CV:.0%}")
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
