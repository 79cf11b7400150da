"""Memory traffic and energy (edgeopt.analysis.energy) and `edgeopt energy`.

Hand-checked numbers are for the first conv of zoo:seednet (1 -> 16 channels, 7x7, on
1x1x88x88, bias): 82 x 82 x 16 x 49 = 5,271,616 MACs; weights 16 x 49 x 4 + 16 x 4 =
3,200 bytes; input 88 x 88 x 4 = 30,976 bytes; output (ReLU fused) 16 x 82 x 82 x 4 =
430,336 bytes; working set 464,512 bytes. The next layer (max-pool 2x2) reads those
430,336 bytes and writes 16 x 41 x 41 x 4 = 107,584: working set 537,920 bytes.
"""

from __future__ import annotations

import json

import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

import edgeopt
from edgeopt.analysis.device import DeviceProfile, save_profile
from edgeopt.analysis.energy import (
    TPU_OPS_PER_WEIGHT_BYTE,
    EnergyTable,
    compare_energy,
    compute_to_weight_dram_ratio,
    load_table,
    model_energy,
    ops_per_weight_byte,
    seed_claims,
)
from edgeopt.errors import EdgeoptError

CONV1 = dict(macs=5_271_616, weight_bytes=3_200, input_bytes=30_976, output_bytes=430_336)
KIB = 1024
BOX = DeviceProfile(name="test box", source="datasheet", cores=2, peak_gflops={"fp32": {1: 10.0}},
                    bandwidth_gbs={"copy": 10.0}, caches={"L3": 8 * KIB * KIB, "L1d": 32 * KIB, "L2": 512 * KIB})


@pytest.fixture(scope="module")
def seednet():
    return edgeopt.load_model("zoo:seednet")


@pytest.fixture(scope="module")
def seednet_int8(seednet):
    from edgeopt.passes.base import run_pass

    calibration = edgeopt.demo_images()[1].tensor(seednet.preprocess)[:16]
    return run_pass("int8-static", seednet, None, calibration=calibration)


def _first_conv(report):
    return next(layer for layer in report.layers if layer.op_type == "Conv")


# -- the table ------------------------------------------------------------------------------------
def test_table_reproduces_the_seed_ratios_and_takes_overrides(tmp_path):
    claims = seed_claims()
    assert claims["dram_per_fp32_mac"]["table"] == pytest.approx(640 / 4.6)  # 139.1, the seed says 200
    assert round(claims["dram_per_fp32_mac"]["table"]) == 139
    assert claims["dram_per_sram_read"]["table"] == 128.0 == claims["dram_per_sram_read"]["seed"]
    t = EnergyTable()
    assert t.mac_pj("fp32") == pytest.approx(4.6) and t.mac_pj("int8") == pytest.approx(0.23)
    assert t.mac_pj("fp16") == pytest.approx(1.5) and t.mac_pj("int32") == pytest.approx(3.2)
    # Seed: with all weights off chip, CNN0 spends 2:1 on compute vs memory; the table gives 2.08.
    assert compute_to_weight_dram_ratio(TPU_OPS_PER_WEIGHT_BYTE["CNN0"]) == pytest.approx(1444 * 0.23 / 160)
    # Charging each TPU op as one MAC gives the seed's CNN1 and LSTM figures (2.5:1, 1:10, 1:7).
    one_op_per_mac = {k: compute_to_weight_dram_ratio(v, ops_per_mac=1) for k, v in TPU_OPS_PER_WEIGHT_BYTE.items()}
    assert round(one_op_per_mac["CNN1"], 1) == 2.5 and round(1 / one_op_per_mac["LSTM1"]) == 7
    assert round(1 / one_op_per_mac["LSTM0"]) == 11
    path = tmp_path / "t.json"
    path.write_text(json.dumps({"dram_read_pj": 1300, "source": "LPDDR4 guess"}))
    custom = load_table(path)
    assert custom.dram_read_pj == 1300 and custom.sram_read_pj == 5.0 and custom.source == "LPDDR4 guess"
    with pytest.raises(EdgeoptError, match="unknown energy table entries dram_pj"):
        EnergyTable.from_dict({"dram_pj": 1})
    with pytest.raises(EdgeoptError, match="not a positive number"):
        EnergyTable(sram_read_pj=-1)
    with pytest.raises(EdgeoptError, match="unknown precision"):
        t.mac_pj("int4")


