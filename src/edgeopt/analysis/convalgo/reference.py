"""The oracle for the convolution algorithms, and how their error is measured.

The oracle is ``onnx.reference.ReferenceEvaluator`` (the ONNX project's plain-numpy
implementation of the operator spec, which edgeopt's "reference" backend wraps) run on a
graph holding one Conv node. Run in float64 it is the ground truth for measuring each
float32 algorithm's own rounding error; in float32 it is the same-precision reference.

Error measure: ``max |y - y_ref| / (max(y_ref) - min(y_ref))``, the largest absolute
error relative to the output's range (scale-free, and not blown up by outputs near zero
as an element-wise relative error would be).
"""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper

from ...errors import ShapeError
from .spec import ConvSpec

_ONNX_TYPES = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.float64): TensorProto.DOUBLE}
_OPSET = 17  # Conv is unchanged since opset 11; 17 is what the zoo exports use


def conv_model(spec: ConvSpec, dtype: np.dtype | type = np.float32):
    """An ``onnx.ModelProto`` with one Conv node (inputs X, W; output Y) at ``spec``'s shapes.

    Raises:
        ShapeError: dtype is not float32 or float64.
    """
    dtype = np.dtype(dtype)
    if dtype not in _ONNX_TYPES:
        raise ShapeError(f"reference conv dtype {dtype} is not supported: use float32 or float64")
    et = _ONNX_TYPES[dtype]
    node = helper.make_node("Conv", ["X", "W"], ["Y"], kernel_shape=[spec.kh, spec.kw],
                            strides=list(spec.stride), pads=list(spec.pads), group=spec.groups)
    graph = helper.make_graph(
        [node], "conv",
        [helper.make_tensor_value_info("X", et, list(spec.input_shape)),
         helper.make_tensor_value_info("W", et, list(spec.weight_shape))],
        [helper.make_tensor_value_info("Y", et, list(spec.output_shape))],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])


def reference_conv(x: np.ndarray, w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``Conv(x, w)`` by the ONNX reference evaluator, in the dtype of ``x`` (float32 or float64).

    Args:
        x: (N, C, H, W); w: (M, C/groups, KH, KW), same dtype as x.

    Raises:
        ShapeError: shapes that do not match ``spec``, or another dtype.
    """
    from onnx.reference import ReferenceEvaluator

    if tuple(x.shape) != spec.input_shape or tuple(w.shape) != spec.weight_shape:
        raise ShapeError(f"arrays {x.shape}, {w.shape} do not match the layer {spec.label}: pass matching arrays")
    ev = ReferenceEvaluator(conv_model(spec, x.dtype))
    return np.asarray(ev.run(None, {"X": x, "W": w.astype(x.dtype, copy=False)})[0])


def relative_error(y: np.ndarray, ref: np.ndarray) -> float:
    """max |y - ref| / (max(ref) - min(ref)) (module doc); 0.0 when ``ref`` is constant and equal.

    Raises:
        ShapeError: the shapes differ.
    """
    if y.shape != ref.shape:
        raise ShapeError(f"output shape {y.shape} != reference {ref.shape}: the algorithm is wrong for this layer")
    ref = ref.astype(np.float64)
    err = float(np.max(np.abs(y.astype(np.float64) - ref))) if ref.size else 0.0
    span = float(ref.max() - ref.min()) if ref.size else 0.0
    return err / span if span > 0 else err


def random_layer(spec: ConvSpec, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A standard-normal input and He-scaled weights (std sqrt(2 / fan_in)), float64, for ``spec``.

    The weights are scaled as trained CNN weights are (He et al., ICCV 2015), so the output
    has the magnitudes the algorithms meet in practice.
    """
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(spec.input_shape)
    fan_in = spec.cg * spec.kh * spec.kw
    w = rng.standard_normal(spec.weight_shape) * np.sqrt(2.0 / fan_in)
    return x, w
