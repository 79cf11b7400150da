"""The throughput runner: the pools compute what a plain session computes, the runner times
each request from the moment a stream is free for it, and a cell's numbers agree."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import edgeopt
from edgeopt.backends import registry
from edgeopt.backends.pool import InferPool, SessionPool, split_threads
from edgeopt.bench.throughput import ThroughputResult, ThroughputRunner, infer_all, measure_throughput
from edgeopt.errors import EdgeoptError

from support import installed

BACKENDS = ["ort", pytest.param("openvino", marks=pytest.mark.skipif(not installed("openvino"), reason="no OpenVINO"))]


@pytest.fixture(scope="module")
def digits():
    return edgeopt.load_model("zoo:seednet-digits")


@pytest.mark.parametrize("backend", BACKENDS)
def test_pool_outputs_equal_the_plain_sessions(digits, backend):
    rng = np.random.default_rng(0)
    spec = digits.inputs[0]
    feeds = [{spec.name: rng.standard_normal(spec.shape).astype(np.float32)} for _ in range(7)]
    session = registry.get(backend).prepare(digits, threads=2)
    expected = [session.run(f) for f in feeds]
    with registry.get(backend).prepare_pool(digits, threads=2, streams=2) as pool:
        assert pool.streams == 2 and pool.settings()["streams"] == 2
        got = infer_all(pool, feeds)
    assert len(got) == len(feeds)
    for want, out in zip(expected, got):
        assert len(out) == len(want)
        np.testing.assert_allclose(out[0], want[0], rtol=1e-4, atol=1e-5)
    # distinct inputs gave distinct outputs: the order of the results is the feeds' order
    assert not np.allclose(got[0][0], got[1][0])


@pytest.mark.skipif(not installed("openvino"), reason="no OpenVINO")
def test_openvino_runs_the_streams_its_threads_allow(digits):
    with registry.get("openvino").prepare_pool(digits, threads=1, streams=3) as pool:
        props = pool.settings()["properties"]
        assert pool.streams == int(props["NUM_STREAMS"]) == 1
        assert props["PERFORMANCE_HINT"] == "THROUGHPUT" and props["INFERENCE_PRECISION_HINT"] == "f32"


def test_session_pool_splits_the_threads_and_reports_it(digits):
    assert [split_threads(4, s) for s in (1, 2, 3, 4, 8)] == [4, 2, 1, 1, 1]
    with pytest.raises(EdgeoptError):
        split_threads(2, 0)
    with registry.get("ort").prepare_pool(digits, threads=4, streams=2) as pool:
        s = pool.settings()
        assert isinstance(pool, SessionPool)
        assert (s["streams"], s["threads"], s["threads_per_stream"]) == (2, 4, 2)
        assert s["session"]["intra_op_num_threads"] == 2


class _InstantPool(InferPool):
    """A pool whose requests end inside submit (the clock decides their latency)."""

    def __init__(self, clock_steps: list[int], streams: int = 2) -> None:
        self.backend, self.threads, self.streams = "fake", 1, streams
        self.steps = clock_steps

    def submit(self, feeds, done) -> None:
        self.steps.append(feeds["ns"])  # the request takes this long on the injected clock
        done([np.zeros(1)], None)

    def wait_all(self) -> None:
        pass

    def settings(self):
        return {"streams": self.streams}


def test_runner_times_each_request_on_the_injected_clock():
    now = [0]
    steps: list[int] = []

    def clock() -> int:
        if steps:
            now[0] += steps.pop()
        return now[0]

    runner = ThroughputRunner(_InstantPool(steps), clock=clock)
    spans = []
    for ns in (1_000_000, 3_000_000, 2_000_000):
        runner.submit({"ns": ns}, lambda out, err: None, timed=lambda s, e: spans.append((s, e)))
    assert [(e - s) for s, e in spans] == [1_000_000, 3_000_000, 2_000_000]
    assert spans[1][0] == spans[0][1]  # back to back: the next starts when the last ended


def test_result_derives_throughput_and_percentiles():
    r = ThroughputResult(backend="ort", backend_version="", model="m", model_sha256="x", threads=2, streams_asked=2,
                         streams=2, duration_s=0.5, latencies_ms=[float(x) for x in range(1, 101)])
    assert r.ok and r.throughput == pytest.approx(200.0)
    assert (r.stats.p50, r.stats.p90, r.stats.p99) == (51.0, 91.0, 100.0)
    back = ThroughputResult.from_dict(r.to_dict())
    assert back.throughput == r.throughput and back.stats == r.stats


@pytest.mark.parametrize("backend", BACKENDS)
def test_measure_throughput_on_a_real_model(digits, backend):
    r = measure_throughput(digits, backend, threads=2, streams=2, duration_s=0.0, min_requests=30)
    assert r.ok, r.error
    assert r.streams == 2 and len(r.latencies_ms) >= 30 and r.prepare_ms > 0
    assert r.throughput == pytest.approx(len(r.latencies_ms) / r.duration_s)
    s = r.stats
    assert 0 < s.min <= s.p50 <= s.p90 <= s.p99 <= s.max


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_request_is_the_cells_error(digits, backend):
    bad = [{digits.inputs[0].name: np.zeros((1, 2, 3), np.float32)}]
    r = measure_throughput(digits, backend, threads=1, streams=2, duration_s=0.0, min_requests=2, feeds=bad)
    assert not r.ok and r.error.startswith(f"{backend} failed with 2 streams") and r.latencies_ms == []


def test_a_failing_callback_surfaces_in_wait_all(digits):
    with registry.get("ort").prepare_pool(digits, threads=1, streams=1) as pool:
        def boom(out, err):
            raise RuntimeError("callback bug")
        pool.submit(digits.example_feeds(1), boom)
        with pytest.raises(RuntimeError, match="callback bug"):
            pool.wait_all()
        # the stream lives on
        done = threading.Event()
        pool.submit(digits.example_feeds(1), lambda out, err: done.set())
        pool.wait_all()
        assert done.is_set()


def test_settings_out_of_range_are_refused(digits):
    with pytest.raises(EdgeoptError, match="streams=0"):
        measure_throughput(digits, "ort", threads=1, streams=0)
    with pytest.raises(EdgeoptError, match="oracle"):
        measure_throughput(digits, "reference", threads=1, streams=1)
