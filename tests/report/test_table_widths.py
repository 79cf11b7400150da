"""Every terminal table keeps its identifiers and numbers whole at 60, 80 and 200 columns and
piped; piped output is TSV without markup; --json prints one document.

The tables are built from real small objects: the zoo list, zoo:seednet's profile, energy,
dataflow plan, Deep Compression and convolution costs, bench results from recorded
latencies, the optimize trials of tests/fixtures/search_summary_example.json."""

from __future__ import annotations

import dataclasses
import io
import json
import re
from types import SimpleNamespace

import pytest
from rich.console import Console

import edgeopt
from edgeopt.bench.harness import BenchResult
from edgeopt.report.console_table import ConsoleTable, Printer, plain, render, table_dict

from support import FIXTURES, run_cli

WIDTHS = (60, 80, 200)
MARKUP = re.compile(r"\[/?(bold|red|yellow|green|dim|magenta)[^\]]*\]|\x1b\[")


@pytest.fixture(scope="module")
def seednet():
    return edgeopt.load_model("zoo:seednet")


def _bench_results() -> list[BenchResult]:
    spiky = [0.90, 0.92, 0.93, 0.94, 0.94, 0.95, 0.96, 0.97, 0.99, 30.0, 0.91]
    steady = [8.0, 8.1, 7.9, 8.0, 8.05, 7.95]
    return [BenchResult("ort", "1.22", "zoo:seednet-digits", "ab", batch=1, threads=2, latencies_ms=spiky,
                        prepare_ms=12.5, first_ms=3.25),
            BenchResult("torch-onednn", "2.13", "zoo:seednet-digits", "ab", batch=8, threads=2,
                        latencies_ms=steady, prepare_ms=40.0, first_ms=9.5),
            BenchResult("openvino", "2025.1", "zoo:seednet-digits", "ab", batch=1, threads=2, latencies_ms=[],
                        error="openvino: could not compile")]


def _optimize_result():
    from edgeopt.optimizer.space import Point
    from edgeopt.optimizer.study import TrialRecord

    summary = json.loads((FIXTURES / "search_summary_example.json").read_text())
    fields = {f.name for f in dataclasses.fields(TrialRecord)} - {"point", "attrs"}
    def stats(s: dict) -> dict:  # the cv (std / mean) of the recorded runs, which the noise rule reads
        return {**s, "cv": s["std"] / s["mean"]} if s and s.get("mean") else s

    trials = [TrialRecord(point=Point(**t["point"]), attrs={"latency_stats": stats(t["latency_stats"])},
                          **{k: v for k, v in t.items() if k in fields}) for t in summary["trials"]]
    by_label: dict = {}
    for t in trials:  # a repeat of a point has its label too: the first trial is the one measured
        by_label.setdefault(t.label, t)
    return SimpleNamespace(strategy="search", trials=trials, elapsed_s=summary["elapsed_s"],
                           quality_metric=summary["quality_metric"], winner=by_label[summary["winner"]],
                           hand_picked_best=by_label[summary["hand_picked_best"]], fallback=summary["fallback"],
                           notes=summary["notes"], confirm_ms=summary["confirm_ms"],
                           speedup_vs_hand_picked=summary["speedup_vs_hand_picked"],
                           speedup_vs_baseline=summary["speedup_vs_baseline"], speedup_interval=(1.2, 1.4),
                           machine=summary["machine"])


def _layer_times(seednet):
    """Per-layer times as a profiled run of zoo:seednet recorded them (ms), no run here."""
    from edgeopt.bench.machine.layer_times import LayerTime, LayerTimes

    return LayerTimes("ort", 2, 1, 20, 0.9, tuple(LayerTime(layer.name, layer.op_type, 0.05 + layer.macs / 2e8,
                                                            (f"{layer.name}_kernel",))
                                                  for layer in edgeopt.profile(seednet).layers))


def _throughput():
    from edgeopt.bench.throughput import ThroughputResult

    return [ThroughputResult("openvino", "2025.1", "zoo:seednet-digits", "ab", threads=2, streams_asked=4, streams=2,
                             prepare_ms=120.5, duration_s=1.0, latencies_ms=[3.9, 4.1, 4.0, 4.2, 3.8] * 50),
            ThroughputResult("ort", "1.22", "zoo:seednet-digits", "ab", threads=2, streams_asked=2,
                             error="ort: out of memory")]


