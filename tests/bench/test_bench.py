"""The benchmark harness: statistics, machine record, timing loop, sweep, files, plots."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from edgeopt import load_model
from edgeopt.backends import registry
from edgeopt.backends.base import Backend, Session
from edgeopt.backends.ort import OrtBackend
from edgeopt.bench import environment as machine
from edgeopt.bench.harness import BenchResult, benchmark
from edgeopt.bench.noise import noisy
from edgeopt.bench.stats import LatencyStats, percentile
from edgeopt.bench.sweep import read_json, sweep, write_csv, write_json
from edgeopt.errors import BackendUnavailable, EdgeoptError, ShapeError
from edgeopt.report.plots import plot_batch_sweep

FAST = dict(warmup=1, min_runs=3, min_time_s=0.0, max_time_s=5.0)


# -- fakes: registered only inside a test, through the registry's get() ----------------
class CountingSession(Session):
    """Records every feeds dict it is run with; fails at batch > fail_above."""

    def __init__(self, threads: int, fail_above: int | None = None) -> None:
        self.backend, self.threads = "counting", threads
        self.calls: list[dict] = []
        self.closed = False
        self.fail_above = fail_above

    def run(self, feeds):
        self.calls.append(feeds)
        batch = next(iter(feeds.values())).shape[0]
        if self.fail_above is not None and batch > self.fail_above:
            raise RuntimeError(f"kernel does not support batch {batch}\nsecond line")
        return [np.zeros((batch, 1), np.float32)]

    def close(self) -> None:
        self.closed = True


class CountingBackend(Backend):
    name = "counting"

    def __init__(self, fail_above: int | None = None) -> None:
        self.sessions: list[CountingSession] = []
        self.fail_above = fail_above

    def available(self):
        return None

    def _prepare(self, model, *, threads):
        self.sessions.append(CountingSession(threads, self.fail_above))
        return self.sessions[-1]


class NoModelBackend(CountingBackend):
    """A runtime that is installed but cannot run this model (like torch on an ONNX file)."""

    name = "nomodel"

    def _prepare(self, model, *, threads):
        raise BackendUnavailable(f"nomodel cannot run {model.name}: it needs a torch module")


class MissingBackend(CountingBackend):
    name = "missing"

    def available(self):
        return "the fake runtime is not installed: pip install fake-runtime"


class OracleBackend(CountingBackend):
    name = "oracle"
    timed = False


class OrtTwin(OrtBackend):
    """A second real backend for the sweep grid: ONNX Runtime under another name."""

    name = "ort-twin"


@pytest.fixture
def register(monkeypatch):
    """register(name, backend): make ``registry.get(name)`` return ``backend`` in this test."""
    fakes: dict[str, Backend] = {}
    real_get = registry.get

    def get(name):
        return fakes[name] if name in fakes else real_get(name)

    monkeypatch.setattr(registry, "get", get)

    def add(name: str, backend: Backend) -> Backend:
        fakes[name] = backend
        monkeypatch.setitem(registry._REGISTRY, name, "tests:fake")
        return backend

    return add


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


@pytest.fixture(scope="module")
def ort_results(seednet):
    """Real cells on ort at batches 1, 2, 4 plus one cell whose backend cannot run."""
    out = [benchmark(seednet, "ort", batch=b, threads=1, **FAST) for b in (1, 2, 4)]
    failed = BenchResult("nomodel", "", seednet.name, seednet.sha256, 1, 1,
                         error="nomodel cannot run zoo:seednet", machine=machine.machine_info())
    return out + [failed]


# -- stats ---------------------------------------------------------------------------------
def test_percentile_loadgen_rule_on_hand_lists():
    # LoadGen takes sorted[floor(n * p)]: with 1..10 that is the 6th, 10th, 10th value.
    values = [7, 3, 10, 1, 9, 2, 8, 5, 4, 6]
    assert percentile(values, 50) == 6
    assert percentile(values, 90) == 10
    assert percentile(values, 99) == 10
    assert percentile(values, 0) == 1
    assert percentile(values, 100) == 10
    hundred = list(range(1, 101))
    assert percentile(hundred, 90) == 91
    # 375 * 18.4 / 100 is exactly 69 -> sorted[69] = 70; naive floats give 68.99999999999999.
    assert percentile(list(range(1, 376)), 18.4) == 70
    assert percentile([4.5], 99) == 4.5


def test_percentile_linear_matches_hand_interpolation():
    # Type 7: position (n - 1) * p; for [1, 2, 3, 4] p90 sits at 2.7 -> 3 + 0.7 * (4 - 3).
    assert percentile([4, 1, 3, 2], 90, method="linear") == pytest.approx(3.7)
    assert percentile([4, 1, 3, 2], 50, method="linear") == pytest.approx(2.5)


def test_percentile_rejects_bad_input():
    with pytest.raises(EdgeoptError, match="no samples"):
        percentile([], 50)
    with pytest.raises(EdgeoptError, match="outside"):
        percentile([1.0], 101)
    with pytest.raises(EdgeoptError, match="unknown percentile method"):
        percentile([1.0], 50, method="nearest")


def test_latency_stats_on_hand_list():
    s = LatencyStats.from_latencies([2, 4, 4, 4, 5, 5, 7, 9])
    # mean 40/8 = 5; squared deviations sum to 32, sample variance 32/7.
    assert (s.n, s.min, s.mean, s.max) == (8, 2, 5, 9)
    assert s.std == pytest.approx(math.sqrt(32 / 7))
    assert (s.p50, s.p90, s.p99) == (5, 9, 9)  # sorted[4], sorted[7], sorted[7]
    assert LatencyStats.from_latencies([3.0]).std == 0.0
    assert LatencyStats.from_dict(s.to_dict()) == s
    with pytest.raises(EdgeoptError):
        LatencyStats.from_latencies([])


def test_bench_result_derives_per_image_and_throughput():
    r = BenchResult("ort", "1", "m", "0" * 64, batch=2, threads=1, latencies_ms=[2.0, 4.0, 12.0])
    assert r.stats.mean == 6.0 and r.stats.p50 == 4.0
    assert r.ms_per_image == 2.0          # the p50, 4 ms, for 2 images (the mean would give 3)
    assert r.throughput == 500.0          # 2 images * 1000 / 4 ms
    empty = BenchResult("ort", "1", "m", "0" * 64, batch=2, threads=1, error="x")
    assert empty.stats is None and empty.throughput is None and not empty.ok


# -- machine ---------------------------------------------------------------------------------
X86_CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16

processor\t: 1
model name\t: Intel(R) Xeon(R) Platinum 8480+
physical id\t: 0
core id\t\t: 0
flags\t\t: fpu sse4_2 avx avx2 fma f16c avx512f avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16
"""

