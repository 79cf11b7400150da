"""The model at concrete shapes: every tensor's shape and dtype, the constants, graph order.

The first steps of :func:`edgeopt.analysis.profile.profile` (its module doc, 1. and 2.),
shared with the analyses that need the per-tensor view rather than per-layer counts
(energy, convolution algorithms, the roofline's layer order):

1. **Shapes.** A copy of the proto gets the concrete input shapes and drops stale
   symbolic ones, nodes in topological order; ONNX shape inference
   (``infer_shapes(data_prop=True)``) fills the rest, and one onnxruntime run (all
   optimizations off) fills what inference leaves unknown.
2. **Constants.** Initializers, Constant outputs and nodes whose inputs are all
   constant are weights: those nodes are folded (not runtime steps). A stored tensor's
   bytes follow :mod:`edgeopt.analysis.bitwidth` (declared bits, else the packed width).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import onnx
from onnx import helper

from ..errors import ShapeError
from .._util.errorline import error_line
from .._util.onnxgraph import copy_proto, topological
from ..model import Model
from .bitwidth import declared_bits, element_bits, tensor_bytes
from .probe import probe_session

Shape = tuple[int, ...]

# Nodes whose output differs run to run even with constant inputs: never folded.
_NOT_FOLDABLE = {"RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass
class GraphView:
    """A model at one batch size, every tensor typed.

    Attributes:
        concrete: the proto with concrete input shapes, nodes in topological order
            (before inference; what onnxruntime runs).
        graph: the inferred graph (``concrete`` after ONNX shape inference).
        nodes: ``graph``'s nodes, topologically ordered.
        types: {tensor name: (concrete shape or None, ONNX elem type)}.
        consts: {constant tensor: names of the stored tensors it is computed from}.
        stored_bytes: {stored tensor (initializer or Constant output): bytes}.
        stored_bits: {stored tensor: bits per element as counted}, declared or stored
            (:mod:`edgeopt.analysis.bitwidth`; 0 when its type is unknown).
        folded: indices (into ``nodes``) of the nodes computed from constants only.
        runtime: [(index, node)] of the nodes a runtime executes, in order.
        shape_source: "onnx", "onnx+onnxruntime" or "onnx (onnxruntime could not run it)".
    """

    concrete: onnx.ModelProto
    graph: onnx.GraphProto
    nodes: list[onnx.NodeProto]
    types: dict[str, tuple[Shape | None, int]]
    consts: dict[str, frozenset[str]]
    stored_bytes: dict[str, int]
    stored_bits: dict[str, int]
    folded: set[int]
    runtime: list[tuple[int, onnx.NodeProto]]
    shape_source: str

    def shape(self, name: str) -> Shape | None:
        """Concrete shape of tensor ``name`` (None when unknown or unnamed)."""
        return self.types.get(name, (None, 0))[0] if name else None

    def nbytes(self, name: str) -> int:
        """Bytes of tensor ``name`` (a stored one at its counted width; 0 when its shape or
        dtype is unknown)."""
        if name in self.stored_bytes:
            return self.stored_bytes[name]
        return tensor_bytes(*self.types.get(name, (None, 0)))


def graph_view(model: Model, batch: int) -> GraphView:
    """Shapes, dtypes and constants of ``model`` at ``batch`` (module doc).

    Raises:
        ShapeError: ``batch`` is not a positive integer, ONNX shape inference rejects
            the model at these shapes, the graph has a cycle, or its
            ``edgeopt.weight_bits`` metadata is malformed.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ShapeError(f"batch must be a positive integer, got {batch!r}: pass batch=1 or more")
    concrete = concrete_proto(model, batch)
    try:
        inferred = onnx.shape_inference.infer_shapes(concrete, data_prop=True)
    except Exception as e:  # onnx raises InferenceError, ValidationError and others
        raise ShapeError(
            f"ONNX shape inference fails on {model.name} at batch {batch} "
            f"({error_line(e, limit=160, with_type=False)}): re-export the model or fix its input shapes"
        ) from e
    graph = inferred.graph
    types = tensor_types(graph)
    nodes = list(graph.node)  # topologically ordered by concrete_proto
    consts, stored_bits, folded = fold_constants(graph, nodes, types, declared_bits(model.proto))
    stored_bytes = {x: tensor_bytes(*types.get(x, (None, 0)), bits=b) for x, b in stored_bits.items()}
    runtime = [(i, n) for i, n in enumerate(nodes) if i not in folded]
    shape_source = "onnx"
    needed = {x for _, n in runtime for x in (*n.input, *n.output) if x}
    missing = sorted(x for x in needed if types.get(x, (None, 0))[0] is None)
    if missing:
        found = shapes_from_onnxruntime(concrete, missing, model.example_feeds(batch))
        types.update(found)
        shape_source = "onnx+onnxruntime" if found else "onnx (onnxruntime could not run it)"
    return GraphView(concrete=concrete, graph=graph, nodes=nodes, types=types, consts=consts,
                     stored_bytes=stored_bytes, stored_bits=stored_bits, folded=folded, runtime=runtime,
                     shape_source=shape_source)


