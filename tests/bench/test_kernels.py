"""The kernels each runtime executes for zoo:seednet (3 Conv, 2 Gemm) in float32, int8 QDQ
and 4/2-bit weights: read from ORT's optimized graph and OpenVINO's runtime model."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from edgeopt.bench.kernels import _ort_layers, kernel_counts, kernel_summary, runtime_kernels
from edgeopt.errors import EdgeoptError
from edgeopt.load import load_model
from edgeopt.passes.base import run_pass

from support import installed, tiny_model

OPENVINO = pytest.mark.skipif(not installed("openvino"), reason="no OpenVINO")


@pytest.fixture(scope="module")
def variants():
    model = load_model("zoo:seednet")
    x = np.random.default_rng(0).random((8, *model.inputs[0].shape[1:]), dtype=np.float32)
    return {"fp32": model, **{name: run_pass(name, model, None, calibration=x)
                              for name in ("int8-static", "weights-int4", "weights-int2")}}


@pytest.mark.parametrize("variant, expected", [
    ("fp32", {"Conv f32": 3, "Gemm f32": 2}),
    ("int8-static", {"QLinearConv int8": 3, "QGemm int8": 2}),
    # Weight-only models: edgeopt's ORT session folds the weight DequantizeLinear at load
    # (backends/ort.py folds_weight_dequantize), so fp32 kernels run on the unpacked weights.
    ("weights-int4", {"Conv f32": 3, "Gemm f32": 2}),
    ("weights-int2", {"Conv f32": 3, "Gemm f32": 2}),
])
def test_ort_reports_the_kernels_of_its_optimized_graph(variants, variant, expected):
    kernels = runtime_kernels(variants[variant], "ort")
    assert kernel_counts(kernels) == expected
    assert all(k.layer for k in kernels)


@OPENVINO
def test_openvino_runs_int8_layers_in_u8_and_float_ones_in_f32(variants):
    assert kernel_counts(runtime_kernels(variants["fp32"], "openvino")) == {"Convolution f32": 3,
                                                                            "FullyConnected f32": 2}
    int8 = runtime_kernels(variants["int8-static"], "openvino")
    assert kernel_counts(int8) == {"Convolution u8": 3, "FullyConnected u8": 2}
    assert all(k.primitive.lower().endswith("i8") for k in int8), [k.primitive for k in int8]


@OPENVINO
@pytest.mark.parametrize("variant", ["weights-int4", "weights-int2"])
def test_openvino_unpacks_conv_weights_and_keeps_the_big_fc_in_int4(variants, variant):
    # INT2 is widened to INT4 by the backend (OpenVINO 2026.4 refuses INT2 tensors).
    assert kernel_counts(runtime_kernels(variants[variant], "openvino")) == {
        "Convolution f32": 3, "FullyConnected f32": 1, "FullyConnected i4": 1}


def test_a_dequantized_weight_is_named_and_typed_by_its_scale():
    w = np.ones((2, 1, 1, 1), np.int8)
    proto = tiny_model(
        [helper.make_node("DequantizeLinear", ["w", "s"], ["wf"], axis=0),
         helper.make_node("Conv", ["x", "wf"], ["y"], name="conv")],
        [("x", TensorProto.FLOAT, [None, 1, 2, 2])], [("y", TensorProto.FLOAT, [None, 2, 2, 2])],
        [("w", w), ("s", np.ones(2, np.float16))], opset=21)
    (layer,) = _ort_layers(proto)
    assert (layer.layer, layer.kernel, layer.precision) == ("conv", "DequantizeLinear+Conv", "f16")
    assert kernel_summary([layer, layer]) == "2 DequantizeLinear+Conv f16"
    assert kernel_summary([]) == "no conv/gemm layers"


def test_other_backends_are_refused_in_one_line(variants):
    with pytest.raises(EdgeoptError, match="from ort and openvino only, not 'tvm'"):
        runtime_kernels(variants["fp32"], "tvm")


def test_two_bit_initializers_are_widened_to_four_bits_with_the_same_values():
    import ml_dtypes
    from onnx import TensorProto, numpy_helper

    from edgeopt._util.onnxgraph import widen_2bit_initializers

    codes = np.array([[-2, -1, 0, 1, 1]], dtype=ml_dtypes.int2)
    proto = tiny_model([helper.make_node("DequantizeLinear", ["w", "s"], ["y"])], inputs=[],
                       outputs=[("y", TensorProto.FLOAT, [1, 5])],
                       initializers=[("w", codes), ("s", np.array(0.5, np.float32))], opset=25)
    wide = widen_2bit_initializers(proto)
    w = next(t for t in wide.graph.initializer if t.name == "w")
    assert w.data_type == TensorProto.INT4
    assert numpy_helper.to_array(w).astype(np.int8).tolist() == [[-2, -1, 0, 1, 1]]
    assert proto.graph.initializer[0].data_type == TensorProto.INT2  # input untouched
    assert widen_2bit_initializers(wide) is wide
