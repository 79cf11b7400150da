"""Graph helpers every layer shares: a deep copy of a proto and one topological order."""

from __future__ import annotations

import heapq
from typing import Iterator

import onnx

from ..errors import ShapeError


def copy_proto(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A deep copy (tools that edit protos in place get this, never the Model's own)."""
    new = onnx.ModelProto()
    new.CopyFrom(proto)
    return new


def subgraph_reads(node: onnx.NodeProto) -> Iterator[str]:
    """Names read inside the node's subgraphs (If/Loop/Scan bodies), outer scope included."""
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for inner in g.node:
                yield from (x for x in inner.input if x)
                yield from subgraph_reads(inner)


def reads(node: onnx.NodeProto) -> list[str]:
    """Every name ``node`` reads: its inputs and the names its subgraphs read."""
    return [x for x in node.input if x] + list(subgraph_reads(node))


def topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Nodes in a topological order: the given order when valid (the ONNX spec requires
    it), else Kahn's algorithm with ties broken by the original position (stable).

    Names produced by no node (graph inputs, initializers, outer-scope values) count as
    available.

    Raises:
        ShapeError: the graph has a cycle.
    """
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in reads(n) if x in producer} - {i} for i, n in enumerate(nodes)]
    if all(d < i for i, ds in enumerate(deps) for d in ds):
        return nodes
    users: list[list[int]] = [[] for _ in nodes]
    for i, ds in enumerate(deps):
        for d in ds:
            users[d].append(i)
    pending = [len(ds) for ds in deps]
    ready = [i for i, p in enumerate(pending) if p == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for u in users[i]:
            pending[u] -= 1
            if pending[u] == 0:
                heapq.heappush(ready, u)
    if len(order) != len(nodes):
        raise ShapeError("the ONNX graph has a cycle: re-export the model")
    return [nodes[i] for i in order]


# 2-bit element types and the 4-bit type that holds the same values.
_WIDER = {onnx.TensorProto.INT2: onnx.TensorProto.INT4, onnx.TensorProto.UINT2: onnx.TensorProto.UINT4} \
    if hasattr(onnx.TensorProto, "INT2") else {}


def widen_2bit_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """``proto`` with every INT2/UINT2 initializer stored as INT4/UINT4 (same values,
    twice the bytes): for runtimes that read 4-bit but not 2-bit tensors (OpenVINO
    2026.4: "Unsupported data type INT2"). DequantizeLinear reads both from opset 21
    on (ONNX spec), so the graph's opset (25 for INT2) stays valid. Returns ``proto``
    itself when it has no 2-bit initializer, else a copy."""
    if not any(t.data_type in _WIDER for t in proto.graph.initializer):
        return proto
    import ml_dtypes
    from onnx import numpy_helper

    wider = {onnx.TensorProto.INT4: ml_dtypes.int4, onnx.TensorProto.UINT4: ml_dtypes.uint4}
    out = copy_proto(proto)
    for i, t in enumerate(out.graph.initializer):
        if t.data_type in _WIDER:
            values = numpy_helper.to_array(t).astype(wider[_WIDER[t.data_type]])
            out.graph.initializer[i].CopyFrom(numpy_helper.from_array(values, t.name))
    return out
