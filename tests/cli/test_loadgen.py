"""``edgeopt loadgen``: the four MLPerf scenarios run through LoadGen on a real model and
LoadGen's own verdict is read back; ``bench --streams`` adds its throughput rows; bad
options end in one line and exit 2."""

from __future__ import annotations

import json

import numpy as np
import pytest

import edgeopt
from edgeopt.bench.loadgen import LoadGenConfig, run_loadgen
from edgeopt.bench.loadgen_log import parse_summary
from edgeopt.errors import EdgeoptError

from support import assert_one_line_error, installed, run_cli

pytestmark = pytest.mark.skipif(not installed("mlcommons-loadgen"), reason="mlcommons-loadgen is not installed")
BACKENDS = ["ort", pytest.param("openvino", marks=pytest.mark.skipif(not installed("openvino"), reason="no OpenVINO"))]
SHORT = ("--duration", "200ms", "--min-queries", "20")
SCENARIOS = {
    "SingleStream": ("--min-queries", "70"),  # early stopping estimates the p90 from 64 queries on
    "MultiStream": (),
    "Server": ("--target-qps", "100", "--latency-bound", "500ms"),
    "Offline": (),  # its expected QPS from a probe
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_each_scenario_runs_and_loadgen_judges_it(monkeypatch, capsys, tmp_path, scenario):
    code, out, err = run_cli(monkeypatch, capsys, "loadgen", "zoo:seednet-digits", "--scenario", scenario.lower(),
                             *SHORT, *SCENARIOS[scenario], "--out", str(tmp_path), "--json")
    assert code == 0, err
    run = json.loads(out)
    s = run["summary"]
    assert s["scenario"] == scenario and s["mode"] == "PerformanceOnly"
    assert s["result"] in ("VALID", "INVALID") and s["valid"] == (s["result"] == "VALID")
    assert s["valid"] or s["reasons"]  # an INVALID run says why
    assert s["metric_value"] > 0
    lat = s["latencies_ms"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    assert run["streams"] == (1 if scenario == "SingleStream" else 2) and run["samples"] == 32
    if scenario == "SingleStream":  # the metric is the p90, and early stopping estimates it
        assert s["metric"] == "90.0th percentile latency (ms)" and s["metric_value"] == lat["p90"]
        assert s["estimates_ms"]["p90"] >= lat["p90"]
    if scenario == "MultiStream":  # 8 samples per query: a query ends with its slowest sample
        assert s["metric"] == "99.0th percentile latency (ms)"
        assert "samples_per_query : 8" in (tmp_path / "mlperf_log_summary.txt").read_text()
    if scenario == "Server":
        assert s["metric"] == "Completed samples per second" and run["probed_qps"] is None
    if scenario == "Offline":
        assert s["metric"] == "Samples per second" and run["probed_qps"] > 0
        assert run["config"]["target_qps"] == pytest.approx(2 * run["probed_qps"])
    # the files: loadgen.json as printed, LoadGen's summary as it wrote it (and read back alike)
    assert json.loads((tmp_path / "loadgen.json").read_text()) == run
    text = (tmp_path / "mlperf_log_summary.txt").read_text()
    assert f"Scenario : {scenario}" in text and parse_summary(text).to_dict() == s
    assert (tmp_path / "mlperf_log_detail.txt").read_text().startswith(":::MLLOG")


def test_an_impossible_latency_bound_is_invalid_with_loadgens_reason(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "loadgen", "zoo:seednet-digits", "--scenario", "Server",
                             "--target-qps", "200", "--latency-bound", "0.01ms", *SHORT, "--out", str(tmp_path))
    assert code == 0, err
    assert "Result is INVALID" in out and "INVALID because (LoadGen):" in out
    assert "Performance constraints satisfied: NO" in out
    summary = json.loads((tmp_path / "loadgen.json").read_text())["summary"]
    assert "Performance constraints satisfied: NO" in summary["reasons"]
    assert summary["constraints"]["Performance constraints satisfied"] is False


@pytest.mark.parametrize("args, needle", [
    (("--scenario", "Batch"), "unknown scenario 'Batch'"),
    (("--scenario", "Server", "--latency-bound", "30ms"), "needs --target-qps"),
    (("--scenario", "Server", "--target-qps", "50"), "needs --latency-bound"),
    (("--scenario", "Offline", "--target-qps", "50", "--latency-bound", "30ms"), "--latency-bound does not apply"),
    (("--scenario", "SingleStream", "--target-qps", "50"), "--target-qps does not apply"),
    (("--scenario", "Server", "--target-qps", "0", "--latency-bound", "30ms"), "--target-qps 0 is out of range"),
    (("--scenario", "Server", "--target-qps", "50", "--latency-bound", "fast"), "bad --latency-bound duration 'fast'"),
    (("--scenario", "SingleStream", "--duration", "-1s"), "bad --duration"),
    (("--scenario", "SingleStream", "--streams", "2"), "--streams does not apply"),
])
def test_bad_options_end_in_one_line(monkeypatch, capsys, tmp_path, args, needle):
    code, _, err = run_cli(monkeypatch, capsys, "loadgen", "zoo:seednet-digits", *args, "--out", str(tmp_path))
    assert_one_line_error(code, err, needle)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_failing_inference_ends_the_test_with_its_error(backend):
    m = edgeopt.load_model("zoo:seednet-digits")
    bad = [{m.inputs[0].name: np.zeros((1, 2, 3), np.float32)}]
    config = LoadGenConfig.parse("Server", target_qps=100, latency_bound_ms=30, duration_s=0.1, min_queries=5)
    with pytest.raises(EdgeoptError, match="an inference failed under LoadGen"):
        run_loadgen(m, backend, config, threads=2, streams=2, samples=bad)


def test_a_summary_that_is_not_loadgens_is_refused():
    with pytest.raises(EdgeoptError, match="does not read as mlcommons-loadgen"):
        parse_summary("Scenario : Server\nsomething else\n")


def test_bench_streams_adds_throughput_rows(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", "--backend", "ort", "--threads", "2",
                             "--streams", "1,2", "--sessions", "1", "--budget", "4", "--out", str(tmp_path))
    assert code == 0, err
    assert "img/s with N requests in flight" in out
    cells = json.loads((tmp_path / "bench.json").read_text())["throughput"]
    assert [(c["backend"], c["threads"], c["streams_asked"], c["streams"]) for c in cells] == [
        ("ort", 2, 1, 1), ("ort", 2, 2, 2)]
    for c in cells:
        assert c["error"] is None and c["throughput"] > 0
        assert c["throughput"] == pytest.approx(len(c["latencies_ms"]) / c["duration_s"])
        assert c["stats"]["p50"] <= c["stats"]["p90"] <= c["stats"]["p99"]


def test_bench_streams_is_refused_with_a_device(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet-digits", "--streams", "2", "--device", "pi",
                           "--out", str(tmp_path))
    assert_one_line_error(code, err, "--streams runs here")
