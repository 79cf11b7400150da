"""Roofline: roof math, kernel-to-layer attribution, ORT trace parsing, and zoo:seednet end to end."""

from __future__ import annotations

import dataclasses
import json

import pytest
import typer
from onnx import helper
from typer.testing import CliRunner

import edgeopt
from edgeopt.analysis.device import DeviceProfile, save_profile
from edgeopt.bench.machine.layer_times import (
    GraphIndex, Kernel, LayerTime, LayerTimes, _kernels_from_trace, attribute,
)
from edgeopt.analysis.profile import LayerProfile, ModelProfile
from edgeopt.analysis.roofline import attainable_gflops, is_memory_bound
from edgeopt.bench.machine.roofline import roofline, roofline_rows
from edgeopt.cli.roofline import command
from edgeopt.errors import EdgeoptError
from edgeopt.report.roofline_plot import plot_roofline

# A hand-made device: ridge = 40 GFLOP/s / 10 GB/s = 4 FLOPs/byte at one thread.
DEVICE = DeviceProfile(name="test box", source="datasheet", cores=2,
                       peak_gflops={"fp32": {1: 40.0, 2: 80.0}}, bandwidth_gbs={"copy": 8.0, "triad": 10.0})


# -- roof math -------------------------------------------------------------------------------
def test_attainable_is_the_lower_roof():
    assert attainable_gflops(1.0, 40.0, 10.0) == 10.0      # bandwidth x AI under the ridge
    assert attainable_gflops(4.0, 40.0, 10.0) == 40.0      # at the ridge both roofs meet
    assert attainable_gflops(100.0, 40.0, 10.0) == 40.0    # compute roof above it
    assert attainable_gflops(0.0, 40.0, 10.0) == 0.0
    with pytest.raises(EdgeoptError, match="positive peak"):
        attainable_gflops(1.0, 40.0, 0.0)
    with pytest.raises(EdgeoptError, match=">= 0"):
        attainable_gflops(-1.0, 40.0, 10.0)


def test_memory_bound_flag_is_below_the_ridge():
    assert is_memory_bound(3.9, 4.0) and not is_memory_bound(4.0, 4.0) and not is_memory_bound(50, 4.0)


def _layer(name, op, macs, weight_bytes, act_bytes):
    return LayerProfile(name, op, (1,), 0, macs, 0, weight_bytes, act_bytes, True)


def test_rows_from_hand_made_numbers():
    layers = [_layer("big", "Conv", 1_000_000, 50_000, 50_000),   # AI = 2e6/1e5 = 20 FLOPs/B: compute-bound
              _layer("fc", "Gemm", 100_000, 400_000, 1_000),      # AI = 2e5/401000 ~ 0.5: memory-bound
              _layer("relu", "Relu", 0, 0, 8_000)]
    prof = ModelProfile("m", 1, {}, layers, 0, 1_100_000, 0, 0, 0, 0, 2, 3, 0)
    times = LayerTimes("ort", 1, 1, 10, 0.2, (LayerTime("big", "Conv", 0.1, ("k1",)),
                                               LayerTime("fc", "Gemm", 0.05, ("k2",)),
                                               LayerTime("relu", "Relu", 0.0, (), fused_into="big"),
                                               LayerTime("ReorderInput", "ReorderInput", 0.05, ("ReorderInput",),
                                                         runtime_only=True)))
    rows = {r.name: r for r in roofline_rows(prof, times, peak_gflops=40.0, bandwidth_gbs=10.0)}
    big, fc, relu, reorder = rows["big"], rows["fc"], rows["relu"], rows["ReorderInput"]
    assert big.intensity == pytest.approx(20.0) and big.attainable_gflops == 40.0 and big.bound == "compute"
    assert big.achieved_gflops == pytest.approx(2e6 / 0.1e-3 / 1e9)  # 20 GFLOP/s
    assert big.roof_pct == pytest.approx(50.0)
    assert fc.intensity == pytest.approx(2e5 / 401_000) and fc.bound == "memory"
    assert fc.attainable_gflops == pytest.approx(10.0 * 2e5 / 401_000)
    assert fc.achieved_gflops == pytest.approx(4.0)
    assert relu.bound == "-" and relu.achieved_gflops is None and relu.status == "fused into big"
    assert reorder.status == "runtime-only" and reorder.ms == 0.05


