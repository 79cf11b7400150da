"""The oracle's own ops (edgeopt.backends.reference_ops) against independent answers.

Spec formulas for the onnx fixes; ONNX Runtime's C++ kernels for the com.microsoft
quantized ops (cases as data: one-node graphs with their inputs); and whole models
quantized by ONNX Runtime's own quantizer, run on real photos.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from skimage import data as skdata

from edgeopt.backends import registry
from edgeopt.model import Model
from edgeopt.load import load_model

RNG = np.random.default_rng(0)


def _graph_model(nodes, inputs: dict[str, np.ndarray], consts: dict[str, np.ndarray],
                 outputs: dict[str, int], opsets: dict[str, int]) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "case",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(a.dtype), a.shape)
         for n, a in inputs.items()],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs.items()],
        initializer=[numpy_helper.from_array(a, n) for n, a in consts.items()],
    )
    return helper.make_model(
        graph, opset_imports=[helper.make_opsetid(d, v) for d, v in opsets.items()],
        ir_version=8,
    )


def _reference(proto: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    model = Model(proto=proto, inputs=[], source="case")
    return registry.get("reference").prepare(model, threads=1).run(feeds)


# -- onnx fixes vs the spec's formulas ---------------------------------------------------------
def test_batchnorm_opset9_one_output_uses_running_statistics() -> None:
    """Spec: one output = inference, y = scale * (x - mean) / sqrt(var + eps) + bias."""
    x = RNG.standard_normal((2, 3, 4, 4)).astype(np.float32)
    scale, bias = np.float32([1.5, 0.5, 2.0]), np.float32([0.1, -0.2, 0.3])
    mean, var = np.float32([0.3, -1.0, 2.0]), np.float32([0.5, 2.0, 4.0])
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"],
                            epsilon=1e-3, momentum=0.9)
    proto = _graph_model([node], {"x": x}, {"s": scale, "b": bias, "m": mean, "v": var},
                         {"y": TensorProto.FLOAT}, {"": 9})
    want = (scale[:, None, None] * (x - mean[:, None, None])
            / np.sqrt(var[:, None, None] + 1e-3) + bias[:, None, None])
    np.testing.assert_allclose(_reference(proto, {"x": x})[0], want, rtol=1e-6, atol=1e-6)


def test_batchnorm_training_mode_still_uses_batch_statistics() -> None:
    """training_mode=1 goes to onnx's own op: per-channel mean 0 and var 1 after scale 1, bias 0."""
    x = (RNG.standard_normal((4, 2, 3, 3)) * 3 + 5).astype(np.float32)
    ones, zeros = np.ones(2, np.float32), np.zeros(2, np.float32)
    node = helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"],
                            ["y", "rm", "rv"], training_mode=1, epsilon=1e-5)
    proto = _graph_model([node], {"x": x}, {"s": ones, "b": zeros, "m": zeros, "v": ones},
                         {"y": TensorProto.FLOAT, "rm": TensorProto.FLOAT,
                          "rv": TensorProto.FLOAT}, {"": 15})
    y = _reference(proto, {"x": x})[0]
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, atol=1e-3)


@pytest.mark.parametrize("opset", [10, 13, 21])
def test_dequantize_linear_at_every_opset(opset: int) -> None:
    """Spec: y = (x - zero_point) * scale; per-axis (axis=1) from opset 13."""
    x = RNG.integers(-128, 128, (2, 3, 4), dtype=np.int8)
    per_axis = opset >= 13
    scale = np.float32([0.1, 0.02, 0.5]) if per_axis else np.float32(0.05)
    zp = np.int8([3, -7, 0]) if per_axis else np.int8(-4)
    node = helper.make_node("DequantizeLinear", ["x", "s", "z"], ["y"],
                            **({"axis": 1} if per_axis else {}))
    proto = _graph_model([node], {"x": x}, {"s": scale, "z": zp}, {"y": TensorProto.FLOAT},
                         {"": opset})
    bshape = (1, 3, 1) if per_axis else ()
    want = (x.astype(np.float32) - zp.reshape(bshape)) * scale.reshape(bshape)
    np.testing.assert_allclose(_reference(proto, {"x": x})[0], want, rtol=1e-6)


# -- com.microsoft ops vs ONNX Runtime ----------------------------------------------------------
def _u8(shape) -> np.ndarray:
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def _i8(shape, low: int = -128, high: int = 128) -> np.ndarray:
    return RNG.integers(low, high, shape, dtype=np.int8)


def _weights(shape) -> np.ndarray:
    # 7-bit weights: ORT's u8 x s8 kernels on AVX2 CPUs without VNNI (this dev machine)
    # add products pairwise in int16 and saturate when |a1*b1 + a2*b2| > 32767, which
    # full-range uint8 x int8 data reaches. ORT's quantizer offers reduce_range for it:
    # https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html
    return _i8(shape, -64, 64)


def f32(v) -> np.ndarray:
    return np.array(v, np.float32)


def u8(v) -> np.ndarray:
    return np.array(v, np.uint8)