# -- one layer by hand -------------------------------------------------------------------------------
def test_conv_that_does_not_fit_sends_everything_to_dram(seednet):
    report = model_energy(seednet, sram=256 * KIB)
    conv = _first_conv(report)
    assert {k: getattr(conv, k) for k in CONV1} == CONV1
    assert conv.precision == "fp32" and conv.compute_pj == pytest.approx(5_271_616 * 4.6)
    assert conv.working_set == 464_512 and not conv.on_chip and conv.fits == "DRAM"
    assert not report.weights_resident  # 4.16 MB of weights do not fit 256 KiB
    # Weights and the graph input come from DRAM; the output is written for the pool to read.
    assert (conv.dram_weight_bytes, conv.dram_read_bytes, conv.dram_write_bytes) == (3_200, 30_976, 430_336)
    assert conv.onchip_pj == pytest.approx(464_512 / 4 * 5)
    assert conv.dram_pj == pytest.approx(464_512 / 4 * 640)
    pool = report.layers[report.layers.index(conv) + 1]
    assert pool.op_type == "MaxPool" and pool.dram_read_bytes == 430_336
    # ReLU and Flatten are fused (aliases), they are no layers of their own.
    assert not any(layer.op_type in ("Relu", "Flatten") for layer in report.layers)
    assert len(report.fused) == 4
    assert report.total_pj == pytest.approx(sum(layer.total_pj for layer in report.layers))
    assert sum(report.share(layer) for layer in report.layers) == pytest.approx(1.0)


def test_conv_that_fits_keeps_its_output_on_chip(seednet):
    report = model_energy(seednet, sram=1024 * KIB)
    conv = _first_conv(report)
    pool = report.layers[report.layers.index(conv) + 1]
    assert conv.on_chip and pool.on_chip and conv.fits == "SRAM"
    assert (conv.dram_weight_bytes, conv.dram_read_bytes, conv.dram_write_bytes) == (3_200, 30_976, 0)
    assert pool.dram_read_bytes == 0
    assert conv.dram_pj == pytest.approx((3_200 + 30_976) / 4 * 640)


def test_device_caches_are_the_levels_and_resident_weights_cost_no_dram(seednet):
    report = model_energy(seednet, BOX)
    assert list(report.levels) == ["L1d", "L2", "L3"] and report.capacity == ("L3", 8 * KIB * KIB)
    conv = _first_conv(report)
    assert conv.fits == "L2"  # 464,512 bytes <= 512 KiB
    # 4.16 MB of weights + the largest activations fit 8 MiB: resident across inferences.
    assert report.weights_resident and all(layer.dram_weight_bytes == 0 for layer in report.layers)
    assert report.device == "test box"
    with pytest.raises(EdgeoptError, match="--sram"):
        model_energy(seednet)


def test_batch_scales_activations_not_weights(seednet):
    one, four = model_energy(seednet, sram=256 * KIB), model_energy(seednet, sram=256 * KIB, batch=4)
    c1, c4 = _first_conv(one), _first_conv(four)
    assert c4.macs == 4 * c1.macs and c4.input_bytes == 4 * c1.input_bytes
    assert c4.weight_bytes == c1.weight_bytes and c4.dram_weight_bytes == c1.dram_weight_bytes


# -- variants -----------------------------------------------------------------------------------------
def test_int8_cuts_compute_energy_by_the_table_ratio(seednet, seednet_int8):
    cmp = compare_energy({"fp32": seednet, "int8": seednet_int8}, sram=256 * KIB)
    assert cmp.matched_by == {"fp32": "name", "int8": "name"} and len(cmp.rows) == 5  # 3 conv + 2 fc
    int8_rows = [row for _, row in cmp.rows if row["int8"].precision == "int8"]
    assert len(int8_rows) >= 3  # the convolutions (ORT keeps the output layer in float)
    for row in int8_rows:
        assert row["int8"].macs == row["fp32"].macs
        assert row["fp32"].compute_pj / row["int8"].compute_pj == pytest.approx(4.6 / 0.23)  # 20x
        assert row["int8"].weight_bytes < row["fp32"].weight_bytes / 3  # int8 weights + scales
    conv = cmp.rows[0][1]["int8"]
    # QDQ: the float tensors between QuantizeLinear and DequantizeLinear count as uint8.
    assert conv.input_bytes == 88 * 88 and conv.output_bytes == 16 * 82 * 82
    totals = {v: r.compute_pj for v, r in cmp.reports.items()}
    assert totals["int8"] < totals["fp32"] / 5
    assert cmp.reports["int8"].total_pj < cmp.reports["fp32"].total_pj