def test_cache_aware_rows_use_the_roof_of_the_level_the_working_set_fits():
    # L2 512 KiB, L3 4 MiB; roofs at the thread count used: L2 40, L3 20, DRAM 5 GB/s.
    caches = {"L1d": 32 * 1024, "L2": 512 * 1024, "L3": 4 * 1024 ** 2}
    roofs = {"L2": 40.0, "L3": 20.0, "DRAM": 5.0}
    layers = [_layer("small", "Gemm", 100_000, 100_000, 10_000),     # 110 kB -> L2, AI 1.82
              _layer("mid", "Gemm", 1_000_000, 2_000_000, 10_000),   # 2.01 MB -> L3, AI 0.995
              _layer("huge", "Conv", 50_000_000, 8_000_000, 2_000_000),  # 10 MB -> DRAM, AI 10
              _layer("relu", "Relu", 0, 0, 8_000)]
    prof = ModelProfile("m", 1, {}, layers, 0, 51_100_000, 0, 0, 0, 0, 3, 4, 0)
    times = LayerTimes("ort", 1, 1, 10, 1.0, (LayerTime("small", "Gemm", 0.01, ("a",)),
                                              LayerTime("mid", "Gemm", 0.2, ("b",)),
                                              LayerTime("huge", "Conv", 5.0, ("c",)),
                                              LayerTime("relu", "Relu", 0.01, ("d",))))
    rows = {r.name: r for r in roofline_rows(prof, times, peak_gflops=40.0, bandwidth_gbs=10.0,
                                             memory_roofs=roofs, caches=caches)}
    small, mid, huge, relu = rows["small"], rows["mid"], rows["huge"], rows["relu"]
    assert [small.level, mid.level, huge.level, relu.level] == ["L2", "L3", "DRAM", "-"]
    # small: 2e5 FLOPs in 0.01 ms = 20 GFLOP/s, above the classic roof 10 x 1.82 = 18.2 (110%),
    # below its L2 roof min(40, 40 x 1.82) = 40 (50%).
    assert small.roof_pct == pytest.approx(100 * 20 / (10 * 2e5 / 110_000))
    assert small.level_attainable_gflops == 40.0 and small.level_roof_pct == pytest.approx(50.0)
    assert small.bound == "memory" and small.level_bound == "compute"  # L2 ridge 40/40 = 1 FLOP/B
    assert mid.level_attainable_gflops == pytest.approx(20.0 * 2e6 / 2_010_000) and mid.level_bound == "memory"
    assert huge.level_attainable_gflops == 40.0 and huge.level_bound == "compute"  # DRAM ridge 8 < AI 10
    assert relu.level_bound == "-" and relu.level_attainable_gflops is None
    # Without cache-aware roofs the level fields stay empty.
    plain = roofline_rows(prof, times, peak_gflops=40.0, bandwidth_gbs=10.0)
    assert {r.level for r in plain} == {"-"} and all(r.level_roof_pct is None for r in plain)


# -- mapping kernels back to ONNX nodes --------------------------------------------------------
def _toy_graph():
    """x -> conv1 -> bn1 -> relu1 -> conv2 -> add(conv2, relu1) -> relu2 -> y."""
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1"),
        helper.make_node("BatchNormalization", ["c1", "s", "b", "m", "v"], ["n1"], name="bn1"),
        helper.make_node("Relu", ["n1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Add", ["c2", "r1"], ["a"], name="add"),
        helper.make_node("Relu", ["a"], ["y"], name="relu2"),
    ]
    inits = [helper.make_tensor(n, 1, [1], [0.0]) for n in ("w1", "w2", "s", "b", "m", "v")]
    graph = helper.make_graph(nodes, "toy", [helper.make_tensor_value_info("x", 1, [1, 1, 4, 4])],
                              [helper.make_tensor_value_info("y", 1, [1, 1, 4, 4])], inits)
    macs = {"conv1": 100, "bn1": 0, "relu1": 0, "conv2": 200, "add": 0, "relu2": 0}
    ops = {n.name: n.op_type for n in nodes}
    return GraphIndex.from_proto(helper.make_model(graph)), macs, ops


