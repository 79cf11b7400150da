"""Suites (budget sharing, skipping, report), the results history and run comparison."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import numpy as np
import pytest

from edgeopt._util.deadline import FakeClock
from edgeopt.backends import registry
from edgeopt.backends.base import Backend, Session
from edgeopt.bench import control
from edgeopt.suites import catalog
from edgeopt.suites import cells as suite_cells
from edgeopt.suites import run as suite_mod
from edgeopt.bench.compare import compare_results, median_ratio_interval
from edgeopt.bench.harness import BenchResult
from edgeopt.suites.catalog import SUITES, SuiteSpec
from edgeopt.suites.run import run_suite
from edgeopt.errors import EdgeoptError
from edgeopt.load import load_model
from edgeopt.report.suite_report import write_suite_outputs
from edgeopt.store import list_runs, load_run, record_run

from support import assert_one_line_error, run_cli


class _SleepSession(Session):
    """Sleeps ``seconds_per_image * batch`` per run: a backend with a known, load-free cost."""

    def __init__(self, seconds_per_image: float, threads: int) -> None:
        self.backend, self.threads, self.seconds = "sleepy", threads, seconds_per_image
        self.tuned = False

    def run(self, feeds):
        batch = next(iter(feeds.values())).shape[0]
        time.sleep(self.seconds * batch)
        return [np.zeros((batch, 1), np.float32)]


class _SleepBackend(Backend):
    name = "sleepy"

    def version(self) -> str:
        return "1.0"

    def _prepare(self, model, *, threads):
        return _SleepSession(0.02, threads)


@pytest.fixture
def sleepy(monkeypatch):
    real = registry.get
    fake = _SleepBackend()
    monkeypatch.setattr(registry, "get", lambda name: fake if name == "sleepy" else real(name))
    return fake


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


def _spec(**kw) -> SuiteSpec:
    base = dict(name="t", title="test", source="test study", models=("zoo:seednet",), backends=("sleepy",),
                threads=(1,), batches=(1, 8, 64), metric="ms_per_image")
    return SuiteSpec(**{**base, **kw})


class _ClockSession(Session):
    """Each run advances the injected clock by ``per_image_s * batch``: a cost no load can change."""

    def __init__(self, backend: "_ClockBackend", threads: int) -> None:
        self.backend, self.threads, self.be, self.tuned = backend.name, threads, backend, False

    def run(self, feeds):
        batch = next(iter(feeds.values())).shape[0]
        self.be.clock.advance(self.be.per_image_s * batch)
        return [np.zeros((batch, 1), np.float32)]


class _ClockBackend(Backend):
    def __init__(self, name: str, clock: FakeClock, per_image_s: float, prepare_s: float = 0.1) -> None:
        self.name, self.clock, self.per_image_s, self.prepare_s = name, clock, per_image_s, prepare_s
        self.prepared: list[str] = []

    def version(self) -> str:
        return "1.0"

    def _prepare(self, model, *, threads):
        self.prepared.append(self.name)
        self.clock.advance(self.prepare_s)
        return _ClockSession(self, threads)


def _fake_time_session(clock: FakeClock, log: list):
    """time_session's loop on the injected clock: a first run, then >= 3 timed runs, up to
    min_runs within max_time_s (the harness's own cap reads the real clock)."""
    def fake(session, model, *, batch, min_runs, min_time_s, max_time_s, prepare_ms=None):
        log.append((model.name, session.backend, batch))
        feeds = {"input": np.zeros((batch, 1), np.float32)}
        start = clock()
        session.run(feeds)
        first_ms, lat = (clock() - start) * 1e3, []
        while len(lat) < 3 or (len(lat) < min_runs and clock() - start < max_time_s):
            t0 = clock()
            session.run(feeds)
            lat.append((clock() - t0) * 1e3)
        return BenchResult(backend=session.backend, backend_version="1.0", model=model.name,
                           model_sha256=model.sha256, batch=batch, threads=session.threads, machine={},
                           prepare_ms=prepare_ms, first_ms=first_ms, latencies_ms=lat,
                           stop_reason="target" if len(lat) >= min_runs else "max_time")
    return fake


@pytest.fixture
def clocked(monkeypatch):
    """Fake backends slow, mid and fast (1.0, 0.2, 0.05 s per image) on one injected clock;
    models named by their reference; returns (clock, backends, time_session log, load)."""
    clock = FakeClock()
    bes = {n: _ClockBackend(n, clock, s) for n, s in (("slow", 1.0), ("mid", 0.2), ("fast", 0.05))}
    real = registry.get
    monkeypatch.setattr(registry, "get", lambda name: bes[name] if name in bes else real(name))
    log: list = []
    monkeypatch.setattr(suite_cells, "time_session", _fake_time_session(clock, log))

    def load(ref):  # what the suite reads of a Model; the fake time_session runs no graph
        return SimpleNamespace(name=ref.removeprefix("zoo:"), sha256="0" * 64, size_bytes=1000)
    return clock, bes, log, load


def test_suite_goes_breadth_first_on_the_fastest_runtimes(clocked) -> None:
    clock, bes, log, load = clocked
    spec = _spec(models=("zoo:a", "zoo:b", "zoo:c"), backends=("slow", "mid", "fast"), batches=(1, 4),
                 min_runs=5)
    run = run_suite(spec, budget_s=1000.0, progress=False, load=load, clock=clock)
    # Probe: the first model at batch 1 on every backend; then every model at batch 1 on the
    # two fastest; only then batch 4 and the slowest runtime.
    assert log[:3] == [("a", "slow", 1), ("a", "mid", 1), ("a", "fast", 1)]
    assert log[3:7] == [("b", "fast", 1), ("b", "mid", 1), ("c", "fast", 1), ("c", "mid", 1)]
    assert log[7:10] == [("a", "fast", 4), ("a", "mid", 4), ("a", "slow", 4)]
    assert len(log) == 3 * 3 * 2 and len(set(log)) == len(log)  # every cell once
    # Reported in grid order (model, backend in the suite's order, batch).
    assert [(c.ref, c.result.backend, c.result.batch) for c in run.cells] == [
        (m, b, n) for m in spec.models for b in spec.backends for n in spec.batches]
    assert all(c.result.ok for c in run.cells) and run.elapsed_s == clock.now


def test_a_short_budget_covers_every_model_and_holds(clocked) -> None:
    clock, bes, log, load = clocked
    spec = _spec(models=("zoo:a", "zoo:b", "zoo:c", "zoo:d"), backends=("slow", "mid", "fast"),
                 batches=(1, 4, 16), min_runs=100)
    run = run_suite(spec, budget_s=20.0, progress=False, load=load, clock=clock)
    ran = {(c.ref, c.result.backend, c.result.batch) for c in run.cells if c.result.ok}
    # Grid order would have spent it all on zoo:a; breadth first, every model ran at batch 1
    # on the two fastest runtimes.
    assert {(m, b, 1) for m in spec.models for b in ("fast", "mid")} <= ran
    assert clock.now <= 20.0 * 1.05
    skipped = [c for c in run.cells if c.skipped]
    assert skipped and all(c.result.error.startswith("skipped: ") for c in skipped)
    assert len(run.cells) == 4 * 3 * 3


def test_suite_backends_restricts_the_runtimes(clocked) -> None:
    clock, bes, log, load = clocked
    spec = _spec(backends=("slow", "mid", "fast"))
    run = run_suite(spec, budget_s=100.0, progress=False, load=load, clock=clock, backends=("fast",))
    assert {c.result.backend for c in run.cells} == {"fast"} and bes["slow"].prepared == []
    with pytest.raises(EdgeoptError, match="suite t does not run tvm: --backends takes some of slow,mid,fast"):
        run_suite(spec, budget_s=100.0, progress=False, load=load, clock=clock, backends=("tvm",))


def test_time_spent_before_the_run_counts(clocked) -> None:
    clock, bes, log, load = clocked
    spec = _spec(models=("zoo:a", "zoo:b"), backends=("fast",), batches=(1,), min_runs=10**6)
    run = run_suite(spec, budget_s=10.0, progress=False, load=load, clock=clock, spent_s=4.0)
    assert clock.now <= 10.0 - 4.0 and run.elapsed_s == pytest.approx(clock.now + 4.0)
    assert run.budget_s == 10.0


def test_cells_share_the_budget_and_unaffordable_batches_are_skipped(clocked) -> None:
    clock, bes, log, load = clocked
    bes["sleepy"] = _ClockBackend("sleepy", clock, 0.02, prepare_s=0.0)
    run = run_suite(_spec(), budget_s=4.0, progress=False, load=load, clock=clock)
    assert clock.now <= 4.0 - 1.2  # the deadline holds (30% of so short a budget kept for the report)
    b1, b8, b64 = run.cells
    assert b1.result.ok and not b1.skipped
    # 0.02 s per run: the first run and the timed runs within its 0.93 s share.
    assert len(b1.result.latencies_ms) == 46 and b1.result.stop_reason == "max_time"
    assert b1.result.stats.p50 == pytest.approx(20)
    # batch 8 would take 3 x 0.16 s = 0.48 s: it fits its share and runs; batch 64 (3 x 1.28 s) cannot.
    assert b8.result.ok
    assert b64.skipped and not b64.result.latencies_ms
    assert "one run takes ~1.5 s" in b64.result.error and "share" in b64.result.error
    assert run.sessions == [{"ref": "zoo:seednet", "variant": "fp32", "backend": "sleepy", "threads": 1,
                             "prepare_ms": 0.0, "tuned": False}]


def test_a_spent_budget_skips_the_remaining_groups(sleepy, seednet, monkeypatch) -> None:
    # 0.15 s per run: the first cell's floor of runs overruns the whole 0.4 s budget.
    monkeypatch.setattr(_SleepBackend, "_prepare", lambda self, model, *, threads: _SleepSession(0.15, threads))
    run = run_suite(_spec(threads=(1, 2), batches=(1,)), budget_s=0.4, progress=False,
                    load=lambda ref: seednet)
    assert len(run.cells) == 2
    assert run.cells[0].result.ok
    assert run.cells[1].skipped and "budget was spent" in run.cells[1].result.error


def test_missing_backends_are_listed_not_run(sleepy, seednet, monkeypatch) -> None:
    monkeypatch.setattr(_SleepBackend, "available", lambda self: "sleepy is not installed: pip install sleepy")
    with pytest.raises(EdgeoptError, match="none of the suite's backends is usable"):
        run_suite(_spec(), budget_s=1.0, progress=False, load=lambda ref: seednet)


def test_report_tables_plots_and_json(sleepy, seednet, tmp_path) -> None:
    run = run_suite(_spec(batches=(1, 2)), budget_s=60.0, progress=False, load=lambda ref: seednet)
    paths = write_suite_outputs(run, tmp_path, history_id=7)
    names = sorted(p.name for p in paths)
    assert names == ["report.html", "report.md", "suite.json", "t_linear.png", "t_log.png"]
    assert all(p.stat().st_size > 1000 for p in paths if p.suffix == ".png")
    doc = json.loads((tmp_path / "suite.json").read_text())
    assert doc["schema"] == "edgeopt.bench/1" and doc["history_id"] == 7
    assert [r["cell"] for r in doc["results"]] == [{"ref": "zoo:seednet", "variant": "fp32", "skipped": False}] * 2
    md = (tmp_path / "report.md").read_text()
    runs = [len(c.result.latencies_ms) for c in run.cells]
    ms = [c.result.ms_per_image for c in run.cells]
    assert f"| sleepy t1 | {ms[0]:.3g} [" in md and f"] ({runs[0]})" in md and f"] ({runs[1]})" in md
    assert doc["results"][0]["stats"]["p50_low"] == run.cells[0].result.stats.p50_low
    assert "| seednet | 1 | sleepy t1 |" in md and "untuned" in md and "run 7" in md


def test_single_batch_suites_plot_bars(sleepy, seednet, tmp_path) -> None:
    run = run_suite(_spec(batches=(1,), threads=(1, 2)), budget_s=60.0, progress=False, load=lambda ref: seednet)
    assert [p.name for p in write_suite_outputs(run, tmp_path)] == ["suite.json", "t_bars.png", "report.md",
                                                                     "report.html"]


def test_the_seed_suites_name_real_zoo_models_and_backends() -> None:
    from edgeopt import zoo

    zoo_names = {e.name for e in zoo.entries()}
    for spec in SUITES.values():
        assert {m.removeprefix("zoo:") for m in spec.models} <= zoo_names, spec.name
        assert set(spec.backends or ()) <= set(registry.names()), spec.name
        assert list(spec.batches) == sorted(spec.batches)
    assert SUITES["seed-rpi"].batches == (1, 2, 4, 8, 16, 32, 64, 128, 256)
    assert SUITES["seed-rpi"].threads == (1, 2)


# -- results history ------------------------------------------------------------------------
def _result(latencies, *, backend="ort", batch=1, model="m", error=None) -> BenchResult:
    return BenchResult(backend=backend, backend_version="1", model=model, model_sha256="ab", batch=batch,
                       threads=2, latencies_ms=list(latencies), machine={"cpu_model": "Test CPU"}, error=error)


def test_history_round_trip(tmp_path) -> None:
    db = tmp_path / "h.db"
    cells = [_result([1.0, 2.0, 3.0]), _result([], error="x failed", backend="tvm")]
    first = record_run(cells, kind="suite", name="seed-rpi", meta={"budget_s": 600}, path=db)
    second = record_run(cells[:1], kind="suite", name="mobile", path=db)
    assert (first, second) == (1, 2)
    runs = list_runs(db)
    assert [(r.id, r.name, r.cells, r.cpu_model) for r in runs] == [(1, "seed-rpi", 2, "Test CPU"),
                                                                    (2, "mobile", 1, "Test CPU")]
    assert runs[0].meta == {"budget_s": 600}
    info, back = load_run(1, db)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in cells]
    with pytest.raises(EdgeoptError, match=r"no run 9 in .* \(runs: 1, 2\)"):
        load_run(9, db)


