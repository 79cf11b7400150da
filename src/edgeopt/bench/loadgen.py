"""MLPerf's scenarios through MLCommons LoadGen itself (``mlcommons-loadgen``, imported as
``mlperf_loadgen``): LoadGen issues the queries, times them and judges the run; edgeopt is
the system under test (SUT) and the query sample library (QSL).

- The QSL holds the samples in memory (real inputs, or random ones of the model's
  InputSpecs); loading and unloading them is a no-op.
- The SUT puts every issued sample on a queue; one dispatcher thread hands them to a
  :class:`~edgeopt.bench.throughput.ThroughputRunner` over the backend's
  :class:`~edgeopt.backends.pool.InferPool`, which completes each sample with
  ``QuerySamplesComplete`` from the runtime's thread when its inference ends. LoadGen's
  issuing thread never blocks on an inference, so Server's Poisson arrivals keep their
  schedule; SingleStream runs on one stream (one query at a time, as LoadGen issues it);
  MultiStream's queries carry :data:`MULTISTREAM_SAMPLES` samples, as MLPerf's.
- Test settings: PerformanceOnly; ``min_duration_ms`` and ``min_query_count`` from the
  options, so a run can take seconds (a submission needs 600 s and LoadGen's counts);
  Server's target QPS and latency bound, Offline's expected QPS.

LoadGen writes its logs into a temporary folder; :mod:`edgeopt.bench.loadgen_log` reads them.
API: https://github.com/mlcommons/inference/tree/master/loadgen (``bindings/python_api.cc``,
``test_settings.h``); rules: https://github.com/mlcommons/inference_policies (scenarios).
"""

from __future__ import annotations

import math
import queue
import tempfile
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..backends import registry
from ..errors import EdgeoptError
from .._util.requires import require
from .loadgen_log import LoadGenSummary, read_logs
from .throughput import ThroughputResult, ThroughputRunner, closed_loop

if TYPE_CHECKING:
    from ..backends.pool import InferPool
    from ..model import Model

SCENARIOS = ("SingleStream", "MultiStream", "Server", "Offline")
MULTISTREAM_SAMPLES = 8
"""Samples per MultiStream query (MLPerf's since v2.0)."""
RANDOM_SAMPLES = 32
"""Random samples in the QSL when no inputs are given."""
PROBE_SHARE, PROBE_MAX_S = 0.2, 2.0
"""Offline without a target QPS: a closed-loop probe of 20% of the duration (2 s at most)..."""
PROBE_MARGIN = 2.0
"""...sets the expected QPS to twice what it measured: LoadGen's one query then holds 1.1 x 2
x the probed rate x the duration, which lasts past the minimum duration unless the SUT runs
2.2x faster than probed (LoadGen's rule: a run shorter than it is INVALID); the test takes
about 2.2x the duration when the probe was right. On a loaded 2-core machine probes of one
model varied 4x (175 to 700 samples/s), hence the margin."""
MAX_SAMPLES = 1024
"""Samples of a folder the QSL holds at most (all in memory, as MLPerf's performance set;
also at most :data:`edgeopt.bench.real_inputs.MAX_BYTES` of them)."""


@dataclass(frozen=True)
class LoadGenConfig:
    """What LoadGen is asked to run.

    Attributes:
        scenario: one of :data:`SCENARIOS` (any case when built by :meth:`parse`).
        target_qps: Server's target queries/s (``server_target_qps``), Offline's expected
            samples/s (``offline_expected_qps``; None: :func:`run_loadgen` probes it); None
            for the other scenarios.
        latency_bound_ms: Server's latency bound (``server_target_latency_ns``), ms.
        duration_s: minimum test duration (``min_duration_ms``), s.
        min_queries: minimum query count (``min_query_count``).
        samples_per_query: MultiStream's samples per query.
    """

    scenario: str
    target_qps: float | None = None
    latency_bound_ms: float | None = None
    duration_s: float = 10.0
    min_queries: int = 100
    samples_per_query: int = MULTISTREAM_SAMPLES

    @classmethod
    def parse(cls, scenario: str, *, target_qps: float | None = None, latency_bound_ms: float | None = None,
              duration_s: float = 10.0, min_queries: int = 100) -> "LoadGenConfig":
        """A checked config; ``scenario`` matched without regard to case.

        Raises:
            EdgeoptError (one line): an unknown scenario; a target QPS or latency bound
                that is not a positive finite number, given to a scenario that does not
                take it, or missing where it is needed (Server needs both);
                a duration or query count that is not positive.
        """
        canonical = {s.lower(): s for s in SCENARIOS}.get(scenario.strip().lower())
        if canonical is None:
            raise EdgeoptError(f"unknown scenario {scenario!r}: choose from {', '.join(SCENARIOS)}")
        takes = {"target_qps": canonical in ("Server", "Offline"), "latency_bound_ms": canonical == "Server"}
        needs = {"target_qps": canonical == "Server", "latency_bound_ms": canonical == "Server"}
        flags = {"target_qps": "--target-qps", "latency_bound_ms": "--latency-bound"}
        for name, value in (("target_qps", target_qps), ("latency_bound_ms", latency_bound_ms)):
            if value is None:
                if needs[name]:
                    example = "--target-qps 50" if name == "target_qps" else "--latency-bound 30ms"
                    raise EdgeoptError(f"--scenario {canonical} needs {flags[name]}: add e.g. {example}")
                continue
            if not takes[name]:
                raise EdgeoptError(f"{flags[name]} does not apply to --scenario {canonical}: drop it "
                                   f"(it applies to {'Server and Offline' if name == 'target_qps' else 'Server'})")
            if not (math.isfinite(value) and value > 0):
                raise EdgeoptError(f"{flags[name]} {value:g} is not a positive number: give e.g. "
                                   f"{'50' if name == 'target_qps' else '30ms'}")
        if not (math.isfinite(duration_s) and duration_s > 0) or min_queries < 1:
            raise EdgeoptError(f"duration {duration_s:g} s and {min_queries} queries: give a positive duration "
                               f"and at least 1 query")
        return cls(canonical, target_qps, latency_bound_ms, duration_s, min_queries)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return asdict(self)


