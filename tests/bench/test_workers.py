"""A sweep's sessions: session-major order, pooled per cell, each session index in its own process."""

from __future__ import annotations

import os

import pytest

from edgeopt import load_model
from edgeopt._util.deadline import FakeClock
from edgeopt.bench import workers as workers_mod
from edgeopt.bench.harness import BenchResult, merge_sessions
from edgeopt.bench.sweep import sweep
from edgeopt.bench.workers import SessionWorkers


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


class _Steps:
    """Stands in for benchmark(): logs each session step; a run takes ~0.1 s x batch on the clock."""

    def __init__(self, clock: FakeClock, fail=()):
        self.clock, self.fail, self.log = clock, set(fail), []

    def __call__(self, model, backend, *, batch, threads, min_runs, max_time_s, sessions, **kw):
        assert sessions == 1  # a step is one fresh session
        self.log.append((backend, batch, min_runs))
        if (backend, batch) in self.fail:
            return BenchResult(backend, "1", model.name, model.sha256, batch, threads, error=f"{backend} broke")
        lat = [100.0 * batch + len(self.log)] * min_runs  # each session its own speed
        self.clock.advance(sum(lat) / 1e3)
        return BenchResult(backend, "1", model.name, model.sha256, batch, threads, prepare_ms=1.0,
                           first_ms=1.0, latencies_ms=lat, stop_reason="target",
                           conditions={"pid": len(self.log), "other_cpu_pct": float(len(self.log))})


def test_sessions_run_session_major_and_pool_per_cell(seednet, monkeypatch) -> None:
    clock = FakeClock()
    steps = _Steps(clock, fail={("ort", 8)})
    monkeypatch.setattr(workers_mod, "benchmark", steps)
    a, b = sweep(seednet, ["ort"], [1, 8], 1, budget_s=100.0, sessions=3, min_runs=10, progress=False,
                 clock=clock)
    # Every cell's first session, then every cell's second ...; the failed cell is not retried.
    assert steps.log == [("ort", 1, 4), ("ort", 8, 4), ("ort", 1, 4), ("ort", 1, 4)]
    assert a.ok and a.session_runs == [4, 4, 4] and a.latencies_ms == [101.0] * 4 + [103.0] * 4 + [104.0] * 4
    assert a.conditions["session_pids"] == [1, 3, 4] and a.conditions["other_cpu_pct"] == 4.0
    assert a.stats.p50_low == pytest.approx(101.0) and a.stats.p50_high == pytest.approx(104.0)
    assert b.error == "ort broke" and b.latencies_ms == [] and b.session_runs == []


def test_a_session_the_budget_cannot_fit_leaves_the_cell_its_earlier_sessions(seednet, monkeypatch) -> None:
    clock = FakeClock()
    steps = _Steps(clock)
    monkeypatch.setattr(workers_mod, "benchmark", steps)
    # ~0.4 s per session (4 runs): two fit in 1.0 s, the third's floor (0.3 s x 1.5 margin) does not
    (cell,) = sweep(seednet, ["ort"], [1], 1, budget_s=1.0, sessions=3, min_runs=10, progress=False, clock=clock)
    assert len(steps.log) == 2 and cell.ok and cell.session_runs == [4, 4]


def test_merge_sessions_of_one_is_that_session_and_of_none_is_refused() -> None:
    one = BenchResult("ort", "1", "m", "0", 1, 1, latencies_ms=[1.0, 2.0])
    assert merge_sessions([one], 3) is one
    empty = BenchResult("ort", "1", "m", "0", 1, 1)
    assert merge_sessions([one, empty], 2).error == "ort session 2 of 2 had no timed runs"
    with pytest.raises(ValueError, match="at least one"):
        merge_sessions([], 1)


def test_each_session_index_runs_in_its_own_fresh_process(seednet) -> None:
    (cell,) = sweep(seednet, ["ort"], [1], 1, budget_s=60.0, sessions=2, isolate=True, min_runs=6,
                    min_time_s=0.0, progress=False)
    pids = cell.conditions["session_pids"]
    assert cell.ok and cell.session_runs and len(cell.session_runs) == 2
    assert len(set(pids)) == 2 and os.getpid() not in pids


def test_a_dead_worker_is_its_sessions_error_and_is_replaced(seednet, monkeypatch) -> None:
    with SessionWorkers(seednet, 1, ["ort"]) as workers:
        first = workers.run(0, "ort", batch=1, threads=1, min_runs=2, min_time_s=0.0, max_time_s=5.0)
        monkeypatch.setattr(workers_mod, "_run", _die)
        dead = workers.run(0, "ort", batch=1, threads=1)
        monkeypatch.undo()
        again = workers.run(0, "ort", batch=1, threads=1, min_runs=2, min_time_s=0.0, max_time_s=5.0)
    assert first.ok and again.ok and first.conditions["pid"] != again.conditions["pid"]
    assert dead.error.startswith("ort: the worker process of session 1 failed: ") and not dead.latencies_ms


def _die(backend, settings):
    os._exit(3)
