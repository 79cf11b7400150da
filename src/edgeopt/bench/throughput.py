"""Throughput with several inferences in flight: the asynchronous scenario of OpenVINO's
``benchmark_app`` (``-api async -nstreams N``) and of MLPerf's Offline scenario, on any
backend through its :class:`~edgeopt.backends.pool.InferPool`.

The method (closed loop, as benchmark_app's async mode):

1. prepare the pool (``prepare_ms``): N streams sharing the thread count;
2. warm up: one request per stream, then wait for all (not timed);
3. keep every stream busy: a new request starts as soon as one ends, until at least
   ``min_requests`` requests and ``duration_s`` seconds; then wait for the last;
4. throughput = requests x batch / the wall time from the first start to the last end
   (images/s), and the latency of each request from its start to its end, in ms.

A request's latency is timed by :class:`ThroughputRunner` from the moment a stream is free
for it (its own count of free streams) to its ``done``: the time a request waits for a
stream is not in it, as in benchmark_app, whose latencies are its infer requests' own.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..errors import EdgeoptError
from .._util.errorline import error_line
from .environment import machine_info
from .harness import timed_backend
from .stats import LatencyStats

if TYPE_CHECKING:
    from ..backends.pool import Done, InferPool
    from ..model import Model

DEFAULT_MIN_REQUESTS = 10
MIN_CELL_S = 0.2
"""Shortest timed loop a throughput cell gets, whatever its share of a budget."""


@dataclass
class ThroughputResult:
    """One throughput cell: a model on a backend with ``streams`` requests in flight.

    Attributes:
        backend, backend_version, model, model_sha256: as in a latency cell.
        threads: the total thread count asked for.
        streams_asked: requests in flight asked for.
        streams: requests the pool runs at once (OpenVINO caps its streams at the threads).
        batch: images per request (1).
        prepare_ms: time to prepare the pool, ms (None when not reached).
        duration_s: wall time of the timed loop, first start to last end, s.
        latencies_ms: each timed request's latency, ms, in the order they ended.
        stats: min/mean/p50/p90/p99/max of ``latencies_ms`` (derived; None without runs).
        throughput: images/s = requests x batch / duration_s (derived; None without runs).
        settings: the pool's settings (:meth:`InferPool.settings`).
        machine: the environment record.
        error: why the cell did not run, else None.
    """

    backend: str
    backend_version: str
    model: str
    model_sha256: str
    threads: int
    streams_asked: int
    streams: int = 0
    batch: int = 1
    prepare_ms: float | None = None
    duration_s: float | None = None
    latencies_ms: list[float] = field(default_factory=list)
    stats: LatencyStats | None = field(default=None, init=False)
    throughput: float | None = field(default=None, init=False)
    settings: dict[str, Any] = field(default_factory=dict)
    machine: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str | None = None

    def __post_init__(self) -> None:
        self.derive()

    def derive(self) -> None:
        """Recompute ``stats`` and ``throughput`` from the latencies and the duration."""
        ok = bool(self.latencies_ms) and bool(self.duration_s)
        self.stats = LatencyStats.from_latencies(self.latencies_ms) if ok else None
        self.throughput = len(self.latencies_ms) * self.batch / self.duration_s if ok else None

    @property
    def ok(self) -> bool:
        """True when the cell ran and timed at least one request."""
        return self.error is None and self.stats is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``stats`` nested, None without runs)."""
        d = asdict(self)
        d["stats"] = None if self.stats is None else self.stats.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ThroughputResult":
        """Inverse of :meth:`to_dict` (derived fields recomputed)."""
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d and k not in ("stats", "throughput")})


class ThroughputRunner:
    """Requests to an :class:`InferPool`, each timed from when a stream is free for it to its end.

    Args:
        pool: the pool (not owned: the caller closes it).
        clock: monotonic clock in ns (injected by tests).
    """

    def __init__(self, pool: "InferPool", clock: Callable[[], int] = time.perf_counter_ns) -> None:
        self.pool = pool
        self.clock = clock
        self._free = threading.Semaphore(pool.streams)

    def submit(self, feeds: dict[str, np.ndarray], done: "Done",
               timed: Callable[[int, int], None] | None = None) -> None:
        """Start one request once a stream is free; then ``timed(start_ns, end_ns)`` (when
        given) and ``done(outputs, error)`` from the runtime's thread when it ends."""
        self._free.acquire()
        start = self.clock()

        def finished(outputs, error) -> None:
            end = self.clock()
            self._free.release()
            if timed is not None:
                timed(start, end)
            done(outputs, error)

        try:
            self.pool.submit(feeds, finished)
        except BaseException:  # refused at once (a shape the runtime rejects): the stream is free again
            self._free.release()
            raise

    def wait_all(self) -> None:
        """Return when every request submitted so far has ended."""
        self.pool.wait_all()


def infer_all(pool: "InferPool", feeds: Sequence[dict[str, np.ndarray]]) -> list[list[np.ndarray]]:
    """Every feed through the pool, ``pool.streams`` at a time; outputs in the feeds' order.

    Raises:
        the first request's exception, when one failed.
    """
    outputs: list = [None] * len(feeds)
    errors: list[BaseException] = []

    def keep(i: int) -> "Done":
        def done(out, error) -> None:
            outputs[i] = out
            if error is not None:
                errors.append(error)
        return done

    runner = ThroughputRunner(pool)
    for i, f in enumerate(feeds):
        runner.submit(f, keep(i))
    runner.wait_all()
    if errors:
        raise errors[0]
    return outputs