def test_fused_kernels_are_charged_to_the_conv():
    graph, macs, ops = _toy_graph()
    kernels = [Kernel("fused_k", "FusedConv", 1.0, ("r1",)),              # Conv+BN+Relu, writes the Relu's tensor
               Kernel("c2_nchwc_token_7", "Conv", 2.0, ("internal",)),   # NCHWc conv named after its output
               Kernel("ReorderOutput", "ReorderOutput", 0.5),
               Kernel("mystery", "Foo", 0.1)]
    rows = {r.name: r for r in attribute(kernels, graph, macs, ops)}
    assert rows["conv1"].ms == 1.0 and rows["conv1"].kernels == ("fused_k",) and rows["conv1"].status == "timed"
    assert rows["bn1"].status == "fused into conv1" and rows["relu1"].status == "fused into conv1"
    assert rows["conv2"].ms == 2.0
    # The Add reads conv2's and relu1's tensors: it joins the later producer, conv2.
    assert rows["add"].status == "fused into conv2" and rows["relu2"].status == "fused into conv2"
    assert rows["ReorderOutput"].runtime_only and rows["mystery"].runtime_only
    assert sum(r.ms for r in rows.values()) == pytest.approx(3.6)


def test_exact_names_win_and_unreached_nodes_have_no_kernel():
    graph, macs, ops = _toy_graph()
    rows = {r.name: r for r in attribute([Kernel("conv2", "Conv", 2.0), Kernel("a", "Add", 0.3)],
                                         graph, macs, ops)}
    assert rows["conv2"].ms == 2.0 and rows["add"].ms == 0.3  # "a" is the Add's output tensor (OpenVINO naming)
    assert rows["relu2"].status == "fused into add"
    assert rows["conv1"].status == "no kernel" and rows["relu1"].status == "no kernel"


def test_a_tail_kernel_without_a_mac_op_claims_only_itself():
    # OpenVINO names Conv+BN kernels after the Conv; a separate Relu kernel must not take the BN.
    graph, macs, ops = _toy_graph()
    rows = {r.name: r for r in attribute([Kernel("conv1", "Convolution", 1.0), Kernel("r1", "Relu", 0.2)],
                                         graph, macs, ops)}
    assert rows["relu1"].ms == 0.2 and rows["relu1"].status == "timed"
    assert rows["bn1"].status == "fused into conv1" and rows["conv1"].ms == 1.0


def test_ort_trace_counts_only_the_last_runs():
    def node(name, ts, dur):
        return {"cat": "Node", "name": f"{name}_kernel_time", "ts": ts, "dur": dur, "args": {"op_name": "Conv"}}

    trace = [{"cat": "Session", "name": "model_run", "ts": 0, "dur": 100},    # warm-up
             node("a", 10, 90),
             {"cat": "Session", "name": "model_run", "ts": 200, "dur": 100},
             node("a", 210, 40), node("b", 260, 30), {"cat": "Node", "name": "a_fence_before", "ts": 205, "dur": 5},
             {"cat": "Session", "name": "model_run", "ts": 400, "dur": 100},
             node("a", 410, 60), node("b", 480, 10)]
    kernels = {k.name: k for k in _kernels_from_trace(trace, 2, {"a": ("t",)})}
    assert kernels["a"].ms == pytest.approx((40 + 60) / 2 / 1e3) and kernels["a"].outputs == ("t",)
    assert kernels["b"].ms == pytest.approx((30 + 10) / 2 / 1e3) and kernels["b"].op_type == "Conv"
    with pytest.raises(EdgeoptError, match="model_run"):
        _kernels_from_trace(trace, 5, {})


# -- zoo:seednet on ONNX Runtime -----------------------------------------------------------------
@pytest.fixture(scope="module")
def seednet():
    return edgeopt.load_model("zoo:seednet")


@pytest.fixture(scope="module")
def seednet_roof(seednet):
    return roofline(seednet, DEVICE, backend="ort", threads=1, runs=10, warmup=3)


def test_seednet_conv_intensity_by_hand(seednet_roof):
    conv1 = next(r for r in seednet_roof.rows if r.op_type == "Conv")
    # conv 16@7x7 on 1x88x88 -> 16x82x82; weights 16*1*7*7 + 16 bias, fp32.
    macs = 16 * 82 * 82 * 7 * 7
    moved = (16 * 49 + 16) * 4 + (88 * 88 + 16 * 82 * 82) * 4
    assert conv1.macs == macs and conv1.bytes == moved
    assert conv1.intensity == pytest.approx(2 * macs / moved)  # 22.7 FLOPs/byte
    assert conv1.attainable_gflops == 40.0 and conv1.bound == "compute"  # above the 4 FLOPs/B ridge
    assert seednet_roof.flops == 2 * 49_371_200


