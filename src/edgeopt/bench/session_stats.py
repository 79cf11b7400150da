"""The p50's uncertainty when a cell was timed in several fresh sessions.

Why: on this project's 2-core VMs, the same cell timed in two processes a minute apart
gave p50s of 3.8, 5.6 and 7.2 ms (zoo:seednet on ORT at batch 8), each with a 95%
interval over its own runs under 1% wide; fresh sessions in one process differed by
8-12%. A session carries its own luck (where the runtime's thread pool landed, its memory
arena), which no number of runs inside it averages out. An interval over runs then says
"B is 10% slower" of an A/A test. So ``bench`` times each cell in several fresh sessions
(:func:`edgeopt.bench.harness.benchmark`'s ``sessions``) and its p50 interval is a
cluster bootstrap over sessions (Davison & Hinkley, "Bootstrap Methods and their
Application", 1997, section 3.8: resample the clusters, keep each cluster's runs): a
resample draws k sessions with replacement from the k timed and pools their runs.

With k <= :data:`EXACT_MAX` sessions every multiset of sessions is enumerated with its
multinomial probability (10 for k = 3), so the interval is the exact bootstrap
distribution's, not a Monte Carlo estimate of it; above, :data:`RESAMPLES` random draws.
With 3 sessions the interval spans about the fastest to the slowest session's p50: wide
exactly when the sessions disagree.
"""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np

from ..errors import EdgeoptError
from .stats import LEVEL, RESAMPLES

EXACT_MAX = 6
"""Up to this many sessions the bootstrap distribution is enumerated exactly (462 multisets)."""


def split_sessions(values: Sequence[float], sizes: Sequence[int]) -> list[np.ndarray]:
    """``values`` cut into consecutive sessions of ``sizes`` runs each.

    Raises:
        EdgeoptError: the sizes do not add up to the number of values, or one is < 1.
    """
    if sum(sizes) != len(values) or any(s < 1 for s in sizes):
        raise EdgeoptError(f"session sizes {list(sizes)} do not cut {len(values)} runs: "
                           f"pass each session's run count (>= 1), in order")
    ends = np.cumsum(sizes)
    return [np.asarray(values[e - s:e], dtype=np.float64) for s, e in zip(sizes, ends)]


def _pooled_p50(groups: list[np.ndarray], counts: Sequence[int]) -> float:
    """LoadGen p50 (``sorted[n // 2]``) of the runs of each group repeated ``counts`` times."""
    vals = np.concatenate([g for g, c in zip(groups, counts) if c])
    weights = np.concatenate([np.full(g.size, c) for g, c in zip(groups, counts) if c])
    order = np.argsort(vals, kind="stable")
    cum = np.cumsum(weights[order])
    return float(vals[order][np.searchsorted(cum, cum[-1] // 2, side="right")])


def session_p50_distribution(groups: list[np.ndarray], *, resamples: int = RESAMPLES,
                             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The cluster-bootstrap distribution of the pooled p50: (values, probabilities).

    Exact (every multiset of k draws from k sessions, multinomial probabilities) for
    k <= :data:`EXACT_MAX`; else ``resamples`` random draws, each of probability
    1 / resamples.

    Raises:
        EdgeoptError: no sessions.
    """
    k = len(groups)
    if k == 0:
        raise EdgeoptError("no timed session to bootstrap: time the cell at least once")
    if k <= EXACT_MAX:
        vals, probs = [], []
        for combo in itertools.combinations_with_replacement(range(k), k):
            counts = np.bincount(combo, minlength=k)
            ways = math.factorial(k) / np.prod([math.factorial(int(c)) for c in counts])
            vals.append(_pooled_p50(groups, counts))
            probs.append(ways / k ** k)
        return np.asarray(vals), np.asarray(probs)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, k, (resamples, k))
    vals = [_pooled_p50(groups, np.bincount(d, minlength=k)) for d in draws]
    return np.asarray(vals), np.full(resamples, 1.0 / resamples)


def weighted_interval(values: np.ndarray, probs: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    """The (tail, 1 - tail) quantiles of a discrete distribution, tail = (1 - level) / 2:
    the smallest values whose cumulative probability reaches each (inverse CDF)."""
    order = np.argsort(values, kind="stable")
    v, cum = values[order], np.cumsum(probs[order])
    tail = (1 - level) / 2
    lo = v[min(np.searchsorted(cum, tail - 1e-12, side="left"), v.size - 1)]
    hi = v[min(np.searchsorted(cum, 1 - tail - 1e-12, side="left"), v.size - 1)]
    return float(lo), float(hi)


def session_p50_interval(values: Sequence[float], sizes: Sequence[int], *,
                         level: float = LEVEL) -> tuple[float, float]:
    """95% interval (ms) of the pooled p50 of a cell timed in ``len(sizes)`` sessions.

    Args:
        values: every timed run (ms), session after session.
        sizes: runs of each session, in order (>= 2 sessions for a meaningful interval).

    Raises:
        EdgeoptError: sizes that do not cut ``values``.
    """
    return weighted_interval(*session_p50_distribution(split_sessions(values, sizes)), level)


def session_ratio_interval(a: Sequence[float], a_sizes: Sequence[int], b: Sequence[float],
                           b_sizes: Sequence[int], *, level: float = LEVEL) -> tuple[float, float]:
    """95% interval of p50(b) / p50(a) when both cells were timed in several sessions:
    A's and B's sessions resampled independently, every pair of replicates weighted by
    the product of their probabilities.

    Raises:
        EdgeoptError: sizes that do not cut the values.
    """
    va, pa = session_p50_distribution(split_sessions(a, a_sizes))
    vb, pb = session_p50_distribution(split_sessions(b, b_sizes))
    return weighted_interval((vb[None, :] / va[:, None]).ravel(), (pa[:, None] * pb[None, :]).ravel(), level)