def _roofline(seednet):
    from edgeopt.bench.machine.measure import resolve_device
    from edgeopt.bench.machine.roofline import Roofline, roofline_rows

    prof = edgeopt.profile(seednet)
    device = resolve_device("raspberry-pi-4")
    times = _layer_times(seednet)
    peak, bandwidth = device.peak_gflops["fp32"][2], device.bandwidth
    rows = tuple(roofline_rows(prof, times, peak_gflops=peak, bandwidth_gbs=bandwidth))
    return Roofline(seednet.name, "ort", 2, 1, 20, device, "fp32", peak, bandwidth, 0.9, rows)


def _convalgo(seednet):
    from edgeopt.analysis.convalgo import analyze_model

    algorithms = ("direct", "im2col", "winograd2", "fft")
    # Costs are counted; the timings are skipped by the tiny budget and replaced by recorded times.
    layers = analyze_model(seednet, batch=1, algorithms=algorithms, max_seconds=1e-9, repeats=1, threads=1)
    timed = [dataclasses.replace(lay, results=[dataclasses.replace(r, ms=0.5 + i / 10, skipped="")
                                               if r.cost is not None else r for i, r in enumerate(lay.results)])
             for lay in layers]
    return algorithms, timed


def _suite_run():
    from edgeopt.suites.catalog import SuiteSpec
    from edgeopt.suites.run import SuiteCell, SuiteRun

    spec = SuiteSpec(name="seed-rpi", title="t", source="s", models=("zoo:seednet-digits",),
                     backends=("ort", "openvino"), threads=(2,), batches=(1, 8), metric="ms_per_image")
    cells = [SuiteCell(r.model, "fp32", r) for r in _bench_results()]
    return SuiteRun(spec, budget_s=60.0, elapsed_s=30.0, cells=cells, machine={"cpu_model": "Test CPU"})


@pytest.fixture(scope="module")
def tables(seednet) -> dict[str, ConsoleTable]:
    from edgeopt.analysis.dataflow import plan_model
    from edgeopt.analysis.dataflow_hardware import dataflow_hardware
    from edgeopt.analysis.energy import EnergyTable, compare_energy, ops_per_weight_byte
    from edgeopt.bench.compare import compare_results
    from edgeopt.bench.machine.measure import resolve_device
    from edgeopt.cli.device import boards_table
    from edgeopt.passes.prune.config import LayerChange, PruneConfig, PruneReport
    from edgeopt.report import (bench_extras, bench_table, compare_table, compress_table, convalgo_table,
                                dataflow_table, device_table, energy_table, history_table, model_table,
                                optimize_table, profile_table, prune_table, roofline_table, suite_table,
                                throughput_table)
    from edgeopt.store import RunInfo
    from edgeopt.zoo import entries

    results = _bench_results()
    profiled = [dataclasses.replace(results[0], layers=_layer_times(seednet).to_dict()),
                dataclasses.replace(results[1], layers={"error": "torch-onednn has no per-layer profiler"})]
    rpi = resolve_device("raspberry-pi-4")
    energy = compare_energy({"original": seednet, "same-again": seednet}, rpi, sram=None, batch=1,
                            table=EnergyTable())
    hw, _ = dataflow_hardware(256 * 1024, bandwidth_gbs=None, mac_rate_gmacs=None, bytes_per_word=4, device=None)
    compressed = edgeopt.deep_compress(seednet)
    algorithms, conv_layers = _convalgo(seednet)
    prune = PruneReport(PruneConfig(ratio=0.5, target_macs=None), 49_371_200, 24_685_600, 1_039_744, 520_000,
                        [LayerChange("features.0", 16, 8, tuple(range(8))), LayerChange("features.3", 48, 24, ())],
                        {"classifier.2": "its channels reach an output"})
    boards = [{"name": "rpi4-desk", "kind": "rpi4", "busy": 0,
               "profile": {"machine": {"cpu_model": "Cortex-A72", "arch": "aarch64", "usable_cpus": 4},
                           "runtimes": {"ort": "1.22.0"}, "peaks": {"fp32_gflops": 24.0, "bandwidth_gbs": 3.7}}}]
    return {
        "zoo": model_table.zoo_table(entries()),
        "ops": model_table.ops_table(seednet),
        "profile": profile_table.profile_table(edgeopt.profile(seednet)),
        "bench": bench_table.bench_table(results),
        "compare": compare_table.compare_table(compare_results(results, results[::-1][1:] + results[2:]),
                                               "a/bench.json", "history:12"),
        "optimize": optimize_table.optimize_table(_optimize_result()),
        "history": history_table.history_table([RunInfo(12, "suite", "seed-rpi", "2026-12-06T19:51:38", "edge-box",
                                                        "AMD EPYC 7B13 64-Core Processor", 60, {})], "/tmp/h.db"),
        "device": device_table.device_table(rpi),
        "roofline": roofline_table.roofline_table(_roofline(seednet)),
        "energy": energy_table.energy_layers_table(energy.reports["original"]),
        "ops_per_weight_byte": energy_table.ops_per_weight_byte_table({"batch_1": ops_per_weight_byte(seednet, 1)},
                                                                      EnergyTable()),
        "energy_comparison": energy_table.energy_comparison_table(energy),
        "dataflow": dataflow_table.plan_table(plan_model(seednet, hw)),
        "convalgo": convalgo_table.convalgo_table(conv_layers, algorithms, "zoo:seednet: convolution algorithms"),
        "prune": prune_table.prune_table(prune),
        "sensitivity": prune_table.sensitivity_table([{"layer": "features.3", "channels": 48, "drop@0.3": 0.4,
                                                       "drop@0.5": 2.25}]),
        "compress_stages": compress_table.stages_table(compressed),
        "compress_layers": compress_table.layers_table(compressed),
        "suite": suite_table.suite_table(_suite_run()),
        "layer_profile": bench_extras.layer_profile_tables(profiled)[0],
        "layer_profile_failed": bench_extras.layer_profile_tables(profiled)[1],
        "throughput": throughput_table.throughput_table(_throughput()),
        "boards": boards_table(boards),
    }