@dataclass
class LoadGenRun:
    """One LoadGen test of a model on a backend.

    Attributes:
        config: what LoadGen was asked.
        backend, model, model_sha256, threads: the SUT.
        streams: requests the SUT keeps in flight (1 for SingleStream).
        pool_settings: the backend pool's settings.
        samples: samples in the QSL; inputs: where they came from ("random" or a folder).
        summary: LoadGen's own verdict and numbers, read from its logs.
        probed_qps: Offline without a target QPS: the probed samples/s the expected QPS
            was set from (``config.target_qps`` = :data:`PROBE_MARGIN` x it); else None.
    """

    config: LoadGenConfig
    backend: str
    model: str
    model_sha256: str
    threads: int
    streams: int
    pool_settings: dict[str, Any]
    samples: int
    inputs: str
    summary: LoadGenSummary
    probed_qps: float | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: every field, the summary without the raw log texts."""
        d = {k: getattr(self, k) for k in ("backend", "model", "model_sha256", "threads", "streams",
                                           "pool_settings", "samples", "inputs", "probed_qps")}
        return {"config": self.config.to_dict(), **d, "summary": self.summary.to_dict()}


def run_loadgen(model: "Model", backend: str, config: LoadGenConfig, *, threads: int, streams: int,
                samples: Sequence[dict[str, np.ndarray]] | None = None, inputs: str = "random") -> LoadGenRun:
    """Run one LoadGen test (module docstring) and read its verdict.

    Args:
        model: the Model (fed at batch 1).
        backend: registry name, e.g. "ort", "openvino".
        config: from :meth:`LoadGenConfig.parse`.
        threads: total threads of the SUT (>= 1).
        streams: requests in flight (>= 1; SingleStream uses 1 whatever is given).
        samples: batch-1 feeds of the QSL; default :data:`RANDOM_SAMPLES` random ones.
        inputs: where the samples came from, for the record.

    Raises:
        EdgeoptError: mlperf_loadgen is not installed, an inference failed (its error), or
            LoadGen wrote no summary.
        BackendUnavailable: the backend is unknown, missing or cannot load the model.
    """
    lg = require("mlperf_loadgen", "edgeopt loadgen")
    feeds = list(samples) if samples else [model.example_feeds(1) for _ in range(RANDOM_SAMPLES)]
    streams = 1 if config.scenario == "SingleStream" else streams
    pool = registry.require(backend).prepare_pool(model, threads=threads, streams=streams)
    probed = None
    try:
        settings = pool.settings()
        if config.scenario == "Offline" and config.target_qps is None:
            probed = probe_qps(pool, feeds, config.duration_s)
            config = replace(config, target_qps=PROBE_MARGIN * probed)
        sut = _Sut(lg, ThroughputRunner(pool), feeds)
        with tempfile.TemporaryDirectory(prefix="edgeopt-loadgen-") as tmp:
            sut.run_test(_test_settings(lg, config), _log_settings(lg, tmp))
            summary = read_logs(Path(tmp))
    finally:
        pool.close()
    return LoadGenRun(config=config, backend=backend, model=model.name, model_sha256=model.sha256, threads=threads,
                      streams=pool.streams, pool_settings=settings, samples=len(feeds), inputs=inputs,
                      summary=summary, probed_qps=probed)


def probe_qps(pool: "InferPool", feeds: list[dict[str, np.ndarray]], duration_s: float) -> float:
    """Samples/s of ``pool`` in a closed loop of :data:`PROBE_SHARE` x ``duration_s``
    (at most :data:`PROBE_MAX_S`) over ``feeds``: what Offline's expected QPS is set from
    when the user gives none.

    Raises:
        EdgeoptError: an inference failed.
    """
    probe = ThroughputResult(backend=pool.backend, backend_version="", model="", model_sha256="",
                             threads=pool.threads, streams_asked=pool.streams, streams=pool.streams)
    try:
        closed_loop(ThroughputRunner(pool), feeds, probe, min(PROBE_SHARE * duration_s, PROBE_MAX_S), 10)
    except Exception as e:
        raise EdgeoptError(f"an inference failed while probing the throughput: {e}") from e
    probe.derive()
    return probe.throughput


class _Sut:
    """LoadGen's SUT and QSL over a runner (module docstring)."""

    def __init__(self, lg, runner: ThroughputRunner, feeds: list[dict[str, np.ndarray]]) -> None:
        self._lg, self._runner, self._feeds = lg, runner, feeds
        self._issued: queue.SimpleQueue = queue.SimpleQueue()
        self._errors: list[BaseException] = []

    def run_test(self, test_settings, log_settings) -> None:
        """Construct the SUT and QSL, run the test, destroy them; an inference's failure
        is raised after LoadGen ends (every sample is completed, so LoadGen never waits)."""
        lg = self._lg
        dispatcher = threading.Thread(target=self._dispatch, daemon=True, name="edgeopt-loadgen-dispatch")
        dispatcher.start()
        sut = lg.ConstructSUT(self._issue, self._flush)
        qsl = lg.ConstructQSL(len(self._feeds), len(self._feeds), _no_op, _no_op)
        try:
            lg.StartTestWithLogSettings(sut, qsl, test_settings, log_settings)
        finally:
            self._issued.put(None)
            dispatcher.join()
            lg.DestroyQSL(qsl)
            lg.DestroySUT(sut)
        if self._errors:
            raise EdgeoptError(f"an inference failed under LoadGen: {self._errors[0]}")

    def _issue(self, query_samples) -> None:
        for q in query_samples:
            self._issued.put((q.id, q.index))

    def _flush(self) -> None:
        """Nothing is batched or held back, so there is nothing to flush."""

    def _dispatch(self) -> None:
        while True:
            item = self._issued.get()
            if item is None:
                self._runner.wait_all()
                return
            sample_id, index = item
            done = self._completer(sample_id)
            if self._errors:  # after a failure, complete the rest at once: the test is lost anyway
                done(None, None)
                continue
            try:
                self._runner.submit(self._feeds[index], done)
            except Exception as e:  # the sample still completes: LoadGen would wait for it forever
                done(None, e)

    def _completer(self, sample_id: int):
        def done(outputs, error) -> None:
            if error is not None:
                self._errors.append(error)
            # PerformanceOnly: LoadGen logs no response data, so none is handed over
            self._lg.QuerySamplesComplete([self._lg.QuerySampleResponse(sample_id, 0, 0)])
        return done


