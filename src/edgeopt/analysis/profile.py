"""Static cost profile of a Model: params, MACs, bytes, arithmetic intensity, peak activation memory.

Nothing is timed here: every number is counted on the ONNX graph at concrete shapes.

How it works:

1. **Shapes.** A copy of the proto gets the concrete input shapes
   (``InputSpec.batched(batch)``; the proto itself keeps the symbolic batch ``N``), then
   ``onnx.shape_inference.infer_shapes(data_prop=True)`` (the ONNX spec's inference, with
   constant propagation through Shape/Slice/Concat). Tensors it leaves without a concrete
   shape (e.g. a Reshape whose target is computed through a Cast to int32, as in the
   Paddle exports of PP-OCR) are filled by running onnxruntime once, all optimizations
   off, with those tensors exposed as extra graph outputs and random inputs of the right
   shapes. We do not use onnxruntime's ``symbolic_shape_infer``: it aborts on valid graphs
   (``assert axis == 0`` in its Concat handler for a 1-D Concat with ``axis=-1``, as in
   zoo:ppocr-cls), whereas an actual run gives exact shapes for any graph ORT can run.
2. **Constant folding view.** Initializers, Constant outputs and the outputs of nodes
   whose inputs are all constant (``DequantizeLinear(W_int8)`` in a QDQ model, a Reshape
   of a bias, ...) are weights, not activations. Those nodes are not layers: runtimes fold
   them at load time. A layer's weight bytes are the stored bytes (initializers and
   Constant values, their actual dtypes) its constant inputs come from, so a QDQ Conv
   reads its int8 weights, scales and zero points.
3. **Counting.** Each remaining node goes to its handler in
   :data:`edgeopt.analysis.ophandlers.HANDLERS` (MAC and other-op conventions are
   documented there). A node without a handler, or whose shapes stay unknown, is a row
   with ``counted=False`` and is listed in :attr:`ModelProfile.uncounted`; it is never a
   silent zero.
4. **Params.** The elements of the constant tensors in a handler's weight slots (Conv W
   and bias, Gemm B and C, BatchNormalization scale/bias/mean/var, a bias Add after
   MatMul, ...), at the shape the layer sees (a QDQ weight counts its int8 elements
   once, not its scales). A tensor read by several layers (a shared initializer) counts
   once in the total, keyed by tensor name, but appears in each reading layer's row. For
   an uncounted node, its floating-point constant inputs are counted as params so the
   model size is not understated.
5. **Peak activation memory.** A liveness walk over the topologically ordered runtime
   nodes: a tensor (graph input or node output; weights excluded) is live from the step
   of its producer (step 0 for graph inputs) to the step of its last consumer (the last
   step for graph outputs). The peak is the largest sum of live tensor bytes at any step,
   i.e. a runtime that frees each tensor after its last use and never reuses in place.
"""

from __future__ import annotations

import dataclasses
import heapq
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator

import onnx
from onnx import helper

from ..errors import ShapeError
from ..model import Model
from .ophandlers import HANDLERS, NodeView, Uncountable, handler_key

Shape = tuple[int, ...]

# Elements that do not fill a whole byte; every other dtype uses numpy's itemsize.
_SUB_BYTE_BITS = {
    getattr(onnx.TensorProto, name): bits
    for name, bits in (("INT4", 4), ("UINT4", 4), ("FLOAT4E2M1", 4), ("INT2", 2), ("UINT2", 2))
    if hasattr(onnx.TensorProto, name)
}
_FLOAT_TYPES = {
    getattr(onnx.TensorProto, name)
    for name in ("FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16")
}
# Nodes whose output differs run to run even with constant inputs: never folded.
_NOT_FOLDABLE = {"RandomNormalLike", "RandomUniformLike", "Multinomial", "Bernoulli"}


