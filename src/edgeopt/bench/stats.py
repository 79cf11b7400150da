"""Latency statistics over per-run times: min, mean, std, p50, p90, p99, max (all in ms).

Percentiles follow the MLPerf LoadGen rule by default (``loadgen/results.cc``:
``sorted_latencies[count * percentile]``, 0-based, the percentile as a fraction): the
result is always a latency that was really observed, and for short runs it rounds
toward the slower side (with 10 runs, p90 and p99 are both the slowest run), which is
the honest reading of a tail from few samples. ``method="linear"`` gives numpy's
default interpolation (Hyndman & Fan type 7) instead, for comparison with tools that
use it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from ..errors import EdgeoptError

PERCENTILE_METHODS = ("loadgen", "linear")


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

    @classmethod
    def from_latencies(cls, latencies_ms: Sequence[float], *, method: str = "loadgen") -> "LatencyStats":
        """Summarise per-run latencies (ms, at least one).

        Raises:
            EdgeoptError: no latencies or an unknown percentile method.
        """
        if len(latencies_ms) == 0:
            raise EdgeoptError("no latencies to summarise: run the benchmark at least once")
        arr = np.asarray(latencies_ms, dtype=np.float64)
        return cls(
            n=int(arr.size),
            min=float(arr.min()),
            mean=float(arr.mean()),
            std=float(arr.std(ddof=1)) if arr.size > 1 else 0.0,
            p50=percentile(arr, 50, method=method),
            p90=percentile(arr, 90, method=method),
            p99=percentile(arr, 99, method=method),
            max=float(arr.max()),
            method=method,
        )

    def to_dict(self) -> dict[str, float | int | str]:
        """{n, min, mean, std, p50, p90, p99, max, method} (ms values as floats)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "LatencyStats":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})