ARM_CPUINFO = """processor\t: 0
BogoMIPS\t: 108.00
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd0c

processor\t: 1
Features\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp i8mm bf16
CPU implementer\t: 0x41
CPU part\t: 0xd0c
"""


def test_parse_cpuinfo_x86_two_hyperthreads_of_one_core():
    info = machine.parse_cpuinfo(X86_CPUINFO)
    assert info["cpu_model"] == "Intel(R) Xeon(R) Platinum 8480+"
    assert info["logical_cpus"] == 2 and info["physical_cores"] == 1
    assert set(info["flags"]) == {"sse4_2", "avx", "avx2", "fma", "f16c", "avx512f",
                                  "avx512_vnni", "avx512_bf16", "amx_tile", "amx_int8", "amx_bf16"}


def test_parse_cpuinfo_arm_features_and_part_number():
    info = machine.parse_cpuinfo(ARM_CPUINFO)
    assert set(info["flags"]) == {"asimd", "asimddp", "i8mm", "bf16"}
    assert info["cpu_model"] == "ARM implementer 0x41 part 0xd0c"   # Neoverse N1 has no name line
    assert info["logical_cpus"] == 2 and info["physical_cores"] is None


def test_parse_cache_size_units():
    assert machine.parse_cache_size("32K\n") == 32 * 1024
    assert machine.parse_cache_size("1M") == 1024 * 1024
    assert machine.parse_cache_size("512") == 512