@dataclass(frozen=True)
class LayerProfile:
    """The static cost of one runtime node at the profiled batch.

    Attributes:
        name: node name (``OpType_index`` when the node has none).
        op_type: ONNX op type (``domain:OpType`` outside the default domain).
        output_shape: concrete shape of the first output; () when unknown.
        params: elements of the weight tensors the node reads (see module doc, 4.).
        macs: multiply-accumulates (0 for ops without conv/matmul-like work).
        other_ops: approximate non-MAC arithmetic operations (element-wise, pooling).
        weight_bytes: stored bytes (actual dtypes) of the initializers and Constant
            values the node reads, directly or through folded constant nodes.
        activation_bytes: bytes of the node's non-constant inputs plus its outputs.
        counted: False when no handler exists or the shapes are unknown; then ``macs``
            and ``other_ops`` are 0 because they are unknown, not because they are zero.
    """

    name: str
    op_type: str
    output_shape: Shape
    params: int
    macs: int
    other_ops: int
    weight_bytes: int
    activation_bytes: int
    counted: bool

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: MACs per byte moved (weights + input and output activations)."""
        moved = self.weight_bytes + self.activation_bytes
        return self.macs / moved if moved else 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the fields plus ``intensity``."""
        d = dataclasses.asdict(self)
        d["output_shape"] = list(self.output_shape)
        d["intensity"] = self.intensity
        return d


@dataclass(frozen=True)
class ModelProfile:
    """Totals and per-layer rows of :func:`profile`.

    Attributes:
        model: the Model's display name.
        batch: batch size the counts are for (MACs and activations scale with it).
        input_shapes: {input name: concrete shape at ``batch``}.
        layers: one row per runtime node, in topological order.
        params: parameter count, shared tensors counted once (see module doc, 4.).
        macs: total multiply-accumulates at ``batch`` (1 MAC = 2 OPs).
        other_ops: total approximate non-MAC arithmetic operations.
        weight_bytes: stored bytes of all initializers/Constant values the graph reads.
        file_bytes: size of the serialized ONNX model.
        peak_activation_bytes: liveness peak of activation memory (module doc, 5.).
        num_layers: runtime nodes with MACs > 0 (conv, matmul-like layers).
        num_nodes: runtime nodes (constant-folded nodes excluded).
        constant_nodes: nodes folded into weights (Constant, DequantizeLinear(W), ...).
        uncounted: ``"OpType xCOUNT"`` per op type that could not be counted, with the
            reason in parentheses when it is not a missing handler; empty when complete.
        shape_source: where the concrete shapes came from: "onnx", "onnx+onnxruntime", or
            "onnx (onnxruntime could not run it)" (then the unknown nodes are uncounted).
    """

    model: str
    batch: int
    input_shapes: dict[str, Shape]
    layers: list[LayerProfile]
    params: int
    macs: int
    other_ops: int
    weight_bytes: int
    file_bytes: int
    peak_activation_bytes: int
    num_layers: int
    num_nodes: int
    constant_nodes: int
    uncounted: list[str] = field(default_factory=list)
    shape_source: str = "onnx"

    @property
    def gops(self) -> float:
        """Giga-operations at ``batch``: 2 * MACs / 1e9."""
        return 2 * self.macs / 1e9

    @property
    def size_fp32_bytes(self) -> int:
        """Weight size if every param is stored as float32 (4 bytes)."""
        return self.params * 4

    @property
    def size_fp16_bytes(self) -> int:
        """Weight size if every param is stored as float16 (2 bytes)."""
        return self.params * 2

    @property
    def size_int8_bytes(self) -> int:
        """Weight size if every param is stored as int8 (1 byte; scales not included)."""
        return self.params

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every field, the derived sizes and GOPs, and the layer rows."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "layers"}
        d["input_shapes"] = {k: list(v) for k, v in self.input_shapes.items()}
        d["uncounted"] = list(self.uncounted)
        d.update(
            gops=self.gops, size_fp32_bytes=self.size_fp32_bytes,
            size_fp16_bytes=self.size_fp16_bytes, size_int8_bytes=self.size_int8_bytes,
            layers=[layer.to_dict() for layer in self.layers],
        )
        return d