def i8(v) -> np.ndarray:
    return np.array(v, np.int8)


@dataclasses.dataclass(frozen=True)
class MsCase:
    """One com.microsoft node: its inputs in order (fed ones named x*, the rest constants)."""

    id: str
    op: str
    inputs: tuple[tuple[str, np.ndarray], ...]
    attrs: tuple[tuple[str, object], ...] = ()
    out_type: int = TensorProto.UINT8


MS_CASES = [
    MsCase("add-broadcast", "QLinearAdd", (
        ("xa", _u8((1, 4, 5, 5))), ("as", f32(0.02)), ("az", u8(128)),
        ("xb", _u8((1, 4, 1, 1))), ("bs", f32(0.05)), ("bz", u8(100)),
        ("cs", f32(0.04)), ("cz", u8(120)))),
    MsCase("mul-int8", "QLinearMul", (
        ("xa", _i8((2, 3, 4))), ("as", f32(0.03)), ("az", i8(-5)),
        ("xb", _i8((2, 3, 4))), ("bs", f32(0.02)), ("bz", i8(7)),
        ("cs", f32(0.05)), ("cz", i8(0))), out_type=TensorProto.INT8),
    MsCase("sigmoid", "QLinearSigmoid", (
        ("x", _u8((2, 8, 3))), ("xs", f32(0.05)), ("xz", u8(128)),
        ("ys", f32(1 / 255)), ("yz", u8(0)))),
    MsCase("leaky-relu-int8", "QLinearLeakyRelu", (
        ("x", _i8((2, 8, 3))), ("xs", f32(0.05)), ("xz", i8(10)),
        ("ys", f32(0.04)), ("yz", i8(-20))), (("alpha", 0.1),), TensorProto.INT8),
    MsCase("global-avgpool", "QLinearGlobalAveragePool", (
        ("x", _u8((2, 3, 7, 5))), ("xs", f32(0.1)), ("xz", u8(30)),
        ("ys", f32(0.05)), ("yz", u8(60)))),
    MsCase("global-avgpool-nhwc", "QLinearGlobalAveragePool", (
        ("x", _u8((2, 7, 5, 3))), ("xs", f32(0.1)), ("xz", u8(30)),
        ("ys", f32(0.05)), ("yz", u8(60))), (("channels_last", 1),)),
    MsCase("avgpool-3x3s2", "QLinearAveragePool", (
        ("x", _u8((1, 2, 9, 8))), ("xs", f32(0.1)), ("xz", u8(30)),
        ("ys", f32(0.08)), ("yz", u8(40))),
        (("kernel_shape", [3, 3]), ("strides", [2, 2]), ("pads", [1, 1, 1, 1]),
         ("count_include_pad", 0))),
    MsCase("concat", "QLinearConcat", (
        ("ys", f32(0.06)), ("yz", u8(110)),
        ("xa", _u8((1, 2, 3, 3))), ("as", f32(0.02)), ("az", u8(128)),
        ("xb", _u8((1, 3, 3, 3))), ("bs", f32(0.1)), ("bz", u8(50))), (("axis", 1),)),
    MsCase("softmax", "QLinearSoftmax", (
        ("x", _u8((3, 10))), ("xs", f32(0.08)), ("xz", u8(128)),
        ("ys", f32(1 / 256)), ("yz", u8(0))), (("axis", -1), ("opset", 13))),
    MsCase("gemm-per-column", "QGemm", (
        ("xa", _u8((3, 16))), ("as", f32(0.02)), ("az", u8(120)),
        ("b", _weights((5, 16))), ("bs", np.float32([0.01, 0.02, 0.005, 0.03, 0.01])),
        ("bz", np.zeros(5, np.int8)), ("c", RNG.integers(-500, 500, 5).astype(np.int32)),
        ("ys", f32(0.1)), ("yz", u8(128))), (("transB", 1), ("alpha", 1.0))),
    MsCase("gemm-float-out", "QGemm", (
        ("xa", _u8((3, 16))), ("as", f32(0.02)), ("az", u8(120)),
        ("b", _weights((16, 5))), ("bs", f32(0.01)), ("bz", i8(0))),
        (("alpha", 0.5),), TensorProto.FLOAT),
    MsCase("quantize-uint16", "QuantizeLinear", (
        ("x", RNG.standard_normal((2, 3, 4)).astype(np.float32) * 10),
        ("s", f32(0.001)), ("z", np.array(30000, np.uint16))), out_type=TensorProto.UINT16),
    MsCase("dequantize-int16-axis", "DequantizeLinear", (
        ("x", RNG.integers(-30000, 30000, (2, 3, 4)).astype(np.int16)),
        ("s", np.float32([0.001, 0.01, 0.1])), ("z", np.int16([5, -7, 0]))),
        (("axis", 1),), TensorProto.FLOAT),
]


