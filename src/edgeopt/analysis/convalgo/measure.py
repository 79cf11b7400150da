"""Timing the algorithms on one layer, within a time budget shared by many layers.

Each algorithm gets a random float32 input of the layer's shape and its weights prepared
once (the weight transform of Winograd and FFT is load-time work in an inference engine,
so it is not timed). A run is timed with ``time.perf_counter``; the result is the best
of up to ``repeats`` runs (the first run also pays page faults for new buffers; best-of is
the usual estimator of the undisturbed time on a shared machine).

Before a run starts, its time is estimated from its FLOPs (:attr:`AlgoCost.flops`) and
the throughput the same algorithm reached on the largest layer timed so far (tiny layers
are dominated by Python overhead and would make the estimate pessimistic); before any
measurement a conservative prior of 0.5 GFLOP/s is used. A run estimated to take longer
than its share of the remaining budget, or needing more extra memory than allowed, is
skipped with the reason. The estimate can be wrong by a factor of a few, so a budget can
be overrun by at most one run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .registry import get_algorithm
from .spec import AlgoCost, ConvSpec

PRIOR_FLOPS_PER_S = 0.5e9
DEFAULT_MAX_EXTRA_BYTES = 1 << 30  # 1 GiB: keeps the largest im2col buffers of the sweep off swap


@dataclass(frozen=True)
class AlgoResult:
    """One algorithm on one layer.

    Attributes:
        algorithm: registry name.
        cost: the counted arithmetic and memory; None when the algorithm cannot run the layer.
        ms: best measured time in milliseconds; None when not measured.
        runs: timed runs.
        skipped: "" when measured, else why not (unsupported layer, time or memory cap).
    """

    algorithm: str
    cost: AlgoCost | None
    ms: float | None = None
    runs: int = 0
    skipped: str = ""

    def to_dict(self) -> dict:
        """JSON-ready fields (the cost as :meth:`AlgoCost.to_dict`)."""
        return {"algorithm": self.algorithm, "cost": self.cost.to_dict() if self.cost else None,
                "ms": self.ms, "runs": self.runs, "skipped": self.skipped}


class Budget:
    """Wall time shared by a known number of (layer, algorithm) timings.

    Args:
        seconds: the whole budget.
        calls: how many timings will ask for a share.
        slack: a timing may use this many times the average share left (most are far
            below average, a few large layers are above).
    """

    def __init__(self, seconds: float, calls: int, *, slack: float = 4.0) -> None:
        self.deadline = time.perf_counter() + seconds
        self.calls_left = max(1, calls)
        self.slack = slack
        self._largest: dict[str, tuple[float, float]] = {}  # name -> (flops, seconds) of the largest run

    def cap(self) -> float:
        """Seconds the next timing may use: its share of what is left, never more than all of it."""
        left = max(0.0, self.deadline - time.perf_counter())
        return min(left, self.slack * left / self.calls_left)

    def estimate(self, name: str, flops: float) -> float:
        """Estimated seconds of one run of ``name`` doing ``flops`` (module doc)."""
        if name in self._largest:
            f, s = self._largest[name]
            rate = f / s if s > 0 else PRIOR_FLOPS_PER_S
        else:
            rate = PRIOR_FLOPS_PER_S
        return flops / rate

    def record(self, name: str, flops: float, seconds: float) -> None:
        """Remember a measured run (only the largest per algorithm is kept)."""
        if flops >= self._largest.get(name, (0.0, 0.0))[0]:
            self._largest[name] = (flops, seconds)

    def done(self) -> None:
        """One timing finished or was skipped."""
        self.calls_left = max(1, self.calls_left - 1)


def time_runs(fn, *, repeats: int, cap_s: float) -> list[float]:
    """Seconds of up to ``repeats`` calls of ``fn()``, stopping early when another run would
    pass ``cap_s`` in total (at least one run is always made)."""
    times: list[float] = []
    while len(times) < repeats:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if sum(times) + times[-1] > cap_s:
            break
    return times


def measure_layer(spec: ConvSpec, algorithms: Sequence[str], budget: Budget, *, repeats: int = 3,
                  max_extra_bytes: int = DEFAULT_MAX_EXTRA_BYTES, seed: int = 0) -> tuple[AlgoResult, ...]:
    """Count and time each algorithm on a random layer of ``spec``.

    Args:
        spec: the layer.
        algorithms: registry names.
        budget: the shared time budget (its ``done`` is called once per algorithm).
        repeats: best-of runs per algorithm.
        max_extra_bytes: skip an algorithm whose extra memory (:attr:`AlgoCost.extra_bytes`) is larger.
        seed: random input and weights.

    Returns:
        one :class:`AlgoResult` per algorithm, in the given order.

    Raises:
        EdgeoptError: unknown algorithm name.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.input_shape, dtype=np.float32)
    w = rng.standard_normal(spec.weight_shape, dtype=np.float32)
    out = []
    for name in algorithms:
        algo = get_algorithm(name)
        reason = algo.supports(spec)
        if reason:
            out.append(AlgoResult(name, None, skipped=reason))
            budget.done()
            continue
        cost = algo.cost(spec)
        cap, est = budget.cap(), budget.estimate(name, cost.flops)
        if cost.extra_bytes > max_extra_bytes:
            out.append(AlgoResult(name, cost, skipped=f"needs {cost.extra_bytes / 2**20:.0f} MiB extra memory "
                                                      f"> {max_extra_bytes / 2**20:.0f} MiB cap"))
        elif est > cap:
            out.append(AlgoResult(name, cost, skipped=f"estimated {est:.2f} s per run > {cap:.2f} s time cap"))
        else:
            prepared = algo.prepare(w, spec)
            times = time_runs(lambda: algo.run(x, prepared, spec), repeats=repeats, cap_s=cap)
            budget.record(name, cost.flops, min(times))
            out.append(AlgoResult(name, cost, ms=1e3 * min(times), runs=len(times)))
        budget.done()
    return tuple(out)