# Identifiers and numbers the issue saw cut, each in the table that shows it.
MUST_SHOW = {
    "zoo": ["zoo:seednet-digits", "zoo:ssdlite-mobilenetv2", "1x3x224x224"],
    "profile": ["/classifier/classifier.2/Gemm", "35,831,808", "49,371,200", "3,146,240"],
    "optimize": ["fp32@openvino t2 b1", "int8-nncf-1fp@openvino t1 b1", "pruned-50+kd/int8-nncf-1fp@ort t2 b1"],
    "bench": ["torch-onednn", "openvino: could not compile"],
    "roofline": ["/features/features.3/Conv", "/classifier/classifier.1/Gemm"],
    "energy": ["/features/features.0/Conv", "5,271,616"],
    "compare": ["zoo:seednet-digits", "torch-onednn b8 t2"],
    "suite": ["zoo:seednet-digits", "torch-onednn"],
    "layer_profile": ["/features/features.3/Conv", "/classifier/classifier.1/Gemm"],
    "layer_profile_failed": ["torch-onednn has no per-layer profiler"],
    "throughput": ["4>2", "ort: out of memory"],
}


def _render(table: ConsoleTable, width: int | None) -> str:
    """The table on a terminal ``width`` columns wide, or piped (None)."""
    buf = io.StringIO()
    console = Console(file=buf, width=width or 80, color_system=None, force_terminal=width is not None)
    render(table, console)
    return buf.getvalue()


def _whole(table: ConsoleTable) -> list[str]:
    """Every name and number cell's text (each line of a multi-line cell)."""
    return [line for row in table.rows for col, cell in zip(table.columns, row) if col.kind != "text"
            for line in plain(cell).split("\n") if line.strip()]


@pytest.mark.parametrize("width", [*WIDTHS, None], ids=[*map(str, WIDTHS), "piped"])
def test_every_name_and_number_appears_whole(tables, width):
    for key, table in tables.items():
        out = _render(table, width)
        assert "…" not in out, (key, width)  # Rich's mark of a cut cell
        missing = [v for v in _whole(table) + MUST_SHOW.get(key, []) if v not in out]
        assert not missing, (key, width, missing[:5])
        rules = [line for line in out.splitlines() if set(line.strip()) == {"─"}]
        if width is not None and rules:  # the grid: never wider than the terminal
            assert max(map(len, rules)) <= width, (key, width)


def test_a_narrow_terminal_gets_records_and_a_wide_one_the_grid(tables):
    narrow, wide = _render(tables["profile"], 60), _render(tables["profile"], 200)
    assert "─" not in narrow and "\n/features/features.3/Conv\n  op:       Conv\n" in narrow
    assert "  MACs:     35,831,808\n" in narrow
    row = next(line for line in wide.splitlines() if line.startswith("/features/features.3/Conv"))
    assert row.split() == ["/features/features.3/Conv", "Conv", "1x48x36x36", "27,696", "32", "35,831,808", "110,784",
                           "356,416", "76.7"]


def test_long_labels_go_on_their_own_line_when_only_they_do_not_fit(tables):
    out = _render(tables["optimize"], 80)
    lines = out.splitlines()
    at = lines.index("pruned-50+kd/int8-ort-percentile-1fp@openvino t1 b1")
    assert lines[at + 1].split() == ["0.542!", "2.79", "0.45", "rejected"]
    assert lines[lines.index("int8-nncf-1fp@openvino t1 b1") + 1].split() == ["0.957!", "0.00", "0.95", "chosen"]
    assert lines[lines.index("pruned-50+kd/int8-nncf-2fp@openvino t1 b1") + 1].split() == [
        "0.684", "3.06", "0.48", "rejected"]
    assert max(len(line) for line in lines if "─" in line) <= 80