def profile(model: Model, *, batch: int = 1) -> ModelProfile:
    """Count params, MACs, bytes and peak activation memory of ``model`` at ``batch``.

    Args:
        model: the Model (its proto keeps the symbolic batch; it is not modified).
        batch: batch size; MACs, other ops and activation bytes are for the whole batch.

    Returns:
        a :class:`ModelProfile` (units: MACs, elements, bytes).

    Raises:
        ShapeError: ``batch`` is not a positive integer, ONNX shape inference rejects
            the model at these shapes, or the graph has a cycle.

    Sources: MAC conventions as in fvcore/ptflops (see :mod:`edgeopt.analysis.ophandlers`);
    shapes from the ONNX shape inference spec (onnx/docs/ShapeInference.md), completed by
    an onnxruntime run when inference cannot propagate a computed shape.
    """
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ShapeError(f"batch must be a positive integer, got {batch!r}: pass batch=1 or more")
    concrete = _concrete_proto(model, batch)
    try:
        inferred = onnx.shape_inference.infer_shapes(concrete, data_prop=True)
    except Exception as e:  # onnx raises InferenceError, ValidationError and others
        raise ShapeError(
            f"ONNX shape inference fails on {model.name} at batch {batch} "
            f"({str(e).splitlines()[0][:160]}): re-export the model or fix its input shapes"
        ) from e
    graph = inferred.graph
    types = _tensor_types(graph)
    nodes = list(graph.node)  # topologically ordered by _concrete_proto
    consts, stored_bytes, folded = _fold_constants(graph, nodes, types)
    runtime = [(i, n) for i, n in enumerate(nodes) if i not in folded]

    shape_source = "onnx"
    needed = {x for _, n in runtime for x in (*n.input, *n.output) if x}
    missing = sorted(x for x in needed if types.get(x, (None, 0))[0] is None)
    if missing:
        found = _shapes_from_onnxruntime(concrete, missing, model.example_feeds(batch))
        types.update(found)
        shape_source = "onnx+onnxruntime" if found else "onnx (onnxruntime could not run it)"

    layers: list[LayerProfile] = []
    weights: dict[str, int] = {}
    read_sources: set[str] = set()
    uncounted: Counter[tuple[str, str]] = Counter()
    for idx, node in runtime:
        layer, node_weights, sources, reason = _layer(idx, node, types, consts, stored_bytes)
        layers.append(layer)
        weights.update(node_weights)
        read_sources |= sources
        if reason:
            uncounted[(layer.op_type, reason)] += 1

    return ModelProfile(
        model=model.name,
        batch=batch,
        input_shapes={s.name: s.batched(batch) for s in model.inputs},
        layers=layers,
        params=sum(weights.values()),
        macs=sum(layer.macs for layer in layers),
        other_ops=sum(layer.other_ops for layer in layers),
        weight_bytes=sum(stored_bytes[s] for s in read_sources),
        file_bytes=model.size_bytes,
        peak_activation_bytes=_peak_activation_bytes(graph, [n for _, n in runtime], types, consts),
        num_layers=sum(1 for layer in layers if layer.macs > 0),
        num_nodes=len(runtime),
        constant_nodes=len(folded),
        uncounted=[
            f"{op} x{count}" + ("" if reason == "no handler" else f" ({reason})")
            for (op, reason), count in sorted(uncounted.items())
        ],
        shape_source=shape_source,
    )


