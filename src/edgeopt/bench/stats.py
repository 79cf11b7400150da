"""Latency statistics over per-run times: min, mean, std, p50, p90, p99, max (all in ms),
the coefficient of variation and a 95% interval of the p50.

Percentiles follow the MLPerf LoadGen rule by default (``loadgen/results.cc``:
``sorted_latencies[count * percentile]``, 0-based, the percentile as a fraction): the
result is always a latency that was really observed, and for short runs it rounds
toward the slower side (with 10 runs, p90 and p99 are both the slowest run), which is
the honest reading of a tail from few samples. ``method="linear"`` gives numpy's
default interpolation (Hyndman & Fan type 7) instead, for comparison with tools that
use it.

The p50 is the headline everywhere (tables, plots, compare): the mean of a cell with a
few slow runs on a busy machine says little about a typical run (4.31 ms mean against a
0.94 ms p50 at CV 161% was seen). Its uncertainty is a percentile-bootstrap interval
(Efron & Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13) over the timed
runs; the resampled p50s are drawn from their exact bootstrap distribution (Maritz &
Jarrett, JASA 73, 1978: the p50 of a resample is the sorted sample's j-th value with a
binomial probability; drawn here through its beta-distributed order statistic), which is
what Monte Carlo resampling approximates, at O(n log n + resamples) cost instead of
O(n * resamples), so every cell of a sweep can carry one.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import EdgeoptError

PERCENTILE_METHODS = ("loadgen", "linear")
RESAMPLES = 2000
"""Bootstrap resamples behind every p50 interval and ratio interval."""
LEVEL = 0.95
"""Two-sided coverage of the intervals."""


def percentile(values: Sequence[float], q: float, *, method: str = "loadgen") -> float:
    """The ``q``-th percentile (0 <= q <= 100) of ``values``.

    Args:
        values: samples (any unit; latencies in ms here), at least one.
        q: percentile in percent, e.g. 90 for p90.
        method: "loadgen" (MLPerf LoadGen: ``sorted[floor(n * q / 100)]``, clipped to
            the last sample so q=100 is the max) or "linear" (``numpy.percentile``
            default, interpolates between neighbours).

    Raises:
        EdgeoptError: empty ``values``, q outside [0, 100] or an unknown method.
    """
    if len(values) == 0:
        raise EdgeoptError("percentile of no samples: run the benchmark at least once")
    if not 0 <= q <= 100:
        raise EdgeoptError(f"percentile q={q} is outside [0, 100]: pass e.g. 50, 90 or 99")
    if method == "linear":
        return float(np.percentile(np.asarray(values, dtype=np.float64), q))
    if method != "loadgen":
        raise EdgeoptError(
            f"unknown percentile method {method!r}: choose from {', '.join(PERCENTILE_METHODS)}"
        )
    ordered = sorted(float(v) for v in values)
    n = len(ordered)
    # A relative epsilon keeps products that are whole numbers on paper from flooring
    # one rank too low through binary rounding (375 * 18.4 / 100 gives 68.99999999999999).
    idx = math.floor(n * q / 100 * (1 + 1e-12))
    return ordered[min(idx, n - 1)]


def bootstrap_p50s(values: Sequence[float], rng: np.random.Generator, *,
                   resamples: int = RESAMPLES) -> np.ndarray:
    """``resamples`` bootstrap replicates of the LoadGen p50 of ``values`` (see the module
    docstring: drawn from the exact bootstrap distribution, Maritz & Jarrett 1978).

    A resample of n draws with replacement picks sorted index floor(n U) for a uniform U,
    so its p50 (0-based order statistic k = n // 2) is the sorted sample's value at
    floor(n U_(k+1)), where U_(k+1), the (k+1)-th smallest of n uniforms, is
    Beta(k + 1, n - k) distributed (David & Nagaraja, "Order Statistics", 2003, 2.2): one
    beta draw per replicate, exact, with numpy alone (a board's lean install has no scipy).

    Args:
        values: samples (ms here), at least one.
        rng: the random source (seeded by the caller, so results are repeatable).
        resamples: number of replicates (>= 1).

    Returns:
        float64 array of shape (resamples,), every entry one of ``values``.

    Raises:
        EdgeoptError: empty ``values``.
    """
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    n = ordered.size
    if n == 0:
        raise EdgeoptError("a latency sample is empty: bootstrap cells that have timed runs")
    k = n // 2
    idx = np.floor(n * rng.beta(k + 1, n - k, size=resamples)).astype(np.int64)
    return ordered[np.minimum(idx, n - 1)]


def p50_interval(values: Sequence[float], *, resamples: int = RESAMPLES, seed: int = 0,
                 level: float = LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval (Efron & Tibshirani 1993) of the LoadGen p50.

    Args:
        values: per-run latencies (ms), at least one.
        resamples: bootstrap replicates; seed: of the random source (repeatable numbers).
        level: two-sided coverage, e.g. 0.95.

    Returns:
        (low, high) in the unit of ``values``; both are observed values, and low <= p50 <=
        high except in the rare sample whose bootstrap distribution is lopsided.

    Raises:
        EdgeoptError: empty ``values``.
    """
    reps = bootstrap_p50s(values, np.random.default_rng(seed), resamples=resamples)
    tail = (1 - level) / 2 * 100
    # Rounded outward to replicates themselves: the ends are observed runs, never a blend of two.
    low = np.percentile(reps, tail, method="lower")
    high = np.percentile(reps, 100 - tail, method="higher")
    return float(low), float(high)


@dataclass(frozen=True)
class LatencyStats:
    """Summary of per-run latencies, all in milliseconds.

    Attributes:
        n: number of runs summarised.
        min, mean, max: over all runs.
        std: sample standard deviation (ddof=1; 0.0 for a single run), the run-to-run
            spread of the measurement.
        p50, p90, p99: percentiles by ``method``.
        method: percentile method ("loadgen" or "linear", see :func:`percentile`).
        cv: coefficient of variation, std / mean (a fraction: 0.1 is 10%; 0.0 for one run).
        rcv: robust coefficient of variation, 1.4826 * MAD / median (a fraction; 0.0 for one
            run): the spread around the p50 that a few long outliers do not inflate, what
            :mod:`edgeopt.bench.noise` judges (None only in records written before it existed).
        p50_low, p50_high: 95% bootstrap interval of the LoadGen p50 in ms (:func:`p50_interval`;
            None only in records written before it existed).
    """

    n: int
    min: float
    mean: float
    std: float
    p50: float
    p90: float
    p99: float
    max: float
    method: str = "loadgen"
    cv: float = 0.0
    rcv: float | None = None
    p50_low: float | None = None
    p50_high: float | None = None

    @classmethod
    def from_latencies(cls, latencies_ms: Sequence[float], *, method: str = "loadgen",
                       interval: tuple[float, float] | None = None) -> "LatencyStats":
        """Summarise per-run latencies (ms, at least one); ``interval`` is the p50's 95%
        interval when the caller has a better one (over sessions), else it is bootstrapped
        over the runs.

        Raises:
            EdgeoptError: no latencies or an unknown percentile method.
        """
        if len(latencies_ms) == 0:
            raise EdgeoptError("no latencies to summarise: run the benchmark at least once")
        arr = np.asarray(latencies_ms, dtype=np.float64)
        std = float(arr.std(ddof=1)) if arr.size > 1 else 0.0
        mean = float(arr.mean())
        low, high = interval if interval is not None else p50_interval(arr)
        median = float(np.median(arr))
        # 1.4826 makes the MAD estimate the std of a normal distribution (Rousseeuw & Croux 1993).
        mad = 1.4826 * float(np.median(np.abs(arr - median)))
        return cls(
            n=int(arr.size),
            min=float(arr.min()),
            mean=mean,
            std=std,
            p50=percentile(arr, 50, method=method),
            p90=percentile(arr, 90, method=method),
            p99=percentile(arr, 99, method=method),
            max=float(arr.max()),
            method=method,
            cv=std / mean if mean > 0 else 0.0,
            rcv=mad / median if median > 0 else 0.0,
            p50_low=low,
            p50_high=high,
        )

    def to_dict(self) -> dict[str, float | int | str]:
        """{n, min, mean, std, p50, p90, p99, max, method, cv, rcv, p50_low, p50_high} (ms
        values as floats, cv and rcv fractions)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyStats":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
