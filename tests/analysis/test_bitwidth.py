"""Low bit widths in the profile and the energy model: one rule for a weight's bytes
(:mod:`edgeopt.analysis.bitwidth`: declared bits, else the stored packed width).

Hand-checked numbers are for a Conv (8, 3, 3, 3) + bias 8 -> Relu -> Flatten -> Gemm
(288, 16) + bias 16 on 1x3x6x6: fp32 weights (216 + 8 + 4608 + 16) x 4 = 19,392 bytes;
weights-int4 stores the kernels as INT4 codes (216 -> 108 bytes, 4608 -> 2304) beside
float32 per-channel scales (8 and 16) and float32 biases: 108 + 32 + 32 = 172 and
2304 + 64 + 64 = 2432 bytes.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from rich.console import Console
from typer.testing import CliRunner

import edgeopt
from edgeopt.analysis.bitwidth import BITS_KEY, declared_bits, element_bits, tensor_bytes, weight_bytes
from edgeopt.analysis.energy import compare_energy, model_energy
from edgeopt.analysis.profile import profile
from edgeopt.errors import ShapeError
from edgeopt.model import Model
from edgeopt.passes.base import run_pass
from edgeopt.report.console_table import render
from edgeopt.report.energy_table import energy_comparison_table, energy_layers_table
from edgeopt.report.profile_table import profile_table
from edgeopt.shapes import fix_input_shapes
from tests.support import tiny_model

F = TensorProto.FLOAT
PJ_PER_DRAM_BYTE = 640 / 4  # Horowitz: 640 pJ per 32-bit DRAM read


@pytest.fixture(scope="module")
def tiny() -> Model:
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["y"])]
    inits = [("cw", rng.normal(size=(8, 3, 3, 3)).astype(np.float32)),
             ("cb", rng.normal(size=8).astype(np.float32)),
             ("gw", rng.normal(size=(288, 16)).astype(np.float32)),
             ("gb", rng.normal(size=16).astype(np.float32))]
    proto, specs = fix_input_shapes(tiny_model(nodes, [("x", F, (None, 3, 6, 6))], [("y", F, (None, 16))], inits))
    return Model(proto=proto, inputs=specs, source="tiny")


def _declare(model: Model, bits: dict[str, int]) -> Model:
    """``model`` with ``bits`` declared in its metadata (what weights-binary writes)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    helper.set_model_props(proto, {BITS_KEY: json.dumps(bits)})
    return Model(proto=proto, inputs=model.inputs, source="tiny")


def _rows(p):
    return {layer.op_type: (layer.weight_bytes, layer.weight_bits) for layer in p.layers if layer.macs}


# -- the rule -------------------------------------------------------------------------------------
def test_bytes_are_declared_bits_else_the_packed_width() -> None:
    assert [element_bits(t) for t in (TensorProto.FLOAT, TensorProto.INT8, TensorProto.INT4, TensorProto.INT2)] \
        == [32, 8, 4, 2]
    assert tensor_bytes((7,), TensorProto.INT4) == 4 and tensor_bytes((7,), TensorProto.INT2) == 2
    assert tensor_bytes((216,), TensorProto.FLOAT, bits=4) == 108  # pow2: float32 declared 4-bit
    assert tensor_bytes((108,), TensorProto.INT2, bits=1) == 14  # binary codes in INT2: ceil(108 / 8)
    assert tensor_bytes(None, TensorProto.FLOAT) == 0 and tensor_bytes((3,), TensorProto.STRING) == 0


def test_malformed_metadata_is_one_clear_error(tiny) -> None:
    with pytest.raises(ShapeError, match="edgeopt.weight_bits .* is not a JSON object"):
        declared_bits(_declare(tiny, {"cw": 0}).proto)
    bad = _declare(tiny, {})
    bad.proto.metadata_props[0].value = "[4]"
    with pytest.raises(ShapeError, match="re-run the pass"):
        profile(bad)


# -- the profile ----------------------------------------------------------------------------------
def test_profile_counts_int4_pow2_and_declared_widths_by_hand(tiny) -> None:
    fp32, int4 = profile(tiny), profile(run_pass("weights-int4", tiny))
    assert _rows(fp32) == {"Conv": (224 * 4, 32), "Gemm": (4624 * 4, 32)} and fp32.weight_bytes == 19_392
    assert _rows(int4) == {"Conv": (108 + 32 + 32, 4), "Gemm": (2304 + 64 + 64, 4)}
    assert int4.weight_bytes == 2_604 and int4.params == fp32.params == 4_848
    pow2_model = run_pass("weights-pow2", tiny)
    pow2 = profile(pow2_model)
    assert _rows(pow2) == {"Conv": (108 + 32, 4), "Gemm": (2304 + 64, 4)} and pow2.weight_bytes == 2_508
    # declared bits win over the stored width: 1-bit codes held in INT2 (weights-binary)
    int2 = run_pass("weights-int2", tiny)
    assert _rows(profile(int2))["Conv"] == (54 + 32 + 32, 2)
    assert _rows(profile(_declare(int2, {"cw_q2": 1})))["Conv"] == (27 + 32 + 32, 1)
    # the passes' own count is the same rule
    assert weight_bytes(pow2_model.proto) == pow2.weight_bytes
    assert weight_bytes(run_pass("weights-int4", tiny).proto) == int4.weight_bytes