# -- shapes --------------------------------------------------------------------------------
def _concrete_proto(model: Model, batch: int) -> onnx.ModelProto:
    """A copy with concrete input dims and no stale symbolic shapes for inference to trip on."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
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
        if vi.type.HasField("tensor_type") and _shape_of(vi) is None:
            vi.type.tensor_type.ClearField("shape")
    # Shape inference and onnxruntime both need producers before consumers.
    ordered = _topological(list(proto.graph.node))
    del proto.graph.node[:]
    proto.graph.node.extend(ordered)
    return proto


def _shape_of(vi: onnx.ValueInfoProto) -> Shape | None:
    tt = vi.type.tensor_type
    if not vi.type.HasField("tensor_type") or not tt.HasField("shape"):
        return None
    dims = tt.shape.dim
    if not all(d.HasField("dim_value") for d in dims):
        return None
    return tuple(int(d.dim_value) for d in dims)


def _tensor_types(graph: onnx.GraphProto) -> dict[str, tuple[Shape | None, int]]:
    """{tensor name: (concrete shape or None, ONNX elem type)} for every typed tensor."""
    types: dict[str, tuple[Shape | None, int]] = {}
    for vi in (*graph.input, *graph.value_info, *graph.output):
        types[vi.name] = (_shape_of(vi), vi.type.tensor_type.elem_type)
    for init in graph.initializer:
        types[init.name] = (tuple(int(d) for d in init.dims), init.data_type)
    return types


def _shapes_from_onnxruntime(
    proto: onnx.ModelProto, names: list[str], feeds: dict[str, Any]
) -> dict[str, tuple[Shape | None, int]]:
    """Shapes and elem types of ``names`` from one onnxruntime run that exposes them.

    Graph optimizations are off so every named tensor still exists. When onnxruntime
    cannot run the graph, the tensors stay unknown and their nodes are reported as
    uncounted ("shape unknown") by the caller.
    """
    from .probe import probe_session

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
def _subgraph_reads(node: onnx.NodeProto) -> Iterator[str]:
    """Names read inside the node's subgraphs (If/Loop/Scan bodies), outer scope included."""
    for attr in node.attribute:
        graphs = [attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)
        for g in graphs:
            for inner in g.node:
                yield from (x for x in inner.input if x)
                yield from _subgraph_reads(inner)


def _has_subgraph(node: onnx.NodeProto) -> bool:
    return any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute)


def _reads(node: onnx.NodeProto) -> list[str]:
    return [x for x in node.input if x] + list(_subgraph_reads(node))


def _topological(nodes: list[onnx.NodeProto]) -> list[onnx.NodeProto]:
    """Nodes in a topological order: the given order when valid (the ONNX spec requires
    it), else Kahn's algorithm, ties broken by the original position.

    Raises:
        ShapeError: the graph has a cycle.
    """
    producer = {o: i for i, n in enumerate(nodes) for o in n.output if o}
    deps = [{producer[x] for x in _reads(n) if x in producer} - {i} for i, n in enumerate(nodes)]
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


def _tensor_bytes(shape: Shape | None, elem_type: int) -> int:
    """Bytes of a tensor of ``shape`` and ONNX ``elem_type`` (0 when either is unknown)."""
    if shape is None or not elem_type:
        return 0
    count = math.prod(shape)
    if elem_type in _SUB_BYTE_BITS:
        return math.ceil(count * _SUB_BYTE_BITS[elem_type] / 8)
    try:
        return count * helper.tensor_dtype_to_np_dtype(elem_type).itemsize
    except (KeyError, TypeError, ValueError):  # STRING and other non-numeric types
        return 0


def _fold_constants(
    graph: onnx.GraphProto, nodes: list[onnx.NodeProto], types: dict[str, tuple[Shape | None, int]]
) -> tuple[dict[str, frozenset[str]], dict[str, int], set[int]]:
    """Find constant tensors.

    Returns:
        (constant tensor name -> names of the stored tensors it is computed from,
         stored tensor name -> its bytes, indices of the folded nodes).
    """
    consts: dict[str, frozenset[str]] = {}
    stored_bytes: dict[str, int] = {}
    for init in graph.initializer:
        consts[init.name] = frozenset([init.name])
        stored_bytes[init.name] = _tensor_bytes(*types[init.name])
    folded: set[int] = set()
    for i, node in enumerate(nodes):
        ins = [x for x in node.input if x]
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
            for o in node.output:
                consts[o] = frozenset([o])
                stored_bytes[o] = _tensor_bytes(*types.get(o, (None, 0)))
            folded.add(i)
        elif (ins and all(x in consts for x in ins) and node.op_type not in _NOT_FOLDABLE
              and not _has_subgraph(node)):
            sources = frozenset().union(*(consts[x] for x in ins))
            for o in node.output:
                if o:
                    consts[o] = sources
            folded.add(i)
    return consts, stored_bytes, folded