def test_machine_info_reads_this_machine():
    info = machine.machine_info()
    assert info["cpu_model"]
    assert info["logical_cpus"] >= 1 and 1 <= info["usable_cpus"] <= info["logical_cpus"]
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        line = next((l for l in cpuinfo.read_text().splitlines()
                     if l.startswith(("flags", "Features"))), "")
        present = set(line.partition(":")[2].split())
        assert set(info["flags"]) == present & set(machine.FLAGS_OF_INTEREST)
    import onnxruntime

    assert info["libraries"]["onnxruntime"] == onnxruntime.__version__
    assert info["memory_bytes"] > 0
    info["cpu_model"] = "changed by a caller"
    assert machine.machine_info()["cpu_model"] != "changed by a caller"  # cached, copied


def test_machine_and_plots_import_no_heavy_library():
    code = ("import sys, edgeopt, edgeopt.bench.sweep, edgeopt.report.plots\n"
            "from edgeopt.bench.environment import machine_info\n"
            "assert machine_info()['libraries']['numpy']\n"
            "heavy = {'torch', 'openvino', 'nncf', 'matplotlib', 'onnxruntime'} & set(sys.modules)\n"
            "assert not heavy, heavy\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


# -- harness on a real model -------------------------------------------------------------------
@pytest.mark.parametrize("batch", [1, 4])
def test_benchmark_seednet_on_ort(seednet, batch):
    t0 = time.perf_counter()
    r = benchmark(seednet, "ort", batch=batch, threads=1, warmup=2, min_runs=5,
                  min_time_s=0.0, max_time_s=10.0)
    wall_ms = (time.perf_counter() - t0) * 1000
    assert r.error is None and r.ok
    assert (r.backend, r.batch, r.threads, r.model_sha256) == ("ort", batch, 1, seednet.sha256)
    import onnxruntime

    assert r.backend_version == onnxruntime.__version__
    # min_time 0: the loop stops at exactly min_runs, so the first inference and the
    # two warm-up runs are not among the timed runs.
    assert len(r.latencies_ms) == 5 and r.warmup_runs == 2 and r.stop_reason == "target"
    assert r.first_ms > 0 and r.prepare_ms > 0
    assert all(x > 0 for x in r.latencies_ms)
    # The parts fit inside the wall time of the call (ms, not us or s).
    assert r.prepare_ms + r.first_ms + sum(r.latencies_ms) <= wall_ms
    assert r.stats.mean == pytest.approx(np.mean(r.latencies_ms))
    assert r.stats.p50 == sorted(r.latencies_ms)[2]
    assert r.ms_per_image == pytest.approx(r.stats.p50 / batch)
    assert r.throughput == pytest.approx(batch * 1000 / r.stats.p50)
    assert r.throughput * r.ms_per_image == pytest.approx(1000)
    assert r.machine["cpu_model"] and isinstance(r.machine["flags"], list)
    assert r.machine == machine.machine_info()


def test_benchmark_keeps_running_until_min_time(seednet):
    t0 = time.perf_counter()
    r = benchmark(seednet, "ort", batch=1, threads=1, warmup=0, min_runs=1,
                  min_time_s=0.3, max_time_s=10.0)
    assert time.perf_counter() - t0 >= 0.3
    assert r.stop_reason == "target" and len(r.latencies_ms) >= 3


class _NsClock:
    """``time`` for the harness module with an injected ``perf_counter_ns``."""

    def __init__(self) -> None:
        self.ns = 0

    def perf_counter_ns(self) -> int:
        return self.ns

    def __getattr__(self, name):
        return getattr(time, name)


def test_benchmark_cap_stops_the_cell(seednet, register, monkeypatch):
    from edgeopt.bench import harness

    clock = _NsClock()
    monkeypatch.setattr(harness, "time", clock)

    class OneMsSession(CountingSession):  # each run takes 1 ms on the injected clock
        def run(self, feeds):
            clock.ns += 1_000_000
            return super().run(feeds)

    class OneMs(CountingBackend):
        def _prepare(self, model, *, threads):
            return OneMsSession(threads)

    register("counting", OneMs())
    r = benchmark(seednet, "counting", batch=1, threads=1, warmup=1000, min_runs=10**7,
                  min_time_s=0.0, max_time_s=0.3)
    # First run ends at 1 ms; warm-up gets 20% of the rest (to 60.8 ms); timed runs until 300 ms.
    assert r.stop_reason == "max_time" and r.first_ms == 1.0
    assert r.warmup_runs == 60 and len(r.latencies_ms) == 239 and set(r.latencies_ms) == {1.0}
    assert clock.ns == 300_000_000  # the cap holds to the run


def test_benchmark_zero_cap_still_gets_floor_runs(seednet):
    assert len(benchmark(seednet, "ort", min_runs=10, min_time_s=0, max_time_s=0).latencies_ms) == 3
    assert len(benchmark(seednet, "ort", min_runs=2, min_time_s=0, max_time_s=0).latencies_ms) == 2


def test_benchmark_uses_given_feeds_and_counts_every_run(seednet, register):
    fake = register("counting", CountingBackend())
    r = benchmark(seednet, "counting", batch=3, threads=2, **FAST)
    (sess,) = fake.sessions
    assert sess.threads == 2 and sess.closed
    assert len(sess.calls) == 1 + r.warmup_runs + len(r.latencies_ms)  # first + warm-up + timed
    feeds = sess.calls[0]
    assert list(feeds) == ["input"] and feeds["input"].shape == (3, 1, 88, 88)
    assert feeds["input"].dtype == np.float32 and 0.8 < feeds["input"].std() < 1.2  # N(0, 1)

    mine = {"input": np.ones((2, 1, 88, 88), np.float32)}
    benchmark(seednet, "counting", batch=2, **FAST)
    benchmark(seednet, "counting", batch=2, feeds=mine, **FAST)
    assert all(call is mine for call in fake.sessions[-1].calls)
    with pytest.raises(ShapeError, match="batch=4"):
        benchmark(seednet, "counting", batch=4, feeds=mine)
    with pytest.raises(ShapeError, match="inputs are"):
        benchmark(seednet, "counting", batch=2, feeds={"x": mine["input"]})


def test_benchmark_records_conditions_pinning_and_cooldown(seednet, register, monkeypatch):
    import os

    from edgeopt.bench import control
    from edgeopt.bench.control import Cooldown

    register("counting", CountingBackend())
    r = benchmark(seednet, "counting", threads=1, **FAST)
    c = r.conditions
    assert c["pinned"] is False and c["pinned_cpus"] is None and c["cooldown_s"] is None
    assert c["cpus"] == (os.cpu_count() or 1) and c["wall_s"] >= 0
    assert c["other_cpu_pct"] is None or 0.0 <= c["other_cpu_pct"] <= 100.0
    assert BenchResult.from_dict(json.loads(json.dumps(r.to_dict()))).conditions == c

    waits = []
    monkeypatch.setattr(control, "cool_down", lambda cap: waits.append(cap) or Cooldown(2.0, True))
    before = os.sched_getaffinity(0)
    r = benchmark(seednet, "counting", threads=1, pin=True, cooldown_s=30.0, **FAST)
    assert r.conditions["pinned"] is True and r.conditions["pinned_cpus"] == [min(before)]
    assert os.sched_getaffinity(0) == before  # restored after the cell
    assert waits == [30.0] and (r.conditions["cooldown_s"], r.conditions["cooldown_settled"]) == (2.0, True)
    old = {k: v for k, v in r.to_dict().items() if k != "conditions"}
    assert BenchResult.from_dict(old).conditions == {}  # a result written before conditions


def test_the_runtimes_own_pinning_is_recorded(seednet):
    from types import SimpleNamespace

    from edgeopt.bench.harness import _runtime_pinning

    assert _runtime_pinning(SimpleNamespace(properties=lambda: {"ENABLE_CPU_PINNING": "False"})) is False
    assert _runtime_pinning(SimpleNamespace(properties=lambda: {})) is None
    assert _runtime_pinning(SimpleNamespace()) is None
    # OpenVINO reports its own pinning (on by default on Linux): the record says what it did
    r = benchmark(seednet, "openvino", threads=1, **FAST)
    assert r.ok and r.conditions["runtime_pinning"] in (True, False) and r.conditions["pinned"] is False
    assert benchmark(seednet, "ort", threads=1, **FAST).conditions["runtime_pinning"] is None


def test_backend_that_cannot_run_gives_error_result(seednet, register):
    register("nomodel", NoModelBackend())
    register("missing", MissingBackend())
    fails_at_4 = register("counting", CountingBackend(fail_above=2))
    r = benchmark(seednet, "nomodel", **FAST)
    assert r.error == "nomodel cannot run zoo:seednet: it needs a torch module"
    assert r.latencies_ms == [] and r.stats is None and r.throughput is None
    assert "pip install fake-runtime" in benchmark(seednet, "missing", **FAST).error
    r = benchmark(seednet, "counting", batch=4, **FAST)
    assert r.error.endswith("RuntimeError: kernel does not support batch 4")
    assert fails_at_4.sessions[-1].closed and r.latencies_ms == []
    assert json.loads(json.dumps(r.to_dict()))["error"] == r.error


def test_benchmark_refuses_untimed_backend_and_bad_settings(seednet, register):
    oracle = register("oracle", OracleBackend())
    with pytest.raises(EdgeoptError, match="oracle"):
        benchmark(seednet, "oracle")
    assert oracle.sessions == []
    with pytest.raises(BackendUnavailable, match="unknown backend"):
        benchmark(seednet, "no-such-runtime")
    for bad in (dict(batch=0), dict(threads=0), dict(min_runs=0), dict(warmup=-1),
                dict(min_time_s=2.0, max_time_s=1.0), dict(max_time_s=float("nan"))):
        with pytest.raises(EdgeoptError):
            benchmark(seednet, "ort", **bad)


# -- sweep ---------------------------------------------------------------------------------------
class FakeCells:
    """Stands in for benchmark(): each cell takes ``prepare_s`` plus ``per_image_s`` x batch
    for each of 3 runs on an injected clock, and ends at its cap when it has more runs to do."""

    def __init__(self, clock, prepare_s=0.5, per_image_s=0.1, runs=3):
        self.clock, self.prepare_s, self.per_image_s, self.runs = clock, prepare_s, per_image_s, runs
        self.caps = []

    def __call__(self, model, backend, *, batch, threads, max_time_s, **kw):
        self.caps.append(max_time_s)
        run_s = self.per_image_s * batch
        n = max(3, min(self.runs, int((max_time_s - self.prepare_s) / run_s)))
        self.clock.advance(self.prepare_s + n * run_s)
        return BenchResult(backend=backend, backend_version="1", model=model.name,
                           model_sha256=model.sha256, batch=batch, threads=threads, machine={},
                           prepare_ms=self.prepare_s * 1e3, first_ms=run_s * 1e3,
                           latencies_ms=[run_s * 1e3] * n, stop_reason="max_time")


def test_sweep_respects_budget(seednet, register, monkeypatch):
    from edgeopt._util.deadline import FakeClock
    from edgeopt.bench import workers as workers_mod

    register("ort-twin", OrtTwin())
    clock = FakeClock()
    cells = FakeCells(clock, runs=10**6)
    monkeypatch.setattr(workers_mod, "benchmark", cells)
    results = sweep(seednet, ["ort", "ort-twin"], [1, 2, 4], 1, budget_s=12.0, progress=False,
                    clock=clock)
    assert [(r.backend, r.batch) for r in results] == [
        (b, n) for b in ("ort", "ort-twin") for n in (1, 2, 4)]
    # Cells that always use their whole cap: the first gets an even share of the budget,
    # later ones their floor estimate plus a share of what the floors leave.
    assert all(r.error is None and len(r.latencies_ms) >= 3 for r in results[:5])
    assert cells.caps[0] == pytest.approx(12.0 / 6)
    assert [len(r.latencies_ms) for r in results[:5]] == [15, 7, 6, 8, 7]
    # The last cell's floor (~3.2 s with the margin) does not fit the 2 s left: not started.
    assert results[5].error == "skipped: a cell needs ~3.2 s and 2.0 s of the budget are left"
    assert clock.now <= 12.0  # the budget holds


def test_sweep_skips_a_cell_whose_floor_does_not_fit(seednet, monkeypatch):
    from edgeopt._util.deadline import FakeClock
    from edgeopt.bench import workers as workers_mod

    clock = FakeClock()
    # A cell: 0.5 s prepare + 3 runs of batch x 0.25 s. After batch 1 (1.25 s) the floor
    # estimate (x 1.5) of batch 4 is 0.75 + 4 x 1.5 = 6.75 s > 4.75 s left; batch 2 needs 3.75 s.
    monkeypatch.setattr(workers_mod, "benchmark", FakeCells(clock, prepare_s=0.5, per_image_s=0.25))
    results = sweep(seednet, ["ort"], [1, 4, 2], 1, budget_s=6.0, progress=False, clock=clock)
    assert results[0].error is None
    four, two = results[1:]
    assert four.error == "skipped: a cell needs ~6.8 s and 4.8 s of the budget are left"
    assert four.latencies_ms == []
    assert (four.backend, four.batch, four.threads) == ("ort", 4, 1)
    assert two.error is None and len(two.latencies_ms) == 3  # a smaller cell after it still fits
    assert clock.now == pytest.approx(1.25 + 2.0)


def test_sweep_records_broken_backend_and_refuses_oracle(seednet, register):
    register("nomodel", NoModelBackend())
    oracle = register("oracle", OracleBackend())
    results = sweep(seednet, ["nomodel", "ort"], [1], [1], budget_s=0.2, progress=False)
    assert results[0].error and results[0].latencies_ms == []
    assert results[1].error is None and len(results[1].latencies_ms) >= 3
    with pytest.raises(EdgeoptError, match="oracle"):
        sweep(seednet, ["ort", "oracle"], [1], [1], budget_s=1, progress=False)
    assert oracle.sessions == []  # refused before any cell ran
    with pytest.raises(EdgeoptError, match="budget"):
        sweep(seednet, ["ort"], [1], [1], budget_s=0)


def test_sweep_gives_the_share_of_a_missing_backend_to_the_others(seednet, register, monkeypatch):
    from edgeopt._util.deadline import FakeClock
    from edgeopt.bench import workers as workers_mod

    register("missing", MissingBackend())
    clock = FakeClock()
    real = workers_mod.benchmark
    fake = FakeCells(clock, prepare_s=0.0, per_image_s=0.01, runs=10**7)
    monkeypatch.setattr(workers_mod, "benchmark",
                        lambda m, b, **kw: real(m, b, **kw) if b == "missing" else fake(m, b, **kw))
    ort, missing = sweep(seednet, ["ort", "missing"], [1], [1], budget_s=0.6, min_runs=10**7,
                         progress=False, clock=clock)
    # Split over both cells, ort would get 0.3 s; the missing one takes no share.
    assert fake.caps == [pytest.approx(0.6)]
    assert ort.stop_reason == "max_time" and "not installed" in missing.error


# -- files and plots -----------------------------------------------------------------------------
def test_json_round_trip(ort_results, tmp_path):
    path = write_json(ort_results, tmp_path / "out" / "bench.json")
    back = read_json(path)
    assert [r.to_dict() for r in back] == [r.to_dict() for r in ort_results]
    assert back[0].stats == ort_results[0].stats
    assert sorted(p.name for p in path.parent.iterdir()) == ["bench.json"]  # no temp file left
    (tmp_path / "other.json").write_text('{"results": []}')
    with pytest.raises(EdgeoptError, match="is not an edgeopt.bench/1 file: pass the bench.json or suite.json"):
        read_json(tmp_path / "other.json")


def test_csv_round_trip(ort_results, tmp_path):
    path = write_csv(ort_results, tmp_path / "bench.csv")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(ort_results)
    for row, r in zip(rows, ort_results):
        assert (row["backend"], int(row["batch"]), int(row["runs"])) == (
            r.backend, r.batch, len(r.latencies_ms))
        if r.error is None:
            assert float(row["p90_ms"]) == r.stats.p90           # full float precision
            assert float(row["throughput_ips"]) == r.throughput
            assert (float(row["p50_low_ms"]), float(row["p50_high_ms"]), float(row["cv"])) == (
                r.stats.p50_low, r.stats.p50_high, r.stats.cv)
            assert row["noisy"] == (noisy(r) or "")
            assert row["error"] == "" and row["cpu_model"] == r.machine["cpu_model"]
            assert row["pinned"] == "False" and row["load1"] == str(r.conditions["load1_end"])
            other = r.conditions["other_cpu_pct"]
            assert row["other_cpu_pct"] == ("" if other is None else str(other))
        else:
            assert row["error"] == r.error and row["p90_ms"] == ""


def test_plots_write_two_pngs(ort_results, tmp_path):
    from PIL import Image

    paths = plot_batch_sweep(ort_results, tmp_path / "plots" / "seednet")
    assert [p.name for p in paths] == ["seednet_ms_per_image.png", "seednet_throughput.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        pixels = np.asarray(Image.open(p).convert("L"))
        assert pixels.std() > 0  # something was drawn
    with pytest.raises(EdgeoptError, match="nothing to plot"):
        plot_batch_sweep(ort_results[-1:], tmp_path / "none")


def test_alternating_p50_pools_rounds_and_marks_failures(tmp_path):
    import math

    from edgeopt.bench.alternating import alternating_p50

    onnx_only = load_model(str(load_model("zoo:seednet").save(tmp_path / "s.onnx")))  # no torch module
    p50 = alternating_p50([(onnx_only, "ort"), (onnx_only, "torch")], batch=1, threads=1, rounds=2,
                          min_runs=3, min_time_s=0.0, max_time_s=0.5)
    assert p50[0] > 0 and math.isfinite(p50[0])
    assert math.isnan(p50[1])


# -- inputs beyond one batch-first image ------------------------------------------------------
def _tiny(proto, tmp_path, **kwargs):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(proto.SerializeToString())
    return load_model(str(path), **kwargs)


def test_feeds_follow_each_inputs_batch_axis(tmp_path):
    from support import two_inputs_and_state

    m = _tiny(two_inputs_and_state(), tmp_path)
    feeds = m.example_feeds(3)
    assert {k: v.shape for k, v in feeds.items()} == {"a": (3, 4), "b": (3, 4), "h": (2, 3, 3)}
    r = benchmark(m, "ort", batch=3, **FAST)
    assert r.ok and r.batch == 3 and r.ms_per_image == pytest.approx(r.stats.p50 / 3)
    r = benchmark(m, "ort", batch=2, feeds=m.example_feeds(2), **FAST)
    assert r.ok
    with pytest.raises(ShapeError, match=r"feed 'h' .* its batch axis 1 must be batch=2 \(2x2x3\)"):
        benchmark(m, "ort", batch=2, feeds={**m.example_feeds(2), "h": np.zeros((2, 3, 3), np.float32)})


def test_a_model_without_batch_axis_is_timed_at_batch_1_only(tmp_path):
    from support import no_batch_axis

    m = _tiny(no_batch_axis(), tmp_path)
    assert benchmark(m, "ort", batch=1, **FAST).ok
    r = benchmark(m, "ort", batch=4, **FAST)
    assert not r.latencies_ms and "runs at batch 1 only (no input has a batch axis)" in r.error
    with pytest.raises(ShapeError, match="the input has no batch axis, pass its own shape"):
        benchmark(m, "ort", batch=1, feeds={"x": np.zeros((1, 4), np.float32)})


def test_a_graph_that_fixes_its_batch_is_not_timed_at_another(tmp_path, register):
    from support import reshape_to_one_row

    m = _tiny(reshape_to_one_row(), tmp_path)
    assert benchmark(m, "ort", batch=1, **FAST).ok
    fake = register("counting", CountingBackend())
    r = benchmark(m, "counting", batch=8, **FAST)
    assert "runs at batch 1 only (Reshape 'flatten_batch1'" in r.error and "time it at batch 1" in r.error
    assert not fake.sessions  # refused before a session was prepared