def test_seednet_layer_times_match_a_timed_run(seednet, seednet_roof):
    bench = edgeopt.benchmark(seednet, "ort", threads=1, min_runs=20, min_time_s=0.3, max_time_s=5)
    assert bench.ok, bench.error
    ratio = seednet_roof.kernel_ms / bench.stats.p50
    assert 0.3 <= ratio <= 1.5, (seednet_roof.kernel_ms, bench.stats.p50)
    convs = [r for r in seednet_roof.rows if r.op_type in ("Conv", "Gemm")]
    assert len(convs) == 5 and all(r.ms > 0 and r.status == "timed" for r in convs), [(r.name, r.status) for r in convs]
    # The 16->48 6x6 conv has 73% of the MACs: it should take the most time.
    assert max(seednet_roof.rows, key=lambda r: r.ms).macs == 16 * 48 * 36 * 36 * 36


def test_plot_and_cli_write_their_files(seednet_roof, tmp_path):
    png = plot_roofline(seednet_roof, tmp_path / "plot" / "roofline.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    app = typer.Typer()
    app.command("roofline")(command)
    dev = save_profile(DEVICE, tmp_path / "dev.json")
    result = CliRunner().invoke(app, ["zoo:seednet", "--device", str(dev), "--threads", "1", "--runs", "3",
                                      "--out", str(tmp_path / "out")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "memory-bound (AI < ridge)" in result.output and "ridge 4.0 FLOPs/byte" in result.output
    # a datasheet profile's roofs are estimated, the layer times this machine's: said plainly
    assert "estimated roofs: test box's datasheet peaks, not measured; the layer times were measured here" \
        in " ".join(result.output.split())
    data = json.loads((tmp_path / "out" / "roofline.json").read_text())
    assert data["peak_gflops"] == 40.0 and data["bandwidth_gbs"] == 10.0 and data["device"]["name"] == "test box"
    assert (tmp_path / "out" / "roofline.png").stat().st_size > 10_000
    assert data["memory_roofs_gbs"] == {} and "level" not in result.output

    # A profile with cache-aware roofs: the level columns, the summary and the JSON fields.
    roofs = {"L2": {1: 50.0, 2: 90.0}, "L3": {1: 30.0, 2: 55.0}, "DRAM": {1: 12.0, 2: 20.0}}
    dev2 = save_profile(dataclasses.replace(DEVICE, caches={"L2": 512 * 1024, "L3": 32 * 1024 ** 2},
                                            memory_roofs_gbs=roofs), tmp_path / "dev2.json")
    result = CliRunner().invoke(app, ["zoo:seednet", "--device", str(dev2), "--threads", "1", "--runs", "3",
                                      "--out", str(tmp_path / "out2")], env={"COLUMNS": "240"})
    assert result.exit_code == 0, result.output
    assert "L2 50.0 GB/s (ridge 0.8)" in result.output and "cache-aware: working sets in L2" in result.output
    data = json.loads((tmp_path / "out2" / "roofline.json").read_text())
    assert data["memory_roofs_gbs"] == {"L2": 50.0, "L3": 30.0, "DRAM": 12.0}  # at 1 thread
    convs = [r for r in data["rows"] if r["op_type"] == "Conv"]
    assert convs and all(r["level"] in ("L2", "L3") for r in convs)  # seednet's convs are < 1 MB
    assert 0 <= data["cache_aware_memory_bound_share"] <= 1


def test_cli_rejects_a_bad_backend_and_a_file_as_out(tmp_path):
    app = typer.Typer()
    app.command("roofline")(command)
    dev = save_profile(DEVICE, tmp_path / "dev.json")
    result = CliRunner().invoke(app, ["zoo:seednet", "--device", str(dev), "--backend", "tvm"])
    assert isinstance(result.exception, EdgeoptError) and "ort or openvino" in str(result.exception)
    result = CliRunner().invoke(app, ["zoo:seednet", "--device", str(dev), "--out", str(dev)])
    assert isinstance(result.exception, EdgeoptError) and "is a regular file, not a folder" in str(result.exception)


def test_openvino_counters_map_to_the_same_layers(seednet):
    pytest.importorskip("openvino")
    from edgeopt.bench.machine.layer_times import measure_layer_times

    times = measure_layer_times(seednet, edgeopt.profile(seednet), backend="openvino", threads=1, runs=3, warmup=1)
    rows = {t.name: t for t in times.layers}
    macs_layers = [t for t in times.layers if t.op_type in ("Conv", "Gemm")]
    assert len(macs_layers) == 5 and all(t.status == "timed" and t.ms > 0 for t in macs_layers)
    assert rows["/features/features.1/Relu"].status == "fused into /features/features.0/Conv"
