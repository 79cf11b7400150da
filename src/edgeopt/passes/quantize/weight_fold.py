"""Store QDQ weights as integers: fold QuantizeLinear of a float initializer into the
integer initializer it produces.

Exporters of fake-quantized training graphs (torch's TorchScript exporter for torch.ao
QAT modules) write each weight as ``float32 initializer -> QuantizeLinear ->
DequantizeLinear``: the file keeps the float weights (4 bytes each) and the runtime
quantizes them at load. ONNX Runtime's constant folding leaves QuantizeLinear alone on
purpose (its QDQ fusions look for the pair) and onnxslim does not fold it either, so the
file never shrinks. Folding the QuantizeLinear by the spec's formula leaves
``int8 initializer -> DequantizeLinear``, the form ORT's quantizer writes (a quarter of
the bytes; same kernels, since both runtimes fuse DequantizeLinear with the op).
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ..._util.onnxgraph import copy_proto, reads

_RANGES = {np.dtype(np.int8): (-128, 127), np.dtype(np.uint8): (0, 255)}


def quantize_linear(x: np.ndarray, scale: np.ndarray, zero_point: np.ndarray | None, axis: int) -> np.ndarray:
    """ONNX QuantizeLinear (opset 13-19, no block size): ``saturate(round(x / scale) +
    zero_point)``, rounding half to even, per tensor (scalar ``scale``) or per ``axis``.

    Args:
        x: float32 array.
        scale: float32 scalar or 1-D array of ``x.shape[axis]`` scales.
        zero_point: int8 or uint8 array shaped like ``scale``; None means uint8 zero.
        axis: the axis of a 1-D ``scale`` (negative counts from the end).

    Returns:
        int8 or uint8 array of ``x``'s shape (the dtype of ``zero_point``).
    """
    zp = np.zeros(scale.shape, np.uint8) if zero_point is None else zero_point
    if scale.ndim == 1:
        shape = [1] * x.ndim
        shape[axis] = -1
        scale, zp = scale.reshape(shape), zp.reshape(shape)
    lo, hi = _RANGES[zp.dtype]
    q = np.rint(x.astype(np.float32) / scale) + zp.astype(np.int32)
    return np.clip(q, lo, hi).astype(zp.dtype)


def fold_weight_quantize(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy of ``proto`` in which every QuantizeLinear of float initializers (x, scale
    and zero point all stored, 8-bit zero point, no ``block_size``) is replaced by the
    integer initializer it computes; float weights nothing else reads are dropped.

    Returns:
        the folded copy (``proto`` itself is not modified); unchanged when nothing folds.
    """
    out = copy_proto(proto)
    graph = out.graph
    stored = {t.name: t for t in graph.initializer}
    folded: list[onnx.NodeProto] = []
    for node in graph.node:
        q = _fold(node, stored)
        if q is not None:
            graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
            folded.append(node)
    for node in folded:
        graph.node.remove(node)
    still_read = {x for n in graph.node for x in reads(n)} | {o.name for o in graph.output}
    for name in {x for n in folded for x in n.input if x} - still_read:
        graph.initializer.remove(stored[name])
    return out


def _fold(node: onnx.NodeProto, stored: dict[str, onnx.TensorProto]) -> np.ndarray | None:
    if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    inputs = [x for x in node.input if x]
    if attrs.get("block_size", 0) or not all(x in stored for x in inputs):
        return None
    x, scale, *zp = (numpy_helper.to_array(stored[name]) for name in inputs)
    if x.dtype != np.float32 or (zp and zp[0].dtype not in _RANGES):
        return None
    return quantize_linear(x, scale, zp[0] if zp else None, attrs.get("axis", 1))
