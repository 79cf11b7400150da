"""One-sided confidence bounds of a rate k of n (top-1 agreement, accuracy), by scipy's
``binomtest(...).proportion_ci``: the one-sided bound at ``confidence`` is one end of the
two-sided ``2 * confidence - 1`` interval. The optimizer passes candidates on Wilson's
lower bound (Wilson 1927, JASA 22); a distillation gives up on the exact upper bound
(Clopper & Pearson 1934, Biometrika 26), which is never too low near 100%.
"""

from __future__ import annotations

from ..errors import EdgeoptError


def rate_bound(k: int, n: int, confidence: float, *, upper: bool, method: str,
               error: type[EdgeoptError] = EdgeoptError) -> float:
    """The one-sided ``confidence`` bound of the rate ``k`` of ``n``, as a fraction in [0, 1].

    Args:
        k: successes (e.g. images whose top-1 agrees with the original), 0..n.
        n: trials (images), >= 1.
        confidence: one-sided confidence level in (0.5, 1).
        upper: the upper bound (else the lower).
        method: "wilson" (score interval) or "exact" (Clopper-Pearson).
        error: the EdgeoptError subclass raised for bad counts (the caller's layer's).

    Raises:
        ``error``: n < 1 or k outside 0..n.
    """
    from scipy import stats  # seconds to import: only when a bound is asked for

    if n < 1 or not 0 <= k <= n:
        raise error(f"a rate needs 0 <= k <= n and n >= 1, got k={k}, n={n}: count the evaluated samples")
    ci = stats.binomtest(int(k), int(n)).proportion_ci(confidence_level=2 * confidence - 1, method=method)
    return float(ci.high if upper else ci.low)