def _no_op(_indices) -> None:
    """The QSL's load/unload: the samples are in memory from the start."""


def _test_settings(lg, config: LoadGenConfig):
    """LoadGen's TestSettings for ``config`` (module docstring)."""
    ts = lg.TestSettings()
    ts.scenario = getattr(lg.TestScenario, config.scenario)
    ts.mode = lg.TestMode.PerformanceOnly
    ts.min_duration_ms = max(1, round(config.duration_s * 1000))
    # an overloaded SUT never reaches the query count: stop issuing at 3x the duration (+10 s)
    ts.max_duration_ms = ts.min_duration_ms * 3 + 10_000
    ts.min_query_count = config.min_queries
    if config.scenario == "MultiStream":
        ts.multi_stream_samples_per_query = config.samples_per_query
    elif config.scenario == "Server":
        ts.server_target_qps = config.target_qps
        ts.server_target_latency_ns = round(config.latency_bound_ms * 1e6)
    elif config.scenario == "Offline":
        ts.offline_expected_qps = config.target_qps
    return ts


def _log_settings(lg, outdir: str):
    """LoadGen's LogSettings: summary and detail logs into ``outdir``, nothing on stdout, no trace."""
    out = lg.LogOutputSettings()
    out.outdir = outdir
    out.copy_summary_to_stdout = False
    out.copy_detail_to_stdout = False
    ls = lg.LogSettings()
    ls.log_output = out
    ls.enable_trace = False
    return ls
