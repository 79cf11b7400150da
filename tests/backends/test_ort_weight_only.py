"""ONNX Runtime folds the weight dequantization of weight-only models at load
(``session.disable_quant_qdq``, edgeopt.backends.ort module doc), and only of those: a
QDQ model with quantized activations, and (K, N) Gemm weights that ORT fuses into
MatMulNBits, keep ORT's QDQ handling."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from edgeopt.backends.ort import DISABLE_QUANT_QDQ, OrtBackend, folds_weight_dequantize
from edgeopt.model import Model
from edgeopt.passes.base import run_pass
from edgeopt.passes.lowbit import Int4Config
from edgeopt.shapes import fix_input_shapes
from tests.support import tiny_model

F = TensorProto.FLOAT
pytest.importorskip("onnxruntime")


def _model(proto) -> Model:
    proto, specs = fix_input_shapes(proto)
    return Model(proto=proto, inputs=specs, source="tiny")


@pytest.fixture(scope="module")
def conv_gemm() -> tuple[Model, np.ndarray]:
    """Conv (8, 3, 3, 3) -> Relu -> Flatten -> Gemm transB=1 (16, 288): float32."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["y"], transB=1)]
    inits = [("cw", rng.normal(size=(8, 3, 3, 3)).astype(np.float32)),
             ("cb", rng.normal(size=8).astype(np.float32)),
             ("gw", rng.normal(size=(16, 288)).astype(np.float32)),
             ("gb", rng.normal(size=16).astype(np.float32))]
    proto = tiny_model(nodes, [("x", F, (None, 3, 6, 6))], [("y", F, (None, 16))], inits)
    return _model(proto), rng.normal(size=(4, 3, 6, 6)).astype(np.float32)


def _qdq_int8(conv_gemm_model: Model) -> Model:
    """x -> QuantizeLinear -> DequantizeLinear -> Conv(DequantizeLinear(int8 W)): activations quantized."""
    rng = np.random.default_rng(1)
    scale = numpy_helper.from_array(np.array(0.05, np.float32), "s")
    zp = numpy_helper.from_array(np.array(0, np.uint8), "zp")
    wq = numpy_helper.from_array(rng.integers(-127, 128, size=(8, 3, 3, 3)).astype(np.int8), "wq")
    ws = numpy_helper.from_array(np.full(8, 0.01, np.float32), "ws")
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "s", "zp"], ["xd"]),
             helper.make_node("DequantizeLinear", ["wq", "ws"], ["w"], axis=0),
             helper.make_node("Conv", ["xd", "w"], ["y"], pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("x", F, ["N", 3, 6, 6])],
                              [helper.make_tensor_value_info("y", F, ["N", 8, 6, 6])], [scale, zp, wq, ws])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    proto.ir_version = 10
    return _model(proto)


def _entries(model: Model) -> dict[str, str]:
    session = OrtBackend().prepare(model, threads=1)
    try:
        return session.settings()["config_entries"]
    finally:
        session.close()


def test_weight_only_int4_folds_its_dequantize_and_matches_the_reference(conv_gemm) -> None:
    model, x = conv_gemm
    for name in ("weights-int4", "weights-int2"):
        low = run_pass(name, model)
        assert folds_weight_dequantize(low.proto)
        session = OrtBackend().prepare(low, threads=1)
        settings = session.settings()
        assert settings["config_entries"] == {DISABLE_QUANT_QDQ: "1"}
        got = session.run({"x": x})[0]
        session.close()
        ref = ReferenceEvaluator(low.proto).run(None, {"x": x})[0]
        # folded at load, the dequantized weights are exact: float32 rounding only
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-4)
        # the settings record reloads the same session (deploy.json)
        again = OrtBackend().prepare_with(low, settings)
        np.testing.assert_array_equal(again.run({"x": x})[0], got)
        again.close()


def test_activation_qdq_float_and_matmulnbits_models_keep_ort_defaults(conv_gemm) -> None:
    model, _ = conv_gemm
    qdq = _qdq_int8(model)
    assert not folds_weight_dequantize(qdq.proto) and _entries(qdq) == {}
    assert not folds_weight_dequantize(model.proto) and _entries(model) == {}
    pow2 = run_pass("weights-pow2", model)  # float32 values: nothing to dequantize
    assert not folds_weight_dequantize(pow2.proto)
    # Gemm weights alone, stored (K, N): all feed MatMulNBits, which was faster than float32
    gemm_only = run_pass("weights-int4", model, Int4Config(exclude=("cw",)))
    assert not folds_weight_dequantize(gemm_only.proto) and _entries(gemm_only) == {}
    # ... unless kept (N, K) behind transB=1: then no fusion and the dequantize is folded
    kept = run_pass("weights-int4", model, Int4Config(exclude=("cw",), matmul_nbits=False))
    assert folds_weight_dequantize(kept.proto)