def test_history_rejects_a_file_that_is_not_one(tmp_path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("not sqlite at all " * 100)
    with pytest.raises(EdgeoptError, match="is not an edgeopt results history"):
        list_runs(bad)
    assert bad.read_text().startswith("not sqlite")  # never modified
    with pytest.raises(EdgeoptError, match="no results history"):
        list_runs(tmp_path / "missing.db")


# -- compare ----------------------------------------------------------------------------------
def test_ratio_interval_brackets_the_true_ratio() -> None:
    rng = np.random.default_rng(1)
    a = 10 + rng.normal(0, 0.5, 200)
    ratio, low, high = median_ratio_interval(a, a * 0.8)
    assert ratio == pytest.approx(0.8)
    assert low < 0.8 < high or low == pytest.approx(0.8)
    ratio, low, high = median_ratio_interval(a, 10 + rng.normal(0, 0.5, 200))
    assert low < 1.0 < high and high - low < 0.05


def test_verdicts() -> None:
    rng = np.random.default_rng(2)
    base = list(5 + rng.exponential(0.2, 100))
    same = list(5 + rng.exponential(0.2, 100))
    a = [_result(base, model="x"), _result(base, model="y"), _result(base, model="z"),
         _result([], model="w", error="tvm: no")]
    b = [_result(same, model="x"), _result([v * 0.6 for v in base], model="y"),
         _result([v * 1.02 for v in base], model="z"), _result(base, model="w"), _result(base, model="v")]
    got = {c.model: c for c in compare_results(a, b)}
    assert got["x"].verdict == "within noise"
    assert got["y"].verdict == "B faster" and got["y"].ratio == pytest.approx(0.6)
    # 2% slower with a tight interval that excludes 1: real in-run, but under the 5% min effect.
    assert got["z"].verdict == "within noise" and got["z"].low > 1.0
    assert got["w"].verdict == "not measured" and "tvm: no" in got["w"].note
    assert got["v"].verdict == "only in B"
    assert [c.model for c in compare_results(a, b)] == ["x", "y", "z", "w", "v"]
    with pytest.raises(EdgeoptError, match="share no cell"):
        compare_results(a, [_result(base, model="other")])


def test_cli_compare_and_history(monkeypatch, capsys, tmp_path) -> None:
    from edgeopt.bench.sweep import write_json

    rng = np.random.default_rng(3)
    base = list(5 + rng.exponential(0.2, 50))
    write_json([_result(base)], tmp_path / "a.json")
    write_json([_result([v * 2 for v in base])], tmp_path / "b.json")
    code, out, err = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"))
    assert code == 0, err
    assert "B slower" in out and "2.000" in out
    db = tmp_path / "h.db"
    record_run([_result(base)], kind="suite", name="seed-rpi", path=db)
    code, out, err = run_cli(monkeypatch, capsys, "compare", "history:1", str(tmp_path / "a.json"),
                             "--history", str(db))
    assert code == 0, err
    assert "within noise" in out and "run 1: suite seed-rpi" in out
    code, out, err = run_cli(monkeypatch, capsys, "history", "--history", str(db))
    assert code == 0 and "seed-rpi" in out
    code, _, err = run_cli(monkeypatch, capsys, "compare", "history:x", str(tmp_path / "a.json"))
    assert_one_line_error(code, err, "history:ID")
    code, _, err = run_cli(monkeypatch, capsys, "suite", "seed-mars")
    assert_one_line_error(code, err, "no suite 'seed-mars'", "seed-rpi")


def test_cli_suite_runs_and_records(monkeypatch, capsys, tmp_path, sleepy, seednet) -> None:
    monkeypatch.setitem(SUITES, "tiny", _spec(name="tiny", batches=(1, 2)))
    monkeypatch.setattr(catalog, "SUITES", SUITES)
    monkeypatch.setattr("edgeopt.load.load_model", lambda ref, **kw: seednet)
    db = tmp_path / "h.db"
    code, out, err = run_cli(monkeypatch, capsys, "suite", "tiny", "--budget", "60s", "--out", str(tmp_path / "o"),
                             "--history", str(db))
    assert code == 0, err
    assert "2 of 2 cells measured" in out and "history run 1" in out
    assert (tmp_path / "o" / "report.md").exists()
    info, cells = load_run(1, db)
    assert info.name == "tiny" and [c.batch for c in cells] == [1, 2]


def test_cli_suite_pins_and_cools_down_each_cell(monkeypatch, capsys, tmp_path, sleepy, seednet) -> None:
    import json
    import os

    from edgeopt.bench.control import Cooldown

    monkeypatch.setitem(SUITES, "tiny", _spec(name="tiny", batches=(1, 2)))
    monkeypatch.setattr("edgeopt.load.load_model", lambda ref, **kw: seednet)
    waits, masks = [], []
    monkeypatch.setattr(control, "cool_down", lambda cap: waits.append(cap) or Cooldown(0.1, True))
    real_prepare = sleepy._prepare
    monkeypatch.setattr(sleepy, "_prepare", lambda *a, **kw: masks.append(os.sched_getaffinity(0)) or
                        real_prepare(*a, **kw))
    before = os.sched_getaffinity(0)
    # A budget no load can spend before the two cells (each stops after 1 s of runs).
    code, out, err = run_cli(monkeypatch, capsys, "suite", "tiny", "--budget", "60s", "--out", str(tmp_path / "o"),
                             "--no-history", "--pin", "--cooldown", "0.5")
    assert code == 0, err
    assert masks == [{min(before)}] and os.sched_getaffinity(0) == before  # pinned around prepare, then restored
    doc = json.loads((tmp_path / "o" / "suite.json").read_text())
    assert doc["meta"]["control"] == {"pin": True, "cooldown_s": 0.5}
    # One wait per cell, the cap as given (under half of each cell's share).
    assert waits == [0.5, 0.5], [c.get("error") for c in doc["results"]]
    for cell in doc["results"]:
        cond = cell["conditions"]
        assert cond["pinned"] is True and cond["pinned_cpus"] == [min(before)]
        assert (cond["cooldown_s"], cond["cooldown_settled"]) == (0.1, True)
    code, _, err = run_cli(monkeypatch, capsys, "suite", "tiny", "--cooldown", "-2")
    assert_one_line_error(code, err, "--cooldown")


def test_nnpack_times_each_thread_count_in_a_fresh_process() -> None:
    """torch sizes NNPACK's pool once per process: the second thread count runs in a child."""
    spec = _spec(backends=("torch-nnpack",), threads=(1, 2), batches=(1,))
    # Each child imports torch and exports the model (~5-10 s) before its cell's ~1 s.
    run = run_suite(spec, budget_s=60.0, progress=False)
    assert [(c.result.threads, c.result.ok) for c in run.cells] == [(1, True), (2, True)], \
        [c.result.error for c in run.cells]
    assert [s["threads"] for s in run.sessions] == [1, 2]
    assert all(s["conv_paths"] == {"aten::_nnpack_spatial_convolution": 3} for s in run.sessions)


def test_a_group_whose_prepare_cannot_fit_is_skipped(clocked) -> None:
    clock, bes, log, load = clocked
    bes["sleepy"] = _ClockBackend("sleepy", clock, 0.01, prepare_s=1.0)  # a compiling runtime
    run = run_suite(_spec(threads=(1, 2), batches=(1,)), budget_s=2.5, progress=False, load=load, clock=clock)
    assert run.cells[0].result.ok and run.cells[0].result.prepare_ms == pytest.approx(1000)
    assert run.cells[1].skipped and "preparing it takes ~1.0 s here" in run.cells[1].result.error
    assert clock.now <= 2.5
    seednet = load("zoo:seednet")
    assert run.prepare_estimate("sleepy", seednet.size_bytes * 4) == pytest.approx(4 * run.cells[0].result.prepare_ms / 1e3)
    assert run.prepare_estimate("sleepy", 1) == pytest.approx(run.cells[0].result.prepare_ms / 1e3)
    assert run.prepare_estimate("ort", 1) is None


def test_cli_suite_backends_passes_the_restriction(monkeypatch, capsys, tmp_path) -> None:
    seen = {}

    def fake_run_suite(spec, *, budget_s, backends=None, spent_s=0.0, control=None):
        seen.update(budget_s=budget_s, backends=backends, spent=spent_s > 0)
        raise EdgeoptError("stop here: the run itself is tested above")

    monkeypatch.setattr(suite_mod, "run_suite", fake_run_suite)
    code, _, err = run_cli(monkeypatch, capsys, "suite", "mobile", "--budget", "2m", "--backends", "ort,openvino",
                           "--no-history", "--out", str(tmp_path / "o"))
    assert_one_line_error(code, err, "stop here")
    # The budget counts from the process's start: the start-up is passed as spent.
    assert seen == {"budget_s": 120.0, "backends": ("ort", "openvino"), "spent": True}
    code, _, err = run_cli(monkeypatch, capsys, "suite", "mobile", "--backends", ",", "--no-history",
                           "--out", str(tmp_path / "p"))
    assert_one_line_error(code, err, "--backends ',' names nothing")


def test_a_cell_on_a_board_counts_its_own_prepare_against_its_share() -> None:
    from edgeopt.bench.harness import FLOOR_RUNS

    runs = FLOOR_RUNS + 1
    share = (runs * 0.1 + 0.5) * 1.01  # just room for the runs and the prepare
    assert suite_mod._why_skip_cell(0.1, 0.5, share) == ""
    assert suite_mod._why_skip_cell(0.1, 0.0, runs * 0.1 * 0.99) == (
        f"skipped: one run takes ~0.1 s (from the batch before), {runs} runs exceed this cell's share of the "
        f"budget ({runs * 0.1 * 0.99:.1f} s)")
    assert suite_mod._why_skip_cell(0.1, 0.7, share) == (
        f"skipped: one run takes ~0.1 s (from the batch before), {runs} runs and a fresh session's prepare "
        f"(~0.7 s, from this run's others) exceed this cell's share of the budget ({share:.1f} s)")
    assert suite_mod._why_skip_cell(0.0, 1.5, 1.0) == (
        "skipped: a fresh session's prepare (~1.5 s, from this run's others) exceeds this cell's share of the "
        "budget (1.0 s)")