def _two_branch_model(path, order=("a", "b", "add"), prefix=""):
    """x (1,4,8,8) -> conv 3x3 (branch a) and conv 1x1 (branch b) -> Add, like a ResNet shortcut."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n)
             for n, s in (("wa", (4, 4, 3, 3)), ("wb", (4, 4, 1, 1)))]
    nodes = {"a": helper.make_node("Conv", ["x", "wa"], ["ya"], name=f"{prefix}conv_a", pads=[1, 1, 1, 1]),
             "b": helper.make_node("Conv", ["x", "wb"], ["yb"], name=f"{prefix}conv_b"),
             "add": helper.make_node("Add", ["ya", "yb"], ["y"], name=f"{prefix}add")}
    graph = helper.make_graph([nodes[k] for k in order], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 4, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return edgeopt.load_model(str(path), shape=["x=1x4x8x8"])


def test_compare_matches_reordered_layers_by_name_and_renamed_ones_by_order(tmp_path):
    base = _two_branch_model(tmp_path / "base.onnx")
    swapped = _two_branch_model(tmp_path / "swapped.onnx", order=("b", "a", "add"))
    renamed = _two_branch_model(tmp_path / "renamed.onnx", prefix="q_")
    cmp = compare_energy({"base": base, "swapped": swapped, "renamed": renamed}, sram=64 * KIB)
    assert cmp.matched_by == {"base": "name", "swapped": "name", "renamed": "order"}
    assert [label for label, _ in cmp.rows] == ["conv_a", "conv_b"]
    for _, row in cmp.rows:
        assert row["swapped"].macs == row["base"].macs == row["renamed"].macs
    assert cmp.rows[0][1]["base"].macs == 8 * 8 * 4 * 4 * 9  # the 3x3 branch
    # x comes from DRAM; conv_a's output skips conv_b to reach the Add: written to DRAM.
    a = cmp.rows[0][1]["base"]
    assert a.dram_read_bytes == 4 * 8 * 8 * 4 and a.dram_write_bytes == 4 * 8 * 8 * 4


# -- ops per weight byte ---------------------------------------------------------------------------------
def test_ops_per_weight_byte_of_resnet18_follows_the_profile():
    m = edgeopt.load_model("zoo:resnet18")
    prof = edgeopt.profile(m)
    value = ops_per_weight_byte(prof)
    assert value == pytest.approx(2 * prof.macs / prof.params)
    assert 1.7e9 < prof.macs < 1.9e9 and 11.0e6 < prof.params < 12.0e6  # ~1.81 GMACs, ~11.7 M params
    assert 280 < value < 340  # ~310 at batch 1: 9x below the TPU paper's CNN0 (2,888)
    assert ops_per_weight_byte(prof, bytes_per_weight=4) == pytest.approx(value / 4)
    with pytest.raises(EdgeoptError, match="batch 1, not 8"):
        ops_per_weight_byte(prof, batch=8)


def test_ops_per_weight_byte_grows_with_batch(seednet):
    one = ops_per_weight_byte(seednet)
    assert one == pytest.approx(2 * 49_371_200 / 1_039_744)
    assert ops_per_weight_byte(seednet, batch=8) == pytest.approx(8 * one)


# -- CLI ------------------------------------------------------------------------------------------------
def _app():
    from edgeopt.cli.energy import command

    app = typer.Typer()
    app.command("energy")(command)
    return app


def test_cli_writes_the_report_and_compares_int8(tmp_path, monkeypatch):
    import edgeopt.cli.energy as cli_energy

    monkeypatch.setattr(cli_energy, "console", Console(width=220))
    table = tmp_path / "table.json"
    table.write_text(json.dumps({"dram_read_pj": 1280}))
    out = tmp_path / "out" / "energy.json"
    result = CliRunner().invoke(_app(), ["zoo:seednet", "--sram", "256KiB", "--compare", "int8", "--table",
                                         str(table), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "TPU paper CNN0" in result.output and "2,888" in result.output
    assert "int8 by name" in result.output and "int8/original" in result.output
    data = json.loads(out.read_text())
    conv = next(layer for layer in data["report"]["layers"] if layer["op_type"] == "Conv")
    assert conv["compute_pj"] == pytest.approx(5_271_616 * 4.6)
    assert conv["dram_pj"] == pytest.approx(464_512 / 4 * 1280)  # the overridden DRAM cost
    assert data["report"]["capacity"] == {"name": "SRAM", "bytes": 262_144}
    assert data["ops_per_weight_byte"]["batch_1"] == pytest.approx(2 * 49_371_200 / 1_039_744)
    assert data["seed_claims"]["dram_per_sram_read"]["table"] == 256.0
    assert data["comparison"]["totals_pj"]["int8"] < data["comparison"]["totals_pj"]["original"]
    assert list(data["variants"]) == ["int8"]


def test_cli_reads_a_device_profile(tmp_path, monkeypatch):
    import edgeopt.cli.energy as cli_energy

    monkeypatch.setattr(cli_energy, "console", Console(width=220))
    dev = save_profile(BOX, tmp_path / "box.json")
    result = CliRunner().invoke(_app(), ["zoo:seednet", "--device", str(dev), "--batch", "2"])
    assert result.exit_code == 0, result.output
    assert "traffic model on L3 (8,192.0 KiB)" in result.output and "weights resident on chip" in result.output
    assert "this model, batch 2" in result.output


@pytest.mark.parametrize("args,needle", [(["--compare", "int4"], "unknown variant 'int4'"),
                                         (["--sram", "lots"], "bad size"),
                                         (["--batch", "0"], "--batch 0 is out of range: give an integer >= 1")])
def test_cli_rejects_bad_options(args, needle):
    result = CliRunner().invoke(_app(), ["zoo:seednet", "--sram", "256KiB", *args])
    assert isinstance(result.exception, EdgeoptError) and needle in str(result.exception), result.output
