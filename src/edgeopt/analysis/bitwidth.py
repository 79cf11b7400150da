"""Bits and bytes of stored tensors: the one rule every count of a model's weight bytes uses.

A stored tensor (an initializer, a Constant value) of n elements counts
``ceil(n x bits / 8)`` bytes, where ``bits`` is

1. the width a pass **declared** for it in the model's metadata ``edgeopt.weight_bits``
   (:data:`BITS_KEY`, a JSON object {initializer name: bits}), when it declared one: a
   float32 tensor of power-of-two values (``weights-pow2``) or 1-bit codes kept in an
   INT2 tensor (``weights-binary``) is counted at the width it needs, which wins over the
   width it happens to be stored at;
2. else its **stored** element width: 4 for INT4 / UINT4 / FLOAT4E2M1, 2 for INT2 / UINT2
   (packed as the ONNX spec stores them: docs/IR.md, "4 bit integer types" and "2 bit
   integer types"), 8 x the numpy item size for every other numeric type.

The profile (:mod:`edgeopt.analysis.profile`), the energy model
(:mod:`edgeopt.analysis.energy`) and the low-bit passes (:mod:`edgeopt.passes.lowbit`,
which write the metadata) all read bytes through :func:`tensor_bytes` and
:func:`stored_bits`; nothing else counts sub-byte widths.
"""

from __future__ import annotations

import json
import math

import onnx
from onnx import helper

from ..errors import ShapeError

#: Model metadata key: JSON {initializer name: bits} of weights stored wider than their values need.
BITS_KEY = "edgeopt.weight_bits"

# Elements that do not fill a whole byte; every other dtype uses numpy's itemsize.
_SUB_BYTE_BITS = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2))
    if hasattr(onnx.TensorProto, name)
}


def element_bits(elem_type: int) -> int:
    """Stored bits per element of ONNX ``elem_type`` (e.g. 32 for FLOAT, 4 for INT4); 0
    for an unknown or non-numeric type (STRING, UNDEFINED)."""
    if elem_type in _SUB_BYTE_BITS:
        return _SUB_BYTE_BITS[elem_type]
    try:
        dtype = helper.tensor_dtype_to_np_dtype(elem_type)
    except (KeyError, TypeError, ValueError):  # UNDEFINED and types numpy has no dtype for
        return 0
    # STRING maps to numpy's object dtype, whose item size is a pointer's, not the data's.
    return 0 if dtype.kind == "O" else 8 * dtype.itemsize


def tensor_bytes(shape: tuple[int, ...] | None, elem_type: int, bits: int | None = None) -> int:
    """Bytes of a tensor of ``shape`` and ONNX ``elem_type``: ceil(elements x bits / 8).

    Args:
        shape: concrete dims (None: unknown).
        elem_type: ONNX ``TensorProto`` data type.
        bits: the declared width (module doc, 1.); None: the stored width of ``elem_type``.

    Returns:
        bytes; 0 when the shape or a numeric width is unknown.
    """
    if shape is None or not elem_type:
        return 0
    return math.ceil(math.prod(shape) * (bits or element_bits(elem_type)) / 8)


def declared_bits(proto: onnx.ModelProto) -> dict[str, int]:
    """{initializer name: bits} a pass declared in ``proto``'s :data:`BITS_KEY` metadata
    (module doc, 1.); empty when it declares none.

    Raises:
        ShapeError: the metadata is not a JSON object of names to widths 1..64.
    """
    raw = next((p.value for p in proto.metadata_props if p.key == BITS_KEY), "")
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        bits = {str(k): int(v) for k, v in data.items()} if isinstance(data, dict) else None
    except (ValueError, TypeError):
        bits = None
    if bits is None or any(not 1 <= b <= 64 for b in bits.values()):
        raise ShapeError(f"metadata {BITS_KEY} of this model is not a JSON object {{initializer: bits 1..64}} "
                         f"({raw[:60]!r}): re-run the pass that wrote it, or delete the entry")
    return bits


def stored_bits(proto: onnx.ModelProto) -> dict[str, int]:
    """{initializer name: bits per element as counted} (module doc: declared, else stored)
    for every initializer of ``proto``'s main graph.

    Raises:
        ShapeError: malformed :data:`BITS_KEY` metadata (:func:`declared_bits`).
    """
    declared = declared_bits(proto)
    return {t.name: declared.get(t.name) or element_bits(t.data_type) for t in proto.graph.initializer}


def weight_bytes(proto: onnx.ModelProto) -> int:
    """Bytes of all of ``proto``'s initializers, each counted by the module doc's rule
    (declared bits, else the stored packed width).

    Raises:
        ShapeError: malformed :data:`BITS_KEY` metadata.
    """
    bits = stored_bits(proto)
    return sum(tensor_bytes(tuple(t.dims), t.data_type, bits[t.name]) for t in proto.graph.initializer)