# -- per-node counting -------------------------------------------------------------------------
def _attr_value(attr: onnx.AttributeProto) -> Any:
    value = helper.get_attribute_value(attr)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list) and value and isinstance(value[0], bytes):
        return [v.decode("utf-8", "replace") for v in value]
    return value


def _layer(
    idx: int,
    node: onnx.NodeProto,
    types: dict[str, tuple[Shape | None, int]],
    consts: dict[str, frozenset[str]],
    stored_bytes: dict[str, int],
) -> tuple[LayerProfile, dict[str, int], set[str], str]:
    """One node's row, its weight tensors {name: elements}, the stored tensors it reads, and
    the reason it is uncounted ("" when counted)."""
    op = handler_key(node.domain, node.op_type)
    shape = lambda x: types.get(x, (None, 0))[0] if x else None  # noqa: E731
    view = NodeView(
        op_type=node.op_type,
        domain=node.domain,
        inputs=tuple(shape(x) for x in node.input),
        outputs=tuple(shape(x) for x in node.output),
        constant=tuple(bool(x) and x in consts for x in node.input),
        attrs={a.name: _attr_value(a) for a in node.attribute},
    )
    handler = HANDLERS.get(op)
    macs = other = 0
    weight_slots: Iterable[int] = ()
    reason = ""
    unknown = [x for x in (*node.input, *node.output) if x and shape(x) is None]
    if handler is None:
        reason = "no handler"
    elif unknown:
        reason = "shape unknown"
    else:
        try:
            cost = handler(view)
            macs, other, weight_slots = cost.macs, cost.other_ops, cost.weight_slots
        except Uncountable as e:
            reason = str(e)

    if reason:
        # Unknown weight slots: count every floating-point constant input as a weight.
        weight_slots = [
            i for i, x in enumerate(node.input)
            if view.constant[i] and types.get(x, (None, 0))[1] in _FLOAT_TYPES
        ]
    node_weights = {
        node.input[i]: math.prod(view.inputs[i])
        for i in weight_slots
        if i < len(node.input) and view.constant[i] and view.inputs[i] is not None
    }
    sources = set().union(*(consts[x] for x in node.input if x in consts))
    activations = {x for x in node.input if x and x not in consts} | {x for x in node.output if x}
    first_out = view.outputs[0] if view.outputs else None
    layer = LayerProfile(
        name=node.name or f"{node.op_type}_{idx}",
        op_type=op,
        output_shape=first_out or (),
        params=sum(node_weights.values()),
        macs=macs,
        other_ops=other,
        weight_bytes=sum(stored_bytes[s] for s in sources),
        activation_bytes=sum(_tensor_bytes(*types.get(x, (None, 0))) for x in activations),
        counted=not reason,
    )
    return layer, node_weights, sources, reason


# -- activation memory --------------------------------------------------------------------------
def _peak_activation_bytes(
    graph: onnx.GraphProto,
    runtime: list[onnx.NodeProto],
    types: dict[str, tuple[Shape | None, int]],
    consts: dict[str, frozenset[str]],
) -> int:
    """Peak sum of live activation bytes over the runtime steps (module doc, 5.)."""
    birth: dict[str, int] = {}
    death: dict[str, int] = {}
    for vi in graph.input:
        if vi.name not in consts:
            birth[vi.name] = death[vi.name] = 0
    for step, node in enumerate(runtime):
        for x in _reads(node):
            if x in birth:
                death[x] = max(death[x], step)
        for o in node.output:
            if o and o not in consts:
                birth[o] = death[o] = step
    last = max(len(runtime) - 1, 0)
    for vi in graph.output:
        if vi.name in birth:
            death[vi.name] = last
    # Difference array: +bytes at birth, -bytes after death; the running sum is the live set.
    delta = [0] * (last + 2)
    for name, start in birth.items():
        size = _tensor_bytes(*types.get(name, (None, 0)))
        delta[start] += size
        delta[death[name] + 1] -= size
    peak = live = 0
    for step in range(last + 1):
        live += delta[step]
        peak = max(peak, live)
    return peak
