"""Static cost profile of a Model: params, MACs, bytes, arithmetic intensity, peak activation memory.

Nothing is timed here: every number is counted on the ONNX graph at concrete shapes.

How it works:

Steps 1 and 2 are :func:`edgeopt.analysis.graphview.graph_view`, shared with the
analyses that need every tensor's shape.

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
   reads its int8 weights, scales and zero points. Each stored tensor counts
   ceil(elements x bits / 8) bytes at the width a pass declared for it (the model's
   ``edgeopt.weight_bits`` metadata, e.g. ``weights-pow2``), else at its stored width,
   INT4/INT2 packed (:mod:`edgeopt.analysis.bitwidth`, the rule the energy model and the
   low-bit passes share). A layer's ``weight_bits`` is that width for its largest weight
   tensor (the Conv/Gemm kernel rather than its bias or scales).
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
import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import onnx
from onnx import helper

from ..model import Model
from .._util.onnxgraph import reads
from .bitwidth import tensor_bytes
from .graphview import Shape, graph_view
from .ophandlers import HANDLERS, NodeView, Uncountable, handler_key

_FLOAT_TYPES = {
    getattr(onnx.TensorProto, name)
    for name in ("FLOAT", "FLOAT16", "DOUBLE", "BFLOAT16")
}


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
        weight_bytes: stored bytes of the initializers and Constant values the node
            reads, directly or through folded constant nodes, each at its declared or
            stored (packed) width (module doc, 2.).
        activation_bytes: bytes of the node's non-constant inputs plus its outputs.
        counted: False when no handler exists or the shapes are unknown; then ``macs``
            and ``other_ops`` are 0 because they are unknown, not because they are zero.
        weight_bits: bits per element of its largest weight tensor as counted (32 for
            float32, 8 for QDQ int8, 4 for ``weights-int4`` or ``weights-pow2`` at 4
            bits); None when it reads no weight.
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
    weight_bits: int | None = None

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
        weight_bytes: stored bytes of all initializers/Constant values the graph reads,
            at their declared or stored widths (module doc, 2.).
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
    view = graph_view(model, batch)
    graph, types, consts, stored_bytes, runtime = view.graph, view.types, view.consts, view.stored_bytes, view.runtime
    bits = view.stored_bits

    layers: list[LayerProfile] = []
    weights: dict[str, int] = {}
    read_sources: set[str] = set()
    uncounted: Counter[tuple[str, str]] = Counter()
    for idx, node in runtime:
        layer, node_weights, sources, reason = _layer(idx, node, types, consts, stored_bytes, bits)
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
        constant_nodes=len(view.folded),
        uncounted=[
            f"{op} x{count}" + ("" if reason == "no handler" else f" ({reason})")
            for (op, reason), count in sorted(uncounted.items())
        ],
        shape_source=view.shape_source,
    )


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
    stored_bits: dict[str, int],
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
        activation_bytes=sum(tensor_bytes(*types.get(x, (None, 0))) for x in activations),
        counted=not reason,
        weight_bits=_weight_bits(node_weights, consts, types, stored_bits),
    )
    return layer, node_weights, sources, reason


def _weight_bits(node_weights: dict[str, int], consts: dict[str, frozenset[str]],
                 types: dict[str, tuple[Shape | None, int]], stored_bits: dict[str, int]) -> int | None:
    """Counted bits of the largest stored tensor behind the node's weight slots (module
    doc, 2.): the int4 codes behind a DequantizeLinear, not its float32 scales."""
    sources = sorted(set().union(*(consts[x] for x in node_weights if x in consts)))
    if not sources:
        return None
    largest = max(sources, key=lambda s: math.prod(types.get(s, (None, 0))[0] or ()))
    return stored_bits.get(largest) or None


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
        for x in reads(node):
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
        size = tensor_bytes(*types.get(name, (None, 0)))
        delta[start] += size
        delta[death[name] + 1] -= size
    peak = live = 0
    for step in range(last + 1):
        live += delta[step]
        peak = max(peak, live)
    return peak
