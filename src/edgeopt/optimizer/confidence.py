"""Decisions with confidence: quality bounds and speed ties.

Quality. A candidate passes its budget only when the one-sided 95% *lower* bound of its
agreement clears it, not its point estimate: 131 of 132 images (99.2%) has a lower bound
of 96.5%, and such a candidate agreed on only 98.1% of 324 other crops. For rates (top-1
agreement, accuracy) the bound is Wilson's score interval (E. B. Wilson, "Probable
inference, the law of succession, and statistical inference", JASA 22, 1927), computed by
``scipy.stats.binomtest(...).proportion_ci``; the one-sided 95% bound is the lower end of
the two-sided 90% interval. For task metrics given per sample (mAP, CER, px error) it is
a percentile bootstrap over samples (Efron & Tibshirani, "An Introduction to the
Bootstrap", 1993). ``--max-drop`` keeps its meaning (points lost against the original,
whose agreement with itself is 100%): the budget is met when the drop's one-sided 95%
upper bound, 100 - the agreement's lower bound, is within it.

Speed. Finalists are re-timed in alternating rounds; the ratio of two of them is taken
per round (both saw the same machine state) and its 95% interval is a percentile
bootstrap of the median over rounds. A winner is named only when that interval against
the runner-up excludes 1; otherwise the finalists whose intervals include 1 are tied and
the user's tie-breaker chooses.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from scipy import stats

from .._util.binomial import rate_bound
from ..errors import EdgeoptError

CONFIDENCE = 0.95
RESAMPLES = 2000
TIE_BREAKERS = ("passes", "size")


def wilson_lower(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided lower confidence bound of a rate, as a fraction (Wilson 1927 score interval).

    Args:
        k: successes (e.g. images whose top-1 agrees with the original), 0..n.
        n: trials (images), > 0.
        confidence: one-sided confidence level in (0, 1).

    Raises:
        EdgeoptError: n < 1 or k outside 0..n.
    """
    return rate_bound(k, n, confidence, upper=False, method="wilson")


def min_samples(rate: float, confidence: float = CONFIDENCE) -> int:
    """Smallest n for which a perfect score (n of n) has a one-sided Wilson lower bound of
    at least ``rate`` (a fraction in (0, 1)): the bound of n of n is n / (n + z^2), so
    n >= rate z^2 / (1 - rate). Returns 1 for rate <= 0 and raises for rate >= 1.

    Raises:
        EdgeoptError: rate >= 1 (no finite set shows 100% with confidence).
    """
    if rate <= 0:
        return 1
    if rate >= 1:
        raise EdgeoptError("no evaluation set shows 100% agreement with confidence: give a --max-drop above 0")
    z = float(stats.norm.ppf(confidence))
    n = max(1, math.ceil(rate * z * z / (1 - rate) - 1e-9))
    return n if n / (n + z * z) >= rate else n + 1


def too_small(n: int, max_drop_points: float, confidence: float = CONFIDENCE, what: str = "images") -> str:
    """Why ``n`` samples cannot show an agreement of 100 - ``max_drop_points`` % at this
    confidence even when every one agrees ("" when they can), in ``problem: fix`` form."""
    rate = 1 - max_drop_points / 100
    need = min_samples(rate, confidence) if rate < 1 else math.inf
    if n >= need:
        return ""
    return (f"{n} {what} cannot show {100 * rate:g}% at {100 * confidence:g}% confidence (it takes {need}): "
            f"give more {what} or a larger --max-drop")


def bootstrap_upper(values: Sequence[float], statistic: Callable[[np.ndarray], float] = np.mean, *,
                    confidence: float = CONFIDENCE, resamples: int = RESAMPLES, seed: int = 0) -> float:
    """One-sided upper confidence bound of ``statistic`` of per-sample values (e.g. each
    image's loss against the original, px), percentile bootstrap over samples (Efron &
    Tibshirani 1993).

    Raises:
        EdgeoptError: no values.
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise EdgeoptError("no per-sample values to bound: evaluate at least one sample")
    rng = np.random.default_rng(seed)
    boot = np.array([statistic(x[idx]) for idx in rng.integers(0, x.size, (resamples, x.size))])
    return float(np.percentile(boot, 100 * confidence))


def round_ratio_interval(slow: Sequence[float], fast: Sequence[float], *, resamples: int = RESAMPLES,
                         seed: int = 0) -> tuple[float, float, float]:
    """Speed ratio slow/fast (> 1: ``fast`` is faster) from paired per-round p50s (ms) of
    one alternating re-timing: the median of the per-round ratios and its two-sided 95%
    percentile-bootstrap interval over rounds (Efron & Tibshirani 1993). With 5 rounds
    the interval spans about the smallest to the largest round's ratio, so it excludes 1
    only when every round agrees on the order.

    Returns:
        (ratio, low, high); (nan, nan, nan) when no round has both values.
    """
    a, b = np.asarray(slow, dtype=np.float64), np.asarray(fast, dtype=np.float64)
    ok = np.isfinite(a) & np.isfinite(b) & (b > 0)
    r = a[ok] / b[ok]
    if r.size == 0:
        return math.nan, math.nan, math.nan
    rng = np.random.default_rng(seed)
    boot = np.median(r[rng.integers(0, r.size, (resamples, r.size))], axis=1)
    low, high = np.percentile(boot, [2.5, 97.5])
    return float(np.median(r)), float(low), float(high)


def check_tie_breaker(name: str) -> str:
    """``name`` if it is a tie-breaker (passes, size, runtime:NAME).

    Raises:
        EdgeoptError: any other name.
    """
    if name in TIE_BREAKERS or (name.startswith("runtime:") and len(name) > len("runtime:")):
        return name
    raise EdgeoptError(f"unknown tie-breaker {name!r}: use passes, size or runtime:NAME (e.g. runtime:ort)")


def tie_key(name: str) -> Callable[[int, int, str], tuple]:
    """Sort key over (passes, size in bytes, backend) for a tie-breaker: "passes" (fewer
    passes, then the smaller model), "size" (smaller model, then fewer passes),
    "runtime:NAME" (that runtime first, then fewer passes, then smaller)."""
    check_tie_breaker(name)
    if name == "size":
        return lambda passes, size, backend: (size, passes)
    if name == "passes":
        return lambda passes, size, backend: (passes, size)
    want = name.split(":", 1)[1]
    return lambda passes, size, backend: (backend != want, passes, size)
