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
    """A copy of ``proto`` in which every QuantizeLinear of constants (x, scale and zero
    point each an initializer, or an Identity or Constant node of one; 8-bit zero point,
    no ``block_size``) is replaced by the integer initializer it computes; initializers
    and Identity nodes nothing reads any more are dropped.

    Returns:
        the folded copy (``proto`` itself is not modified); unchanged when nothing folds.
    """
    out = copy_proto(proto)
    graph = out.graph
    stored = {t.name: t for t in graph.initializer}
    constants = _constants(graph, stored)
    folded: list[onnx.NodeProto] = []
    for node in graph.node:
        q = _fold(node, constants)
        if q is not None:
            graph.initializer.append(numpy_helper.from_array(q, node.output[0]))
            folded.append(node)
    if not folded:
        return out
    # What only the folded nodes read goes: float weights, and the Identity copies of zero
    # points the TorchScript exporter makes when two layers share a constant.
    removed = folded
    candidates: set[str] = set()
    while removed:
        for node in removed:
            graph.node.remove(node)
            candidates.update(x for x in node.input if x)
        still_read = {x for n in graph.node for x in reads(n)} | {o.name for o in graph.output}
        removed = [n for n in graph.node if n.op_type == "Identity" and n.output[0] in candidates
                   and n.output[0] not in still_read]
    for name in candidates & set(stored) - still_read:
        graph.initializer.remove(stored[name])
    return out


def _constants(graph: onnx.GraphProto, stored: dict[str, onnx.TensorProto]) -> dict[str, np.ndarray]:
    """{tensor name: value} of the initializers and of Identity / Constant nodes of them."""
    values = {name: numpy_helper.to_array(t) for name, t in stored.items()}
    for node in graph.node:  # topological order: an Identity's input is resolved first
        if node.op_type == "Identity" and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]]
        elif node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _fold(node: onnx.NodeProto, constants: dict[str, np.ndarray]) -> np.ndarray | None:
    if node.op_type != "QuantizeLinear" or node.domain not in ("", "ai.onnx"):
        return None
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    inputs = [x for x in node.input if x]
    if attrs.get("block_size", 0) or not all(x in constants for x in inputs):
        return None
    x, scale, *zp = (constants[name] for name in inputs)
    if x.dtype != np.float32 or (zp and zp[0].dtype not in _RANGES):
        return None
    return quantize_linear(x, scale, zp[0] if zp else None, attrs.get("axis", 1))
