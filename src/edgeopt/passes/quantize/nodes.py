"""Node names shared by the int8 passes and the per-layer error report: naming unnamed
nodes the same way everywhere, and rejecting names that match no node."""

from __future__ import annotations

import onnx

from ...errors import PassError
from ..._util.onnxgraph import copy_proto


def name_nodes(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose unnamed nodes are named "{op_type}_{index}" (made unique).

    Node exclusion (ORT's nodes_to_exclude, NNCF's IgnoredScope) and ORT's own
    bookkeeping go by node name; the int8 passes and
    :func:`edgeopt.passes.diagnostics.quant_error.layer_errors` name unnamed nodes this way, so
    the names one reports the others accept.
    """
    proto = copy_proto(proto)
    taken = {n.name for n in proto.graph.node if n.name}
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            name, k = f"{node.op_type}_{i}", 0
            while name in taken:
                k += 1
                name = f"{node.op_type}_{i}_{k}"
            node.name = name
            taken.add(name)
    return proto


def unknown_nodes(proto: onnx.ModelProto, names: tuple[str, ...], field: str, model_name: str) -> None:
    """Raise PassError naming the ``names`` that are no node of ``proto`` and a few valid ones."""
    known = [n.name for n in proto.graph.node]
    unknown = [n for n in names if n not in set(known)]
    if unknown:
        raise PassError(
            f"{field} names {unknown} that are no node of {model_name}: choose --exclude-nodes "
            f"from its node names, e.g. {', '.join(known[:5])}{' ...' if len(known) > 5 else ''}"
        )
