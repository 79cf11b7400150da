"""Op implementations added to ``onnx.reference.ReferenceEvaluator`` for the oracle.

Two kinds, each following onnx's reference op API (a subclass of
``onnx.reference.op_run.OpRun`` with ``op_domain`` and a ``_run(*inputs, **attributes)``
returning a tuple; https://onnx.ai/onnx/api/reference.html#oprun):

- fixes of onnx's own ops where onnx <= 1.23 disagrees with the ONNX spec
  (:class:`BatchNormalization`, :class:`DequantizeLinear` before opset 19);
- the ``com.microsoft`` quantized ops that ONNX Runtime's quantizer emits in QOperator
  format (``quantize_static(..., quant_format=QuantFormat.QOperator)``), written as
  their spec defines them: dequantize the inputs, run the float op, quantize the result.
  Spec: https://github.com/microsoft/onnxruntime/blob/main/docs/ContribOperators.md

Each class keeps the evaluator's numpy semantics: float32 compute, round half to even,
saturation to the zero point's integer type. Importing this module imports onnx.reference,
so only :mod:`edgeopt.backends.reference` imports it, inside ``prepare``.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx.reference.op_run import OpRun
from onnx.reference.ops import load_op

_MS = "com.microsoft"


# -- helpers ------------------------------------------------------------------------------
def _along(v: np.ndarray, ndim: int, axis: int) -> np.ndarray:
    """A scale/zero point (scalar or 1-D) shaped to broadcast along ``axis`` of an ndim tensor."""
    v = np.asarray(v)
    if v.size == 1:
        return v.reshape(())
    shape = [1] * ndim
    shape[axis % ndim] = v.size
    return v.reshape(shape)


def dequantize(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None = None,
               axis: int = 1) -> np.ndarray:
    """``(x - zero_point) * scale`` in float32 (ONNX DequantizeLinear, per tensor or per axis)."""
    zp = 0 if zero_point is None else _along(zero_point, x.ndim, axis).astype(np.float32)
    return ((x.astype(np.float32) - zp) * _along(scale, x.ndim, axis)).astype(np.float32)


def quantize(y: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None,
             dtype: np.dtype = np.dtype(np.uint8)) -> np.ndarray:
    """``saturate(round_half_even(y / scale) + zero_point)`` (ONNX QuantizeLinear, per tensor).

    The integer type is the zero point's, else ``dtype``.
    """
    dtype = np.dtype(zero_point.dtype if zero_point is not None else dtype)
    info = np.iinfo(dtype)
    zp = 0.0 if zero_point is None else np.float32(np.asarray(zero_point).reshape(()))
    q = np.rint(y.astype(np.float32) / np.float32(np.asarray(scale).reshape(()))) + zp
    return np.clip(q, info.min, info.max).astype(dtype)


def _builtin(op: OpRun, op_type: str, version: int, n_inputs: int,
             drop: tuple[str, ...] = ()) -> OpRun:
    """onnx's own implementation of ``op_type`` at ``version``, with ``op``'s attributes.

    Lets a quantized op reuse the evaluator's float op (pooling, softmax, ...) instead of
    re-deriving it.
    """
    src = op.onnx_node
    node = onnx.helper.make_node(
        op_type, [f"i{k}" for k in range(n_inputs)], list(src.output), domain="",
    )
    node.attribute.extend(a for a in src.attribute if a.name not in drop)
    return load_op("", op_type, version)(node, op.run_params)


def _opset(op: OpRun) -> int:
    return int(op.run_params["opsets"].get("", onnx.defs.onnx_opset_version()))


# -- fixes of onnx ops ----------------------------------------------------------------------
class BatchNormalization(OpRun):
    """BatchNormalization in inference mode whenever the node asks for inference.

    Spec (https://onnx.ai/onnx/operators/onnx__BatchNormalization.html): before opset 14
    the mode is given by the number of outputs (one output = inference); from opset 14
    by ``training_mode``. onnx <= 1.23's BatchNormalization_9 takes the training path
    (batch statistics) whenever ``momentum`` is set, and the schema default sets it, so
    every opset 9-13 model with BatchNormalization (ppocr-cls, ppocr-det) comes out wrong.
    Upstream bug and fix: https://github.com/onnx/onnx/pull/8442. Training-mode nodes go
    to onnx's own implementation unchanged.
    """

    op_domain = ""

    def _run(self, x, scale, bias, mean, var, epsilon=1e-5, training_mode=0, **_attrs):
        if len([o for o in self.onnx_node.output if o]) == 1 and not training_mode:
            shape = (-1,) + (1,) * (x.ndim - 2)
            inv_std = 1.0 / np.sqrt(var.reshape(shape) + epsilon)
            y = (x - mean.reshape(shape)) * inv_std * scale.reshape(shape) + bias.reshape(shape)
            return (y.astype(x.dtype),)
        builtin = load_op("", "BatchNormalization", _opset(self))(self.onnx_node, self.run_params)
        return builtin.run(x, scale, bias, mean, var)


class DequantizeLinear(OpRun):
    """DequantizeLinear at every opset.

    onnx <= 1.23 ships implementations from opset 19 only, so the QDQ models ONNX
    Runtime's quantizer writes at opset 10-18 fail to load ("No implementation for
    operator 'DequantizeLinear' ... version 17"). Opsets 10 and 13 are plain
    ``(x - x_zero_point) * x_scale`` with an optional per-axis ``axis`` (13+):
    https://onnx.ai/onnx/operators/onnx__DequantizeLinear.html
    """

    op_domain = ""

    def _run(self, x, x_scale, x_zero_point=None, axis=1, **attrs):
        if _opset(self) >= 19:
            builtin = load_op("", "DequantizeLinear", _opset(self))(self.onnx_node, self.run_params)
            args = (x, x_scale) if x_zero_point is None else (x, x_scale, x_zero_point)
            return builtin.run(*args)
        return (dequantize(x, x_scale, x_zero_point, axis),)


# -- com.microsoft quantized ops (ORT QOperator format) --------------------------------------
class _MsQuantizeLinear(OpRun):
    """com.microsoft.QuantizeLinear: ONNX QuantizeLinear (opset 21 semantics), also 16-bit."""

    op_domain = _MS
    op_schema = None  # not onnx's QuantizeLinear schema: its default attributes differ

    def _run(self, x, y_scale, y_zero_point=None, axis=1):
        args = (x, y_scale) if y_zero_point is None else (x, y_scale, y_zero_point)
        return _builtin(self, "QuantizeLinear", 21, len(args)).run(*args)


class _MsDequantizeLinear(OpRun):
    """com.microsoft.DequantizeLinear: ONNX DequantizeLinear (opset 21 semantics), also 16-bit."""

    op_domain = _MS
    op_schema = None  # not onnx's DequantizeLinear schema: its default attributes differ

    def _run(self, x, x_scale, x_zero_point=None, axis=1):
        return (dequantize(x, x_scale, x_zero_point, axis),)


class QLinearAdd(OpRun):
    """C = quantize(dequantize(A) + dequantize(B)), numpy broadcasting."""

    op_domain = _MS

    def _run(self, a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp=None):
        y = dequantize(a, a_scale, a_zp) + dequantize(b, b_scale, b_zp)
        return (quantize(y, c_scale, c_zp, a.dtype),)


class QLinearMul(OpRun):
    """C = quantize(dequantize(A) * dequantize(B)), numpy broadcasting."""

    op_domain = _MS

    def _run(self, a, a_scale, a_zp, b, b_scale, b_zp, c_scale, c_zp=None):
        y = dequantize(a, a_scale, a_zp) * dequantize(b, b_scale, b_zp)
        return (quantize(y, c_scale, c_zp, a.dtype),)


class QLinearSigmoid(OpRun):
    """Y = quantize(sigmoid(dequantize(X)))."""

    op_domain = _MS

    def _run(self, x, x_scale, x_zp, y_scale, y_zp=None):
        y = 1.0 / (1.0 + np.exp(-dequantize(x, x_scale, x_zp)))
        return (quantize(y, y_scale, y_zp, x.dtype),)


class QLinearLeakyRelu(OpRun):
    """Y = quantize(leaky_relu(dequantize(X), alpha)); alpha defaults to 0.01."""

    op_domain = _MS

    def _run(self, x, x_scale, x_zp, y_scale, y_zp=None, alpha=0.01):
        f = dequantize(x, x_scale, x_zp)
        return (quantize(np.where(f < 0, f * np.float32(alpha), f), y_scale, y_zp, x.dtype),)


def _to_nchw(x: np.ndarray, channels_last: int) -> np.ndarray:
    return np.moveaxis(x, -1, 1) if channels_last else x


def _from_nchw(x: np.ndarray, channels_last: int) -> np.ndarray:
    return np.moveaxis(x, 1, -1) if channels_last else x


class QLinearGlobalAveragePool(OpRun):
    """Y = quantize(mean over the spatial axes of dequantize(X)); NCHW or NHWC (channels_last)."""

    op_domain = _MS

    def _run(self, x, x_scale, x_zp, y_scale, y_zp, channels_last=0):
        f = _to_nchw(dequantize(x, x_scale, x_zp), channels_last)
        y = f.mean(axis=tuple(range(2, f.ndim)), keepdims=True)
        return (quantize(_from_nchw(y, channels_last), y_scale, y_zp, x.dtype),)


class QLinearAveragePool(OpRun):
    """Y = quantize(AveragePool(dequantize(X))), the pooling done by onnx's AveragePool."""

    op_domain = _MS

    def _run(self, x, x_scale, x_zp, y_scale, y_zp=None, channels_last=0, **_attrs):
        # opset 19 AveragePool takes every attribute QLinearAveragePool has.
        pool = _builtin(self, "AveragePool", 19, 1, drop=("channels_last",))
        (y,) = pool.run(_to_nchw(dequantize(x, x_scale, x_zp), channels_last))
        return (quantize(_from_nchw(y, channels_last), y_scale, y_zp, x.dtype),)


class QLinearConcat(OpRun):
    """Y = quantize(concat(dequantize(X_i))).

    Inputs: Y_scale, Y_zero_point, then one (X, X_scale, X_zero_point) triple per tensor.
    """

    op_domain = _MS

    def _run(self, y_scale, y_zp, *triples, axis=1):
        xs = triples[0::3]
        parts = [dequantize(x, s, z) for x, s, z in zip(xs, triples[1::3], triples[2::3])]
        return (quantize(np.concatenate(parts, axis=axis), y_scale, y_zp, xs[0].dtype),)


class QLinearSoftmax(OpRun):
    """Y = quantize(Softmax(dequantize(X))) with onnx's Softmax at the node's ``opset``.

    The ``opset`` attribute decides the axis semantics (coerce to 2-D before opset 13).
    """

    op_domain = _MS

    def _run(self, x, x_scale, x_zp, y_scale, y_zp, opset=13, **_attrs):
        softmax = _builtin(self, "Softmax", int(opset), 1, drop=("opset",))
        (y,) = softmax.run(dequantize(x, x_scale, x_zp))
        return (quantize(y, y_scale, y_zp, x.dtype),)


class QGemm(OpRun):
    """Y = alpha * A' @ B' in integers, bias C (int32, scale alpha*a_scale*b_scale), then scale.

    A' = A.T if transA, B' = B.T if transB; b_scale / b_zero_point per tensor or per
    column (N). Without y_scale the output is float32, else quantized.
    """

    op_domain = _MS

    def _run(self, a, a_scale, a_zp, b, b_scale, b_zp=None, c=None, y_scale=None, y_zp=None,
             alpha=1.0, transA=0, transB=0):
        a = (a.T if transA else a).astype(np.int64) - np.asarray(a_zp).astype(np.int64)
        b = (b.T if transB else b).astype(np.int64)
        if b_zp is not None:
            b = b - _along(b_zp, 2, 1).astype(np.int64)
        acc = a @ b
        if c is not None:
            acc = acc + c.astype(np.int64)
        y = (acc.astype(np.float64) * (np.float64(alpha) * np.asarray(a_scale, np.float64)
             * _along(b_scale, 2, 1).astype(np.float64))).astype(np.float32)
        if y_scale is None:
            return (y,)
        return (quantize(y, y_scale, y_zp, a_zp.dtype),)


def _named(cls: type, name: str) -> type:
    """``cls`` under the op name the evaluator matches on (class names must equal op types)."""
    return type(name, (cls,), {"__doc__": cls.__doc__})


CUSTOM_OPS: list[type] = [
    BatchNormalization,
    DequantizeLinear,
    _named(_MsQuantizeLinear, "QuantizeLinear"),
    _named(_MsDequantizeLinear, "DequantizeLinear"),
    QLinearAdd,
    QLinearMul,
    QLinearSigmoid,
    QLinearLeakyRelu,
    QLinearGlobalAveragePool,
    QLinearAveragePool,
    QLinearConcat,
    QLinearSoftmax,
    QGemm,
]
"""Every op class to pass as ``ReferenceEvaluator(..., new_ops=CUSTOM_OPS)``."""