def test_long_text_moves_to_footnotes_when_the_grid_needs_the_room():
    from edgeopt.report.console_table import columns

    reason = "quality drop 3.06 points > budget by 2.96: keeps its worst int8 layers in float"
    table = ConsoleTable("t", columns(("candidate", "name"), "ms/img", ("reason", "text")))
    table.add_row("pruned-50+kd/int8-nncf-1fp@openvino t1 b1", "0.594", reason)
    table.add_row("fp32@ort t2 b1", "1.575", "")
    out = _render(table, 60)
    assert "[1]" in out and f"[1] {reason}" in " ".join(out.split())
    assert "pruned-50+kd/int8-nncf-1fp@openvino t1 b1" in out and "─" in out


def test_piped_output_is_tsv_without_markup(tables):
    for key, table in tables.items():
        out = _render(table, None)
        assert not MARKUP.search(out), key
        lines = out.splitlines()
        header = next(line for line in lines if not line.startswith("#"))
        assert header.split("\t") == [c.name for c in table.columns], key
        rows = [line for line in lines[lines.index(header) + 1:] if not line.startswith("#")]
        assert len(rows) == len(table.rows) and all(r.count("\t") == len(table.columns) - 1 for r in rows), key


def test_bench_tsv_reads_with_cut(tables):
    out = _render(tables["bench"], None)
    rows = [line.split("\t") for line in out.splitlines() if not line.startswith("#")]
    assert rows[0][:5] == ["backend", "b", "t", "runs", "p50"]
    assert [r[0] for r in rows[1:]] == ["ort", "torch-onednn", "openvino"] and rows[1][4] == "0.94"
    assert "# failed openvino b1 t2: openvino: could not compile" in out


def test_json_rows_are_objects_with_numbers(tables, capsys):
    printer = Printer(Console(file=io.StringIO()), as_json=True, command="test")
    printer.table(tables["profile"], tables["optimize"])
    printer.line("wrote x")
    printer.close()
    doc = json.loads(capsys.readouterr().out)
    profile, optimize = doc["tables"]
    conv = next(r for r in profile["rows"] if r["layer"] == "/features/features.3/Conv")
    assert conv["MACs"] == 35_831_808 and conv["MACs/B"] == 76.7 and conv["output"] == "1x48x36x36"
    assert any("MACs 49,371,200" in n for n in profile["notes"])
    noisy = next(r for r in optimize["rows"] if r["candidate"] == "fp32@ort t2 b1")
    assert noisy["ms/img"] == 1.575 and noisy["MB"] == 3.73  # the noisy mark is in the notes, not the number
    assert any(n.startswith("  fp32@ort t2 b1: ") for n in optimize["notes"])
    labels = [r["candidate"] for r in optimize["rows"]]
    assert labels[0] == "pruned-50+kd/int8-ort-percentile-1fp@openvino t1 b1" and "fp32@openvino t2 b1" in labels
    assert doc["notes"] == ["wrote x"] and doc["command"] == "test"
    conv = table_dict(tables["convalgo"])["rows"][1]   # a cell of several lines stays whole, on one line
    assert conv["direct"] == "0.500 ms; 35.83 M mul (1.00x direct); 81 KiB" and conv["winograd2"] == "n/a"


@pytest.mark.parametrize("args", [("zoo",), ("profile", "zoo:seednet"), ("info", "zoo:seednet"),
                                  ("machine", "--show", "raspberry-pi-4")])
def test_cli_json_is_one_document(monkeypatch, capsys, args):
    code, out, err = run_cli(monkeypatch, capsys, *args, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["command"] == args[0] and doc["tables"] and doc["tables"][0]["rows"]
    if args[0] == "profile":  # the document profile --json always printed is still at the top level
        assert doc["macs"] == 49_371_200 and len(doc["layers"]) >= 5


def test_under_json_stdout_only_the_document_reaches_stdout(capfd):
    import os
    import sys

    from edgeopt.report.json_output import emit, json_stdout

    with json_stdout():
        os.write(1, b"a C library's line\n")       # what OpenVINO or TVM print from C++
        print("WARNING:nncf:Dataset contains only 18 samples")  # a logging handler on sys.stdout
        emit('{"command": "x"}\n')
        sys.stdout.flush()
    out, err = capfd.readouterr()
    assert json.loads(out) == {"command": "x"}
    assert "a C library's line" in err and "WARNING:nncf" in err