def measure_throughput(model: "Model", backend: str, *, threads: int, streams: int,
                       duration_s: float = 1.0, min_requests: int = DEFAULT_MIN_REQUESTS,
                       feeds: Sequence[dict[str, np.ndarray]] | None = None,
                       clock: Callable[[], int] = time.perf_counter_ns) -> ThroughputResult:
    """Time ``model`` on ``backend`` with ``streams`` requests in flight (module docstring).

    Args:
        model: the Model (batch 1 per request).
        backend: registry name, e.g. "ort", "openvino".
        threads: total threads (>= 1), shared by the streams.
        streams: requests in flight (>= 1).
        duration_s: seconds of the timed loop at least (>= 0).
        min_requests: timed requests at least (>= 1).
        feeds: batch-1 feeds, cycled through the requests; default one random feed
            (``Model.example_feeds(1)``).
        clock: monotonic clock in ns (injected by tests).

    Returns:
        a ThroughputResult; when the backend cannot prepare or run the model, one with
        ``error`` and no runs.

    Raises:
        EdgeoptError: a setting out of range, or an oracle backend (reference).
        BackendUnavailable: an unknown backend name.
    """
    if streams < 1 or threads < 1 or min_requests < 1 or not (math.isfinite(duration_s) and duration_s >= 0):
        raise EdgeoptError(f"threads={threads}, streams={streams}, min_requests={min_requests}, "
                           f"duration_s={duration_s}: give integers >= 1 and a duration >= 0 s")
    be = timed_backend(backend)
    result = ThroughputResult(backend=backend, backend_version=be.version(), model=model.name,
                              model_sha256=model.sha256, threads=threads, streams_asked=streams,
                              machine=machine_info())
    feeds = list(feeds) if feeds else [model.example_feeds(1)]
    start = clock()
    try:
        pool = be.prepare_pool(model, threads=threads, streams=streams)
    except EdgeoptError as e:
        result.error = str(e)
        return result
    result.prepare_ms = (clock() - start) / 1e6
    try:
        result.streams, result.settings = pool.streams, pool.settings()
        closed_loop(ThroughputRunner(pool, clock), feeds, result, duration_s, min_requests)
    except Exception as e:  # a failure to run is the cell's result, not a crash
        result.error = f"{backend} failed with {streams} streams: {error_line(e, limit=300)}"
        result.latencies_ms, result.duration_s = [], None
    finally:
        pool.close()
    result.derive()
    return result


def closed_loop(runner: ThroughputRunner, feeds: list[dict[str, np.ndarray]], result: ThroughputResult,
                duration_s: float, min_requests: int) -> None:
    """Warm-up (one request per stream), then the timed loop of the module docstring's
    step 3 for ``duration_s`` seconds and ``min_requests`` requests at least, cycling over
    ``feeds``; fills ``result.latencies_ms`` and ``result.duration_s`` (call
    :meth:`ThroughputResult.derive` after).

    Raises:
        the first failed request's exception.
    """
    duration_ns = int(duration_s * 1e9)
    errors: list[BaseException] = []

    def done(outputs, error) -> None:
        if error is not None:
            errors.append(error)

    for i in range(runner.pool.streams):
        runner.submit(feeds[i % len(feeds)], done)
    runner.wait_all()
    spans: list[tuple[int, int]] = []
    lock = threading.Lock()

    def timed(start: int, end: int) -> None:
        with lock:
            spans.append((start, end))

    begin = runner.clock()
    issued = 0
    while not errors and (issued < min_requests or runner.clock() - begin < duration_ns):
        runner.submit(feeds[issued % len(feeds)], done, timed)
        issued += 1
    runner.wait_all()
    if errors:
        raise errors[0]
    result.latencies_ms = [(e - s) / 1e6 for s, e in spans]
    result.duration_s = (max(e for _, e in spans) - min(s for s, _ in spans)) / 1e9


def throughput_sweep(model: "Model", backends: Sequence[str], threads: Sequence[int], streams: Sequence[int], *,
                     budget_s: float, feeds: Sequence[dict[str, np.ndarray]] | None = None,
                     clock: Callable[[], float] = time.perf_counter) -> list[ThroughputResult]:
    """One :func:`measure_throughput` cell per (backend, threads, streams), in that order,
    each timed for an even share of what is left of ``budget_s`` (half of it: the other
    half is for preparing and warming up), at least :data:`MIN_CELL_S` (also when nothing
    is left: a command that spent its budget still measures each cell briefly).

    Raises:
        EdgeoptError: a negative budget, or as :func:`measure_throughput`.
    """
    if not budget_s >= 0:
        raise EdgeoptError(f"budget_s={budget_s!r} is invalid: pass a number of seconds >= 0")
    cells = [(b, t, s) for b in backends for t in threads for s in streams]
    start = clock()
    results = []
    for i, (backend, nthreads, nstreams) in enumerate(cells):
        left = budget_s - (clock() - start)
        share = max(left / (len(cells) - i) / 2, MIN_CELL_S)
        results.append(measure_throughput(model, backend, threads=nthreads, streams=nstreams,
                                          duration_s=share, feeds=feeds))
    return results


CELL_BUDGET_S = 2.5
"""Seconds of a command's budget set aside per throughput cell: prepare, warm-up and about
a second of timed loop (latency cells cost more: several sessions, worker processes)."""


def budget_share(budget_s: float, throughput_cells: int) -> float:
    """The fraction of a command's ``budget_s`` (seconds) set aside for its throughput
    cells: :data:`CELL_BUDGET_S` each, at most half of it (the latency cells keep the rest
    and whatever they leave unused goes to the throughput cells)."""
    if throughput_cells <= 0 or budget_s <= 0:
        return 0.0
    return min(throughput_cells * CELL_BUDGET_S / budget_s, 0.5)
