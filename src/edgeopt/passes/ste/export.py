"""The trained ternary/binary weights in the exported ONNX graph: found by value, stored as
INT2/INT4 codes behind DequantizeLinear (:func:`edgeopt.passes.lowbit.graph.dequantize_weight`)
and declared at their true width in the ``edgeopt.weight_bits`` metadata.

Pure numpy and onnx: the torch side hands over the exported float weights.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import PassError
from ..base import sort_nodes
from ..lowbit import declare_bits
from ..lowbit.graph import STORAGE, dequantize_weight, find_weights, untranspose_gemm
from ..lowbit.levels import quantize_per_channel
from ..quantize.opset import at_least


def _as_cast(graph: onnx.GraphProto, node: onnx.NodeProto) -> None:
    """Turn ``DequantizeLinear(codes, ones)`` into ``Cast(codes, to=FLOAT)``, in place.

    Why: OpenVINO 2026.4 keeps a DequantizeLinear on the weights of a 1x1 conv as a
    run-time decompression (Convert -> Convolution) and then does not build a
    BinaryConvolution; a Cast of the same INT4 codes is constant-folded to ±1 weights,
    which it converts (measured on one FakeQuantize -> 1x1 Conv: DequantizeLinear INT4 or
    INT8 -> Convolution, Cast INT4 or INT8 -> BinaryConvolution; 3x3 convs convert either way).
    """
    scale = node.input[1]
    index = next(i for i, t in enumerate(graph.initializer) if t.name == scale)
    del graph.initializer[index]
    node.op_type = "Cast"
    del node.input[1:]
    del node.attribute[:]
    node.attribute.append(onnx.helper.make_attribute("to", onnx.TensorProto.FLOAT))


def store_codes(proto: onnx.ModelProto, exported: list[np.ndarray], *, bits: int, storage_bits: int,
                model_name: str, pass_name: str, cast: bool = False) -> onnx.ModelProto:
    """Replace every Conv/Gemm/MatMul weight of ``proto`` equal to one of ``exported`` by
    DequantizeLinear(codes, α), the codes stored ``storage_bits`` wide (2: INT2, opset 25;
    4: INT4, opset 21) and declared ``bits`` wide (1 binary, 2 ternary).

    A transB=1 Gemm weight is stored (K, N) (:func:`~edgeopt.passes.lowbit.graph.untranspose_gemm`)
    so ONNX Runtime runs it in MatMulNBits.

    Args:
        exported: float32 weights as the torch module holds them (Conv (O, I, kh, kw),
            Linear (O, I)), each α[c] x {-1, 0, 1} per output channel.
        cast: store weights whose α is 1 everywhere (the XNOR convs' codes; their α is a
            Mul after the conv) behind a Cast instead (see :func:`_as_cast`).

    Returns:
        a new proto at the opset the storage needs.

    Raises:
        PassError: a weight was not found in the graph (the export changed it), or the
            opset conversion fails.
    """
    proto = at_least(proto, STORAGE[storage_bits][2], model_name, "pass storage_bits=4",
                     needs=f"pass {pass_name}")
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    found, declared = 0, {}
    for weight in find_weights(proto):
        if not any(w.shape == values[weight.name].shape and np.array_equal(w, values[weight.name])
                   for w in exported):
            continue
        if weight.transposed_gemm:
            weight = untranspose_gemm(proto.graph, weight, values)
        # trained values α[c] x {-1, 0, 1}: the 2-bit symmetric quantizer gives back α and
        # the codes exactly (scale = max|w| / 1)
        q, scale = quantize_per_channel(values[weight.name], weight.axis, 2)
        codes, _ = dequantize_weight(proto.graph, weight, q, scale, storage_bits)
        declared[codes] = bits
        if cast and np.all(scale == 1):  # the same values: DequantizeLinear with scale 1 is a Cast
            _as_cast(proto.graph, next(n for n in proto.graph.node if n.input and n.input[0] == codes))
        found += 1
    if found != len(exported):
        raise PassError(f"pass {pass_name} found {found} of the {len(exported)} trained weights of "
                        f"{model_name} in its ONNX export: report this model")
    declare_bits(proto, declared)
    sort_nodes(proto.graph)
    return proto
