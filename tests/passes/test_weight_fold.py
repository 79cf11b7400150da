"""QuantizeLinear of stored float weights folded into integer initializers."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from edgeopt.passes.quantize.weight_fold import fold_weight_quantize, quantize_linear


def _qdq_conv(per_channel: bool) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    scale = np.abs(w).reshape(4, -1).max(1) / 127 if per_channel else np.array(np.abs(w).max() / 127)
    inits = [nh.from_array(w, "W"), nh.from_array(scale.astype(np.float32), "ws"),
             nh.from_array(np.zeros(scale.shape, np.int8), "wz"),
             nh.from_array(np.array(0.02, np.float32), "xs"), nh.from_array(np.array(128, np.uint8), "xz")]
    nodes = [h.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             h.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             h.make_node("QuantizeLinear", ["W", "ws", "wz"], ["wq"], axis=0),
             h.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
             h.make_node("Conv", ["xd", "wd"], ["y"])]
    graph = h.make_graph(nodes, "g", [h.make_tensor_value_info("x", T.FLOAT, ["N", 3, 8, 8])],
                         [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
    return h.make_model(graph, opset_imports=[h.make_opsetid("", 17)])


def _run(proto, x):
    return ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]


@pytest.mark.parametrize("per_channel", [True, False])
def test_folded_weights_are_int8_and_outputs_identical(per_channel):
    proto = _qdq_conv(per_channel)
    before = proto.SerializeToString()
    folded = fold_weight_quantize(proto)
    assert proto.SerializeToString() == before  # input untouched
    ops = [n.op_type for n in folded.graph.node]
    assert ops == ["QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv"]  # the activation Q stays
    stored = {t.name: t.data_type for t in folded.graph.initializer}
    assert stored["wq"] == T.INT8 and "W" not in stored
    wq = next(t for t in folded.graph.initializer if t.name == "wq")
    assert len(wq.raw_data) == 4 * 3 * 3 * 3  # one byte a weight, was four
    assert proto.ByteSize() - folded.ByteSize() >= 3 * 108
    x = np.random.default_rng(1).normal(size=(2, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(_run(folded, x), _run(proto, x))


def test_quantize_linear_rounds_half_to_even_and_saturates():
    x = np.array([0.5, 1.5, 2.5, -0.5, 300.0, -300.0], np.float32)
    q = quantize_linear(x, np.array(1.0, np.float32), np.array(0, np.int8), axis=1)
    assert q.tolist() == [0, 2, 2, 0, 127, -128]
    u = quantize_linear(x, np.array(1.0, np.float32), None, axis=1)
    assert u.dtype == np.uint8 and u.tolist() == [0, 2, 2, 0, 255, 0]


def test_a_zero_point_shared_through_an_identity_is_folded_and_the_identity_dropped():
    # torch's TorchScript exporter writes a constant two layers share once, the second
    # reader getting it through an Identity node
    proto = _qdq_conv(per_channel=True)
    graph = proto.graph
    graph.node.insert(0, h.make_node("Identity", ["wz"], ["wz_copy"]))
    weight_q = next(n for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "W")
    weight_q.input[2] = "wz_copy"
    folded = fold_weight_quantize(proto)
    assert [n.op_type for n in folded.graph.node] == ["QuantizeLinear", "DequantizeLinear", "DequantizeLinear", "Conv"]
    assert {t.name for t in folded.graph.initializer} == {"ws", "wz", "xs", "xz", "wq"}
    x = np.random.default_rng(2).normal(size=(1, 3, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(_run(folded, x), _run(proto, x))


def test_nothing_to_fold_leaves_the_graph_as_it_was():
    proto = _qdq_conv(per_channel=False)
    proto.graph.node[2].input[0] = "xd"  # the weight's QuantizeLinear now reads an activation
    assert fold_weight_quantize(proto).SerializeToString() == proto.SerializeToString()