@pytest.mark.parametrize("case", MS_CASES, ids=lambda c: c.id)
def test_ms_quantized_op_matches_onnxruntime(case: MsCase) -> None:
    """Within 1 quantization step of ORT (ORT requantizes with its own rounding/LUTs)."""
    feeds = {n: a for n, a in case.inputs if n.startswith("x")}
    consts = {n: a for n, a in case.inputs if not n.startswith("x")}
    node = helper.make_node(case.op, [n for n, _ in case.inputs], ["y"],
                            domain="com.microsoft", **dict(case.attrs))
    proto = _graph_model([node], feeds, consts, {"y": case.out_type},
                         {"": 17, "com.microsoft": 1})
    want = ort.InferenceSession(proto.SerializeToString(),
                                providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    got = _reference(proto, feeds)[0]
    assert got.shape == want.shape and got.dtype == want.dtype
    diff = np.abs(got.astype(np.float64) - want.astype(np.float64))
    if case.out_type == TensorProto.FLOAT:
        assert diff.max() <= 1e-5 * np.abs(want).max()
    else:
        assert diff.max() <= 1, f"{int((diff > 1).sum())} values differ by more than 1 step"
        assert (diff == 0).mean() >= 0.9  # off-by-one steps are rare rounding ties


# -- whole models from ONNX Runtime's quantizer ------------------------------------------------
CALIBRATION = ("astronaut", "coffee", "chelsea", "camera", "page", "text")
EVALUATION = ("page", "text", "coffee")


def _images(model: Model, names) -> np.ndarray:
    return np.stack([model.preprocess(getattr(skdata, n)()) for n in names])


@pytest.fixture(scope="module")
def ppocr_cls_file(tmp_path_factory) -> tuple[Model, str]:
    model = load_model("zoo:ppocr-cls")
    path = tmp_path_factory.mktemp("q") / "ppocr-cls.onnx"
    model.save(path)
    return model, str(path)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["QDQ", "QOperator", "dynamic"])
def test_reference_runs_onnxruntime_quantized_models(fmt: str, ppocr_cls_file, tmp_path) -> None:
    """ppocr-cls quantized by ORT (QDQ per-channel, QOperator, dynamic) on real text images.

    Tolerance 0.05 on the class probabilities: the final probabilities are 8-bit
    (step 1/255 = 0.004) and ORT's fused int8 kernels requantize every layer with their
    own rounding, so 1-step differences arise and propagate; measured differences were
    0.004 (QDQ), 0 (QOperator) and 0.019 (dynamic). A wrong scale axis or zero point
    moves them by 0.1 to 1.

    Activations are uint8 (U8S8): with ORT's default int8 activations (S8S8) the fused
    QDQ kernels on this AVX2 (no VNNI) machine move the probabilities by up to 0.22 from
    what the same QDQ graph gives with ORT's graph optimizations off, which equals this
    oracle exactly.
    """
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, QuantType,
                                          quantize_dynamic, quantize_static)

    model, src = ppocr_cls_file
    name = model.inputs[0].name
    out = str(tmp_path / f"{fmt}.onnx")
    if fmt == "dynamic":
        quantize_dynamic(src, out)
    else:
        class Reader(CalibrationDataReader):
            def __init__(self) -> None:
                self._it = iter([{name: x[None]} for x in _images(model, CALIBRATION)])

            def get_next(self):
                return next(self._it, None)

        quantize_static(src, out, Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8)
    quantized = load_model(out)
    op_types = {n.op_type for n in quantized.proto.graph.node}
    expected = {"QDQ": "DequantizeLinear", "QOperator": "QLinearConv",
                "dynamic": "DynamicQuantizeLinear"}[fmt]
    assert expected in op_types
    feeds = {name: _images(model, EVALUATION)}
    want = registry.get("ort").prepare(quantized, threads=1).run(feeds)[0]
    got = registry.get("reference").prepare(quantized, threads=1).run(feeds)[0]
    assert np.abs(got - want).max() <= 0.05


def test_reference_runs_fp16_models() -> None:
    """ppocr-cls converted to fp16 end to end (fp16 inputs and outputs) by ORT's converter.

    Tolerance 0.01 on the class probabilities: fp16 keeps 11 mantissa bits (a step of
    4.9e-4 at 0.5) and rounding adds up over ~50 layers; we measured 0.004 here. A
    graph the oracle ran wrongly in fp16 (a lost cast, an op in the wrong precision)
    moves the probabilities by far more, and would fail the dtype check.
    """
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = load_model("zoo:ppocr-cls")
    name = model.inputs[0].name
    half = model.derive(convert_float_to_float16(model.proto, keep_io_types=False), "fp16")
    half = dataclasses.replace(
        half, inputs=[dataclasses.replace(s, dtype="float16") for s in half.inputs])
    x = _images(model, ("page", "text", "coffee"))
    want = registry.get("reference").prepare(model, threads=1).run({name: x})[0]
    got = registry.get("reference").prepare(half, threads=1).run(
        {name: x.astype(np.float16)})[0]
    assert got.dtype == np.float16 and got.shape == want.shape
    assert np.abs(got.astype(np.float32) - want).max() <= 0.01
