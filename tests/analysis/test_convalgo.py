"""Convolution algorithms: each against the ONNX reference, counts by hand, limits, model analysis, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import typer
from onnx import TensorProto, helper, numpy_helper
from rich.console import Console
from typer.testing import CliRunner

import edgeopt
from edgeopt.cli import convalgo as cli_convalgo
from edgeopt.analysis.convalgo import (
    ALGORITHMS,
    ALL,
    ConvSpec,
    analyze_model,
    conv2d,
    measure_errors,
    wins,
)
from edgeopt.analysis.convalgo.fft import smooth_size
from edgeopt.analysis.convalgo.layers import _pads, conv_layers
from edgeopt.analysis.convalgo.measure import Budget, measure_layer
from edgeopt.analysis.convalgo.reference import (
    random_layer,
    reference_conv,
    relative_error,
)
from edgeopt.cli.convalgo import command
from edgeopt.errors import EdgeoptError, ShapeError
from edgeopt.model import Model
from edgeopt.shapes import fix_input_shapes

# Max |error| / output range against the float32 ONNX reference. float32 sums of
# C*K*K products carry ~1e-7 relative rounding per term; the FFT's and Winograd's
# transforms add their own (F(4x4,3x3) most: transform entries up to 8 and 1/24).
# Worst measured over 5 seeds of these layers: direct 2.1e-7, im2col 0 (the reference is
# itself im2col + the same GEMM), fft 2.6e-7, winograd2 1.3e-7, winograd4 2.4e-6; the
# tolerances leave about 10x margin.
TOL = {"direct": 3e-6, "im2col": 3e-6, "fft": 6e-6, "winograd2": 6e-6, "winograd4": 3e-5}

LAYERS = [
    # (x shape, w shape, stride, padding, groups)
    ((1, 3, 9, 11), (4, 3, 3, 3), 1, 1, 1),                  # odd sizes: partial Winograd tiles
    ((2, 4, 10, 7), (6, 2, 3, 3), 1, (0, 1, 2, 1), 2),        # batch 2, asymmetric pads, 2 groups
    ((1, 6, 12, 12), (6, 1, 3, 3), 1, 1, 6),                  # depthwise 3x3
    ((1, 6, 13, 13), (12, 1, 3, 3), 2, 1, 6),                 # depthwise, channel multiplier 2, stride 2
    ((1, 5, 15, 14), (7, 5, 5, 5), 2, 2, 1),                  # 5x5 stride 2
    ((1, 3, 20, 20), (8, 3, 7, 7), 2, 3, 1),                  # ResNet stem-like 7x7/2
    ((1, 8, 6, 6), (16, 8, 1, 1), 1, 0, 1),                   # 1x1
    ((1, 4, 11, 9), (5, 4, 3, 5), (1, 2), (1, 2, 1, 2), 1),   # non-square kernel and stride
]


@pytest.mark.parametrize("case", LAYERS, ids=lambda c: f"x{c[0]}w{c[1]}s{c[2]}p{c[3]}g{c[4]}")
def test_each_algorithm_matches_onnx_reference(case):
    x_shape, w_shape, stride, padding, groups = case
    spec = ConvSpec.of(x_shape, w_shape, stride=stride, padding=padding, groups=groups)
    x64, w64 = random_layer(spec, seed=1)
    x, w = x64.astype(np.float32), w64.astype(np.float32)
    ref = reference_conv(x, w, spec)
    ran = []
    for name, algo in ALGORITHMS.items():
        if algo.supports(spec):
            continue
        y = conv2d(x, w, algorithm=name, stride=stride, padding=padding, groups=groups)
        assert y.shape == ref.shape == spec.output_shape and y.dtype == np.float32
        err = relative_error(y, ref)
        assert err < TOL[name], (name, err)
        ran.append(name)
    winograd_ok = spec.kh == spec.kw == 3 and spec.stride == (1, 1)
    assert set(ran) == (set(ALL) if winograd_ok else {"direct", "im2col", "fft"})


def test_bias_is_added_per_output_channel():
    spec = ConvSpec.of((1, 2, 5, 5), (3, 2, 3, 3), padding=1)
    x64, w64 = random_layer(spec)
    x, w = x64.astype(np.float32), w64.astype(np.float32)
    b = np.array([1.0, -2.0, 0.5], dtype=np.float32)
    y = conv2d(x, w, algorithm="fft", padding=1, bias=b)
    np.testing.assert_allclose(y - b.reshape(1, 3, 1, 1), reference_conv(x, w, spec), atol=1e-5)


def test_winograd_f4_loses_more_precision_than_f2_and_direct():
    # A wide layer (576-term sums) so rounding, not luck, decides the ranking.
    spec = ConvSpec.of((1, 64, 24, 24), (64, 64, 3, 3), padding=1)
    err = measure_errors(spec, seed=3)
    assert set(err) == set(ALL)
    f64 = {k: v["vs_float64"] for k, v in err.items()}
    assert all(0 < e < 1e-5 for e in f64.values()), f64
    assert f64["winograd4"] > 2 * f64["winograd2"], f64
    assert f64["winograd4"] > 2 * f64["direct"], f64


# -- counts checked by hand ----------------------------------------------------------------
def test_winograd_multiplies_per_tile():
    one_tile_f2 = ConvSpec.of((1, 1, 4, 4), (1, 1, 3, 3))      # 2x2 output: one F(2x2,3x3) tile
    one_tile_f4 = ConvSpec.of((1, 1, 6, 6), (1, 1, 3, 3))      # 4x4 output: one F(4x4,3x3) tile
    assert ALGORITHMS["direct"].cost(one_tile_f2).mults == 36
    assert ALGORITHMS["winograd2"].cost(one_tile_f2).mults == 16      # 2.25x fewer
    assert ALGORITHMS["direct"].cost(one_tile_f4).mults == 144
    assert ALGORITHMS["winograd4"].cost(one_tile_f4).mults == 36      # 4x fewer
    # C=2, M=3, 8x8 output: 16 tiles of 2x2 (4 of 4x4) per channel pair.
    spec = ConvSpec.of((1, 2, 8, 8), (3, 2, 3, 3), padding=1)
    assert spec.macs == ALGORITHMS["im2col"].cost(spec).mults == 64 * 9 * 2 * 3 == 3456
    assert ALGORITHMS["winograd2"].cost(spec).mults == 16 * 16 * 2 * 3 == 1536
    assert ALGORITHMS["winograd4"].cost(spec).mults == 4 * 36 * 2 * 3 == 864
    # 7x7 output: F(4x4) needs 2x2 tiles (the edge padded), so 4 * 36 again per pair.
    odd = ConvSpec.of((1, 2, 7, 7), (3, 2, 3, 3), padding=1)
    assert ALGORITHMS["winograd4"].cost(odd).mults == 4 * 36 * 2 * 3


def test_fft_and_memory_counts():
    spec = ConvSpec.of((1, 2, 8, 8), (3, 2, 3, 3), padding=1)    # padded 10x10 -> 10x10 FFT, 10x6 bins
    fft = ALGORITHMS["fft"].cost(spec)
    assert fft.mults == 4 * 3 * 2 * 60
    assert fft.weight_bytes == 3 * 2 * 60 * 8                    # complex64 kernel spectra
    assert fft.workspace["input spectra"] == 2 * 60 * 8
    im2col = ALGORITHMS["im2col"].cost(spec)
    assert im2col.workspace["im2col matrix"] == 2 * 9 * 64 * 4   # C*K*K x OH*OW float32
    assert im2col.workspace["padded input"] == 2 * 10 * 10 * 4
    w2 = ALGORITHMS["winograd2"].cost(spec)
    assert w2.workspace["transformed input tiles V"] == 16 * 2 * 16 * 4
    assert w2.weight_bytes == 16 * 3 * 2 * 4
    # FFT products do not grow with the kernel; direct ones grow with K^2.
    big = ConvSpec.of((1, 2, 8, 8), (3, 2, 7, 7), padding=3)
    assert smooth_size(14) == 15 and ALGORITHMS["fft"].cost(big).mults == 4 * 3 * 2 * 15 * 8
    assert ALGORITHMS["direct"].cost(big).mults == 64 * 49 * 6
    assert [smooth_size(n) for n in (1, 7, 11, 13, 97, 226)] == [1, 8, 12, 15, 100, 240]


# -- limits and bad input ------------------------------------------------------------------
@pytest.mark.parametrize("algorithm", ["winograd2", "winograd4"])
def test_winograd_refuses_other_kernels_and_strides(algorithm):
    x = np.zeros((1, 2, 8, 8), np.float32)
    with pytest.raises(ShapeError, match="3x3 kernel.*5x5"):
        conv2d(x, np.zeros((2, 2, 5, 5), np.float32), algorithm=algorithm)
    with pytest.raises(ShapeError, match="stride 1.*2x2"):
        conv2d(x, np.zeros((2, 2, 3, 3), np.float32), algorithm=algorithm, stride=2)
    with pytest.raises(ShapeError, match="3x3"):
        ALGORITHMS[algorithm].cost(ConvSpec.of((1, 2, 8, 8), (2, 2, 5, 5)))


def test_bad_input_is_refused_with_the_fix():
    x = np.zeros((1, 4, 8, 8), np.float32)
    with pytest.raises(EdgeoptError, match="unknown convolution algorithm 'gemm'"):
        conv2d(x, np.zeros((2, 4, 3, 3), np.float32), algorithm="gemm")
    with pytest.raises(ShapeError, match="expect 2 input channels"):
        conv2d(x, np.zeros((2, 1, 3, 3), np.float32), groups=2)
    with pytest.raises(ShapeError, match="groups=3 must divide"):
        ConvSpec(1, 6, 8, 8, 4, 3, 3, groups=3)
    with pytest.raises(ShapeError, match="float32"):
        conv2d(x.astype(np.float64), np.zeros((2, 4, 3, 3)), algorithm="direct")
    with pytest.raises(ShapeError, match="does not fit"):
        ConvSpec.of((1, 1, 2, 2), (1, 1, 3, 3))


# -- layers of a model ---------------------------------------------------------------------
def _one_conv_model(**attrs) -> Model:
    node = helper.make_node("Conv", ["x", "w"], ["y"], **attrs)
    w = numpy_helper.from_array(np.zeros((4, 2, 3, 3), np.float32), "w")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2, 9, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[w])
    proto, specs = fix_input_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    return Model(proto=proto, inputs=specs, source="tiny")


def test_conv_layers_reads_auto_pad_and_skips_dilation():
    (lay,) = conv_layers(_one_conv_model(auto_pad="SAME_UPPER", strides=[2, 2]), batch=3)
    # H=9: out 5, pad 2 -> (1, 1); W=8: out 4, pad 1 -> SAME_UPPER puts it at the end.
    assert lay.spec.pads == (1, 0, 1, 1) and lay.spec.output_shape == (3, 4, 5, 4)
    assert _pads({"auto_pad": "SAME_LOWER"}, (8, 8), (3, 3), (2, 2)) == (1, 1, 0, 0)
    (dil,) = conv_layers(_one_conv_model(dilations=[2, 2]))
    assert dil.spec is None and "dilation" in dil.skipped


@pytest.fixture(scope="module")
def seednet():
    return edgeopt.load_model("zoo:seednet")


def test_analyze_seednet(seednet):
    layers = analyze_model(seednet, max_seconds=30, repeats=1)
    assert [lay.spec.label for lay in layers] == ["1->16 7x7 s1 p0 88x88", "16->48 6x6 s1 p0 41x41",
                                                   "48->96 5x5 s1 p0 12x12"]
    prof = edgeopt.profile(seednet)
    convs = [lay for lay in prof.layers if lay.op_type == "Conv"]
    assert [lay.name for lay in layers] == [c.name for c in convs]
    assert [lay.result("direct").cost.mults for lay in layers] == [c.macs for c in convs]
    for lay in layers:
        for name in ("direct", "im2col", "fft"):
            r = lay.result(name)
            assert r.ms is not None and r.ms > 0 and r.runs == 1, (lay.name, r)
        assert lay.result("winograd2").ms is None and "3x3 kernel" in lay.result("winograd2").skipped
        assert lay.fastest in ("direct", "im2col", "fft")
    assert sum(wins(layers).values()) == 3


def test_budget_and_memory_caps_skip_with_reason():
    spec = ConvSpec.of((1, 16, 32, 32), (16, 16, 3, 3), padding=1)
    (r,) = measure_layer(spec, ["direct"], Budget(1e-9, calls=1))
    assert r.ms is None and "time cap" in r.skipped and r.cost.mults == spec.macs
    (r,) = measure_layer(spec, ["im2col"], Budget(60, calls=1), max_extra_bytes=1000)
    assert r.ms is None and "MiB extra memory" in r.skipped


def test_cli_table_and_json(tmp_path, monkeypatch):
    # A wide console so Rich does not wrap the shape column (CliRunner output is not a terminal).
    monkeypatch.setattr(cli_convalgo, "console", Console(width=250))
    app = typer.Typer()
    app.command("convalgo")(command)
    app.callback()(lambda: None)
    out = tmp_path / "sub" / "convalgo.json"
    res = CliRunner().invoke(app, ["convalgo", "zoo:seednet", "--algorithms", "direct,im2col,fft,winograd2",
                                   "--repeats", "1", "--max-seconds", "30", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "fastest:" in res.output and "16->48 6x6" in res.output
    data = json.loads(out.read_text())
    assert data["algorithms"] == ["direct", "im2col", "fft", "winograd2"]
    assert len(data["layers"]) == 3 and sum(data["wins"].values()) == 3
    assert data["layers"][0]["results"][0]["cost"]["mults"] == 16 * 82 * 82 * 49
    bad = CliRunner().invoke(app, ["convalgo", "zoo:seednet", "--algorithms", "fast"])
    assert bad.exit_code != 0 and isinstance(bad.exception, EdgeoptError)