def test_profile_table_shows_weight_bits_and_the_stored_total(tiny) -> None:
    table = profile_table(profile(run_pass("weights-int4", tiny)))
    bits = table.columns.index(next(c for c in table.columns if c.name == "W bits"))
    assert [row[bits] for row in table.rows] == ["4", "4"]
    notes = " ".join(str(n) for n in table.notes)
    assert "weights 0.00 MB as stored" in notes and "below 8 bits in 2 layers (4-bit x2)" in notes
    assert "below 8 bits" not in " ".join(str(n) for n in profile_table(profile(tiny)).notes)


# -- the energy model -----------------------------------------------------------------------------
def test_weight_dram_energy_follows_the_low_width_and_macs_stay_fp32(tiny) -> None:
    variants = {"fp32": tiny, "int4": run_pass("weights-int4", tiny), "pow2": run_pass("weights-pow2", tiny)}
    reports = compare_energy(variants, sram=1024).reports  # 1 KiB: no weights stay resident
    assert {v: r.dram_weight_pj for v, r in reports.items()} == pytest.approx(
        {"fp32": 19_392 * PJ_PER_DRAM_BYTE, "int4": 2_604 * PJ_PER_DRAM_BYTE, "pow2": 2_508 * PJ_PER_DRAM_BYTE})
    for r in reports.values():
        assert [(layer.precision, layer.weight_bits) for layer in r.layers if layer.macs] == [
            ("fp32", 32 if r is reports["fp32"] else 4)] * 2
        # dequantized before the MACs: (8 x 6 x 6 x 27 + 288 x 16) fp32 MACs x 4.6 pJ
        assert r.compute_pj == pytest.approx((7_776 + 4_608) * 4.6)
    assert reports["int4"].dram_weight_pj / reports["fp32"].dram_weight_pj == pytest.approx(2_604 / 19_392)


def test_seednet_digits_weight_dram_energy_drops_by_the_byte_ratio() -> None:
    model = edgeopt.load_model("zoo:seednet-digits")
    variants = {"fp32": model, "weights-int4": run_pass("weights-int4", model),
                "weights-pow2": run_pass("weights-pow2", model)}
    comparison = compare_energy(variants, sram=256 * 1024)
    r = comparison.reports
    assert {v: x.weight_bytes for v, x in r.items()} == {
        "fp32": 3_726_568, "weights-int4": 468_056, "weights-pow2": 466_864}
    assert r["fp32"].dram_weight_pj == pytest.approx(3_726_568 * PJ_PER_DRAM_BYTE)  # 596.3 µJ
    assert r["weights-int4"].dram_weight_pj == pytest.approx(468_056 * PJ_PER_DRAM_BYTE)  # 74.9 µJ
    assert r["weights-pow2"].compute_pj == r["fp32"].compute_pj
    assert r["weights-int4"].total_pj / r["fp32"].total_pj == pytest.approx(0.524, abs=0.001)
    table = energy_comparison_table(comparison)
    assert table.rows[-1][:4] == ["weight DRAM (all layers)", "596.251", "74.889", "74.698"]
    assert table.rows[-1][4:] == ["0.13", "0.13"]


def test_energy_table_shows_weight_bits_and_says_macs_stay_float(tiny) -> None:
    table = energy_layers_table(model_energy(run_pass("weights-int4", tiny), sram=1024))
    bits = [c.name for c in table.columns].index("W bits")
    assert [row[bits] for row in table.rows] == ["4", "4", ""]  # Conv, Gemm, total
    notes = " ".join(str(n) for n in table.notes)
    assert "2 layers hold weights below 8 bits (W bits) but compute in fp32" in notes
    assert "not compute energy" in notes
    for width in (80, 200):
        console = Console(width=width, record=True, force_terminal=True, color_system=None)
        render(table, console)
        text = console.export_text()
        assert "W bits" in text and "compute in fp32" in text.replace("\n", " ")


def test_cli_compares_weight_only_passes_in_the_order_asked(tiny, tmp_path, monkeypatch) -> None:
    import edgeopt.cli.energy as cli_energy
    from edgeopt.cli.app import app

    monkeypatch.setattr(cli_energy, "console", Console(width=220))
    path, out = tmp_path / "tiny.onnx", tmp_path / "energy.json"
    onnx.save(tiny.proto, path)
    result = CliRunner().invoke(app, ["energy", str(path), "--sram", "1KiB", "--compare", "weights-pow2,weights-int4",
                                      "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "weight DRAM (all layers)" in result.output
    data = json.loads(out.read_text())
    assert list(data["variants"]) == ["weights-pow2", "weights-int4"]
    assert data["comparison"]["weight_bytes"] == {"original": 19_392, "weights-pow2": 2_508, "weights-int4": 2_604}
    assert data["comparison"]["dram_weight_pj"]["weights-int4"] == pytest.approx(2_604 * PJ_PER_DRAM_BYTE)