# -- shapes --------------------------------------------------------------------------------
def concrete_proto(model: Model, batch: int) -> onnx.ModelProto:
    """A copy with concrete input dims and no stale symbolic shapes for inference to trip on."""
    proto = copy_proto(model.proto)
    specs = {s.name: s.batched(batch) for s in model.inputs}
    for vi in proto.graph.input:
        if vi.name in specs:
            shape = vi.type.tensor_type.shape
            del shape.dim[:]
            for d in specs[vi.name]:
                shape.dim.add().dim_value = int(d)
    # Output and value_info shapes carry the symbolic batch "N"; inference keeps a declared
    # symbolic dim rather than replacing it, so drop every shape that is not concrete.
    for vi in (*proto.graph.output, *proto.graph.value_info):
        if vi.type.HasField("tensor_type") and shape_of(vi) is None:
            vi.type.tensor_type.ClearField("shape")
    # Shape inference and onnxruntime both need producers before consumers.
    ordered = topological(list(proto.graph.node))
    del proto.graph.node[:]
    proto.graph.node.extend(ordered)
    return proto


def shape_of(vi: onnx.ValueInfoProto) -> Shape | None:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    dims = tt.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def tensor_types(graph: onnx.GraphProto) -> dict[str, tuple[Shape | None, int]]:
    """{tensor name: (concrete shape or None, ONNX elem type)} for every typed tensor."""
    types: dict[str, tuple[Shape | None, int]] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        types[vi.name] = (shape_of(vi), vi.type.tensor_type.elem_type)
    for init in graph.initializer:
        types[init.name] = (tuple(int(d) for d in init.dims), init.data_type)
    return types


def shapes_from_onnxruntime(
    proto: onnx.ModelProto, names: list[str], feeds: dict[str, Any]
) -> dict[str, tuple[Shape | None, int]]:
    """Shapes and elem types of ``names`` from one onnxruntime run that exposes them.

    Graph optimizations are off so every named tensor still exists. When onnxruntime
    cannot run the graph, the tensors stay unknown and their nodes are reported as
    uncounted ("shape unknown") by the caller.
    """
    try:
        sess = probe_session(proto, names)
        arrays = sess.run(names, feeds)
    except Exception:  # noqa: BLE001 - reported per node as "shape unknown"
        return {}
    return {
        name: (tuple(int(d) for d in a.shape), helper.np_dtype_to_tensor_dtype(a.dtype))
        for name, a in zip(names, arrays)
    }


# -- graph order and constants ---------------------------------------------------------------
def has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def fold_constants(
    graph: onnx.GraphProto, nodes: list[onnx.NodeProto], types: dict[str, tuple[Shape | None, int]],
    declared: dict[str, int] | None = None,
) -> tuple[dict[str, frozenset[str]], dict[str, int], set[int]]:
    """Find constant tensors.

    Args:
        declared: {initializer: bits} declared in the model's metadata
            (:func:`edgeopt.analysis.bitwidth.declared_bits`); they win over the stored width.

    Returns:
        (constant tensor name -> names of the stored tensors it is computed from,
         stored tensor name -> its bits per element as counted, indices of the folded nodes).
    """
    declared = declared or {}
    consts: dict[str, frozenset[str]] = {}
    stored_bits: dict[str, int] = {}
    for init in graph.initializer:
        consts[init.name] = frozenset([init.name])
        stored_bits[init.name] = declared.get(init.name) or element_bits(types[init.name][1])
    folded: set[int] = set()
    for i, node in enumerate(nodes):
        ins = [x for x in node.input if x]
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for o in node.output:
                consts[o] = frozenset([o])
                stored_bits[o] = element_bits(types.get(o, (None, 0))[1])
            folded.add(i)
        elif (ins and all(x in consts for x in ins) and node.op_type not in _NOT_FOLDABLE
              and not has_subgraph(node)):
            sources = frozenset().union(*(consts[x] for x in ins))
            for o in node.output:
                if o:
                    consts[o] = sources
            folded.add(i)
    return consts, stored_bits, folded


