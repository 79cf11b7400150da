"""Where the low-bit weights go in an ONNX graph: weight discovery with the output-channel
axis, DequantizeLinear insertion with INT4/INT2 initializers, and the opset upgrade.
"""

from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
import numpy as np
import onnx
from onnx import helper, numpy_helper

from ...errors import PassError
from ..base import graph_index
from ..deep_compression.sparsity import weight_layers

#: ONNX element type, numpy storage type and the first default-domain opset that lets
#: DequantizeLinear read it (INT4: opset 21; INT2: opset 25, onnx 1.20).
STORAGE = {
    4: (onnx.TensorProto.INT4, ml_dtypes.int4, 21),
    2: (onnx.TensorProto.INT2, ml_dtypes.int2, 25),
}


@dataclass(frozen=True)
class Weight:
    """One weight initializer and its output-channel axis.

    Attributes:
        name: the initializer name.
        axis: the axis that indexes output channels (Conv: 0; Gemm: 0 with transB=1,
            else 1; MatMul B: the last axis).
        shape: its dims.
        transposed_gemm: every reader is a Gemm with transB=1 (weight (N, K)).
    """

    name: str
    axis: int
    shape: tuple[int, ...]
    transposed_gemm: bool = False


def _axis(node: onnx.NodeProto, name: str, rank: int) -> int | None:
    """The output-channel axis of ``name`` as read by ``node``; None when it is not the
    node's weight operand (MatMul's A, Gemm's A)."""
    if node.op_type == "Conv":
        return 0 if node.input[1] == name else None
    if node.op_type == "Gemm":
        return (0 if _trans_b(node) else 1) if node.input[1] == name else None
    if node.op_type == "MatMul":
        return rank - 1 if node.input[1] == name else None
    return None


def find_weights(proto: onnx.ModelProto) -> list[Weight]:
    """The float32 Conv / Gemm / MatMul weights (rank >= 2, see
    :func:`edgeopt.passes.deep_compression.sparsity.weight_layers`) whose readers all
    agree on one output-channel axis; a weight also read by another op type is skipped."""
    _, users = graph_index(proto.graph)
    found = []
    for layer in weight_layers(proto):
        readers = users.get(layer.name, [])
        axes = {_axis(n, layer.name, len(layer.shape)) for n in readers}
        if len(axes) == 1 and None not in axes:
            gemm_t = all(n.op_type == "Gemm" and _trans_b(n) for n in readers)
            found.append(Weight(layer.name, axes.pop(), layer.shape, gemm_t))
    return found


def _trans_b(node: onnx.NodeProto) -> int:
    return next((a.i for a in node.attribute if a.name == "transB"), 0)


def untranspose_gemm(graph: onnx.GraphProto, weight: Weight, values: dict[str, np.ndarray]) -> Weight:
    """Store a transB=1 Gemm weight (N, K) as (K, N) and set its readers' transB to 0, in
    place (``values[weight.name]`` too); the product is unchanged.

    Why: ONNX Runtime fuses DequantizeLinear(INT4/INT2, axis=1) -> Gemm/MatMul on a (K, N)
    weight into its com.microsoft MatMulNBits kernel (4-bit weights unpacked inside the
    GEMM); a (N, K) weight behind a transB=1 Gemm stays a float Gemm after a run-time
    DequantizeLinear.

    Returns:
        the weight with axis 1 and shape (K, N).
    """
    w = values[weight.name].T.copy()
    values[weight.name] = w
    for node in graph.node:
        if node.op_type == "Gemm" and len(node.input) > 1 and node.input[1] == weight.name:
            for a in node.attribute:
                if a.name == "transB":
                    a.i = 0
    return Weight(weight.name, 1, tuple(w.shape))


def container_bits(weight: Weight, bits: int) -> int:
    """The storage width of ``bits``-bit codes of ``weight``: ``bits``, except 2-bit codes
    of a (K, N) weight (MatMul B, Gemm B without transB) whose N is not a multiple of 4,
    kept in an INT4 container (same three values, twice the bytes).

    Why: ONNX Runtime 1.32 fuses DequantizeLinear(INT2, axis=1) -> MatMul/Gemm into
    com.microsoft MatMulNBits and computes a wrong product when N % 4 != 0 (measured:
    (16, 5) and (32, 5) weights give errors of 1.5-2.8x the output range; (16, 8),
    (64, 16), (288, 16) are exact; INT4 is exact at every N tried).
    """
    if bits == 2 and len(weight.shape) == 2 and weight.axis == 1 and weight.shape[1] % 4:
        return 4
    return bits


def dequantize_weight(graph: onnx.GraphProto, weight: Weight, q: np.ndarray, scale: np.ndarray,
                      bits: int) -> tuple[str, int]:
    """Replace initializer ``weight.name`` by ``DequantizeLinear(q, scale, axis)`` in place,
    the codes ``q`` (int8 array in the code range) stored ``bits`` wide (4 or 2).

    Returns:
        (the codes' initializer name, the width they are stored at: ``bits`` or 4).

    The packed codes are a new initializer ``<name>_q<bits>`` of type INT4/INT2 (ONNX packs
    two 4-bit or four 2-bit values per byte, low bits first; see :func:`container_bits`
    for the one case stored wider); the scales ``<name>_scale`` float32 (C,). The node's output keeps the weight's name, so readers are untouched.
    """
    bits = container_bits(weight, bits)
    onnx_type, np_type, _ = STORAGE[bits]
    inits = graph.initializer
    index = next(i for i, t in enumerate(inits) if t.name == weight.name)
    del inits[index]
    q_name, s_name = f"{weight.name}_q{bits}", f"{weight.name}_scale"
    packed = numpy_helper.from_array(q.astype(np_type), q_name)
    if packed.data_type != onnx_type:
        raise PassError(f"onnx stored {bits}-bit codes as type {packed.data_type}: upgrade onnx to >= 1.20")
    inits.extend([packed, numpy_helper.from_array(scale, s_name)])
    node = helper.make_node("DequantizeLinear", [q_name, s_name], [weight.name], axis=weight.axis,
                            name=f"{weight.name}_DequantizeLinear")
    graph.node.insert(0, node)
    return q_name, bits
