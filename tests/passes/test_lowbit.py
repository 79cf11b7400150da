"""Low-bit weight passes (weights-int4, weights-int2, weights-pow2): the values each weight
may take, the stored size, ONNX Runtime against the reference evaluator, and top-1
agreement of zoo:seednet-digits on the digits test split."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

from edgeopt import load_model
from edgeopt.errors import PassError
from edgeopt.passes.base import run_pass
from edgeopt.passes.lowbit import Int2Config, Int4Config, Pow2Config, declared_bits, weight_bytes
from edgeopt.passes.lowbit.levels import pow2_round, quantize_per_channel
from tests.support import tiny_model

F = TensorProto.FLOAT


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Conv (8, 3, 3, 3) -> Flatten -> Gemm transB=0 (288, 16) -> MatMul (16, 5)."""
    rng = np.random.default_rng(0)
    nodes = [helper.make_node("Conv", ["x", "cw", "cb"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"]),
             helper.make_node("Flatten", ["r"], ["f"]),
             helper.make_node("Gemm", ["f", "gw", "gb"], ["g"]),
             helper.make_node("MatMul", ["g", "mw"], ["y"])]
    inits = [("cw", rng.normal(size=(8, 3, 3, 3)).astype(np.float32)),
             ("cb", rng.normal(size=8).astype(np.float32)),
             ("gw", (rng.normal(size=(288, 16)) * np.linspace(0.1, 3, 16)).astype(np.float32)),
             ("gb", rng.normal(size=16).astype(np.float32)),
             ("mw", rng.normal(size=(16, 5)).astype(np.float32))]
    proto = tiny_model(nodes, [("x", F, (None, 3, 6, 6))], [("y", F, (None, 5))], inits)
    path = tmp_path_factory.mktemp("lowbit") / "tiny.onnx"
    onnx.save(proto, path)
    return load_model(str(path)), rng.normal(size=(6, 3, 6, 6)).astype(np.float32)


@pytest.fixture(scope="module")
def digits():
    from edgeopt.data.digits import digits_set

    model = load_model("zoo:seednet-digits")
    test = digits_set("test")
    return model, test.tensor(model.preprocess)


def _ort(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    # ORT fuses DequantizeLinear(INT4) -> MatMul/Gemm into com.microsoft MatMulNBits, by
    # default at accuracy level 4 (activations quantized to int8 inside: ~1% error); level 0
    # keeps float activations, so it must match the reference evaluator.
    options = ort.SessionOptions()
    options.add_session_config_entry("session.qdq_matmulnbits_accuracy_level", "0")
    session = ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(None, {proto.graph.input[0].name: x})[0]


def _dequantized(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    """{weight name: the float weight each DequantizeLinear computes}, by the reference."""
    inits = {t.name: t for t in proto.graph.initializer}
    out = {}
    for n in proto.graph.node:
        if n.op_type == "DequantizeLinear":
            one = helper.make_graph([n], "dq", [], [helper.make_tensor_value_info(n.output[0], F, None)],
                                    [inits[i] for i in n.input])
            m = helper.make_model(one, opset_imports=list(proto.opset_import))
            m.ir_version = proto.ir_version
            out[n.output[0]] = ReferenceEvaluator(m).run(None, {})[0]
    return out


def test_levels_match_the_formulas() -> None:
    w = np.array([[0.7, -0.35, 0.1], [-2.0, 1.2, 0.0]], dtype=np.float32)
    q, scale = quantize_per_channel(w, 0, 4)
    np.testing.assert_allclose(scale, [0.1, 2.0 / 7])
    np.testing.assert_array_equal(q, [[7, -4, 1], [-7, 4, 0]])  # -3.5 rounds half to even
    q2, scale2 = quantize_per_channel(w, 1, 2)
    np.testing.assert_allclose(scale2, [2.0, 1.2, 0.1])
    np.testing.assert_array_equal(q2, [[0, 0, 1], [-1, 1, 0]])
    p, fsr = pow2_round(np.array([1.1, -0.3, 0.01, 0.0], np.float32), 3)  # exponents -3..0
    assert fsr == 0
    np.testing.assert_array_equal(p, [1.0, -0.25, 0.125, 0.0])


@pytest.mark.parametrize("name,bits", [("weights-int4", 4), ("weights-int2", 2)])
def test_int_weights_take_few_values_and_ort_agrees_with_reference(tiny, name, bits) -> None:
    model, x = tiny
    out = run_pass(name, model)
    types = {t.name: t.data_type for t in out.proto.graph.initializer}
    assert types[f"gw_q{bits}"] == (TensorProto.INT4 if bits == 4 else TensorProto.INT2)
    assert "mw_q4" in types  # (16, 5): int2 codes kept in INT4, ORT's MatMulNBits bug (graph.py)
    deq = _dequantized(out.proto)
    assert set(deq) == {"cw", "gw", "mw"}
    for name_, axis in (("cw", 0), ("gw", 1), ("mw", 1)):
        w = np.moveaxis(deq[name_], axis, 0).reshape(deq[name_].shape[axis], -1)
        assert max(len(np.unique(row)) for row in w) <= 2 ** bits - 1  # symmetric: 2^b - 1 codes
    ref = ReferenceEvaluator(out.proto).run(None, {"x": x})[0]
    np.testing.assert_allclose(_ort(out.proto, x), ref, rtol=1e-4, atol=1e-4)
    assert not np.allclose(ref, _ort(model.proto, x), atol=1e-3)  # the weights did change


def test_pow2_weights_are_signed_powers_of_two_counted_at_b_bits(tiny) -> None:
    model, x = tiny
    out = run_pass("weights-pow2", model, Pow2Config(bits=4, exclude=("mw",)))
    assert declared_bits(out.proto) == {"cw": 4, "gw": 4}
    inits = {t.name: numpy_helper.to_array(t) for t in out.proto.graph.initializer}
    for name in ("cw", "gw"):
        mag = np.abs(inits[name])
        assert np.array_equal(np.log2(mag), np.rint(np.log2(mag)))
        assert len(np.unique(inits[name])) <= 16
    np.testing.assert_array_equal(inits["mw"], numpy_helper.to_array(
        next(t for t in model.proto.graph.initializer if t.name == "mw")))
    assert weight_bytes(out.proto) == weight_bytes(model.proto) - (216 + 288 * 16) * 4 + (108 + 288 * 8)
    ref = ReferenceEvaluator(out.proto).run(None, {"x": x})[0]
    np.testing.assert_allclose(_ort(out.proto, x), ref, rtol=1e-4, atol=1e-4)


def test_int2_codes_can_be_stored_in_int4_for_openvino(tiny) -> None:
    model, x = tiny
    plain, wide = run_pass("weights-int2", model), run_pass("weights-int2", model, Int2Config(storage_bits=4))
    types = {t.data_type for t in wide.proto.graph.initializer if "_q" in t.name}
    assert types == {TensorProto.INT4}
    assert [o.version for o in wide.proto.opset_import if o.domain == ""] == [21]
    a, b = _dequantized(plain.proto), _dequantized(wide.proto)
    assert all(np.array_equal(a[k], b[k]) for k in a) and set(a) == set(b)
    # The file holds twice the code bytes; the codes are declared (and counted) at 2 bits.
    assert wide.size_bytes > plain.size_bytes
    assert weight_bytes(wide.proto) == weight_bytes(plain.proto)


def test_bad_settings_are_refused_in_one_line(tiny) -> None:
    with pytest.raises(PassError, match="cannot hold 4-bit codes"):
        Int4Config(storage_bits=2)
    with pytest.raises(PassError, match="bits 4 or 2"):
        Int4Config(bits=3)
    with pytest.raises(PassError, match="exclude names no Conv/Gemm/MatMul weight"):
        run_pass("weights-int4", tiny[0], Int4Config(exclude=("nope",)))


def test_seednet_digits_shrinks_and_keeps_top1(digits, tmp_path) -> None:
    model, x = digits
    base = _ort(model.proto, x).argmax(1)
    agreement, sizes = {}, {}
    for name, config in (("weights-int4", Int4Config()), ("weights-int2", Int2Config()),
                         ("weights-pow2", Pow2Config())):
        out = run_pass(name, model, config)
        sizes[name] = weight_bytes(out.proto) / weight_bytes(model.proto)
        top1 = _ort(out.proto, x).argmax(1)
        agreement[name] = float((top1 == base).mean())
        if name == "weights-int4":
            # transB=1 Gemm weights stored (K, N) so ORT fuses them into MatMulNBits
            gemms = [n for n in out.proto.graph.node if n.op_type == "Gemm"]
            assert [[a.i for a in n.attribute if a.name == "transB"] for n in gemms] == [[0], [0]]
            shapes = {t.name: tuple(t.dims) for t in out.proto.graph.initializer}
            assert shapes["classifier.1.weight_q4"] == (6144, 128)
            ref = ReferenceEvaluator(out.proto).run(None, {"input": x[:4]})[0]
            np.testing.assert_allclose(_ort(out.proto, x[:4]), ref, rtol=1e-4, atol=1e-5)
            out.save(tmp_path / "int4.onnx")
            model.save(tmp_path / "fp32.onnx")
            assert (tmp_path / "int4.onnx").stat().st_size < 0.3 * (tmp_path / "fp32.onnx").stat().st_size
    # Measured on the 359 test scans: int4 99.4%, pow2 98.3%, int2 93.3%; sizes 0.126x,
    # 0.125x, 0.063x of the float32 weights.
    assert agreement["weights-int4"] >= 0.98
    assert agreement["weights-pow2"] >= 0.96
    assert 0.85 <= agreement["weights-int2"] < agreement["weights-int4"]
    assert sizes["weights-int4"] < 0.3 and sizes["weights-pow2"] < 0.3 and sizes["weights-int2"] < 0.15
