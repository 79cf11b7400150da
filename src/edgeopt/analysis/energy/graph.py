"""The graph walk of the energy model: runtime layers, fused nodes and their aliases,
per-layer precision, and the activation traffic between layers (rules 1, 2 and 4 of
:mod:`edgeopt.analysis.energy`).

Internal to the package: :mod:`.layers` turns these rows into energies.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import onnx

from ..bitwidth import tensor_bytes
from ..graphview import graph_view
from ..ophandlers import handler_key

if TYPE_CHECKING:
    from ...model import Model
    from ..profile import ModelProfile

_INTEGER_OPS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "com.microsoft:QGemm"}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_ACTIVATION_OPS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
                   "Selu", "Gelu", "Mish"}
_METADATA_OPS = {"Shape", "Size"}
_INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)


@dataclass
class Graph:
    """The runtime view shared with the profile, plus aliases and runtime tensor sizes.

    Attributes:
        runtime: (the profile's layer name, node) per runtime node, in order.
        consts: constant tensors (weights).
        outputs: graph output names.
        producer_op: {tensor: op type of the runtime node producing it}.
        float16: float16 tensors.
        int8_consts: constant tensors computed from 8-bit integer initializers (QDQ weights).
        root: {tensor: the tensor it aliases} through fused nodes (package doc, 1.).
        size: {alias root: runtime bytes}, the smallest of its aliases.
        unsized: activation tensors of unknown size.
    """

    runtime: list[tuple[str, onnx.NodeProto]]
    consts: set[str]
    outputs: set[str]
    producer_op: dict[str, str]
    float16: set[str]
    int8_consts: set[str]
    root: dict[str, str] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    unsized: set[str] = field(default_factory=set)

    def find(self, x: str) -> str:
        """The alias root of tensor ``x``."""
        while x in self.root:
            x = self.root[x]
        return x


@dataclass(frozen=True)
class Row:
    """One layer as the energy model sees it: the profile's counts (weight bytes and
    bits as :mod:`edgeopt.analysis.bitwidth` counts them), activations at their alias
    roots (``inputs``, ``outputs``) and runtime sizes (bytes)."""

    name: str
    op_type: str
    precision: str
    macs: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    inputs: tuple[str, ...]  # alias roots
    outputs: tuple[str, ...]
    weight_bits: int | None = None


def build_graph(model: Model, batch: int) -> Graph:
    """Shapes and constants as :func:`edgeopt.analysis.profile.profile` sees them
    (:func:`~edgeopt.analysis.graphview.graph_view`), with the aliases of fused nodes
    resolved."""

    view = graph_view(model, batch)
    g, types, consts, runtime = view.graph, view.types, view.consts, [
        (n.name or f"{n.op_type}_{i}", n) for i, n in view.runtime]
    needed = {x for _, n in runtime for x in (*n.input, *n.output) if x and x not in consts}
    graph = Graph(
        runtime=runtime, consts=set(consts), outputs={o.name for o in g.output},
        producer_op={o: n.op_type for _, n in runtime for o in n.output if o},
        float16={x for x in needed if types.get(x, (None, 0))[1] == onnx.TensorProto.FLOAT16},
        int8_consts={x for x, sources in consts.items()
                     if any(types.get(s, (None, 0))[1] in _INT8_TYPES for s in sources)},
    )
    for _, node in runtime:
        if fusible(node, graph):
            graph.root[node.output[0]] = graph.find(data_inputs(node, graph)[0])
    for x in sorted(needed):
        b, r = tensor_bytes(*types.get(x, (None, 0))), graph.find(x)
        if b == 0:
            graph.unsized.add(x)
        elif r not in graph.size or b < graph.size[r]:
            graph.size[r] = b
    return graph


def data_inputs(node: onnx.NodeProto, graph: Graph) -> list[str]:
    """The node's activation inputs (constants left out), in input order."""
    return [x for x in node.input if x and x not in graph.consts]


def fusible(node: onnx.NodeProto, graph: Graph) -> bool:
    """A node that moves no data of its own (package doc, 1.): one activation in, one out."""
    if node.domain not in ("", "ai.onnx") or len([o for o in node.output if o]) != 1:
        return False
    if node.op_type not in _QDQ_OPS | _VIEW_OPS | _ACTIVATION_OPS:
        return False
    return len(data_inputs(node, graph)) == 1


def mac_precision(node: onnx.NodeProto, graph: Graph) -> str:
    """The precision of the layer's MACs (package doc, 2.): what the runtime computes in,
    not what the weights are stored at (weight-only INT4 behind DequantizeLinear is fp32)."""

    if handler_key(node.domain, node.op_type) in _INTEGER_OPS:
        return "int8"
    data = data_inputs(node, graph)
    weights = [x for x in node.input if x in graph.consts]
    # QDQ: activations dequantized from uint8, and weights (if any) from int8 initializers
    # (a layer kept in float after a quantized one reads a DQ output but float weights).
    if data and all(graph.producer_op.get(x) == "DequantizeLinear" for x in data) and (
            not weights or any(x in graph.int8_consts for x in weights)):
        return "int8"
    return "fp16" if node.output and node.output[0] in graph.float16 else "fp32"


def layer_rows(graph: Graph, prof: "ModelProfile") -> list[Row]:
    """One row per non-fused runtime node, activations at their alias roots' sizes."""
    rows = []
    for (name, node), lp in zip(graph.runtime, prof.layers):
        if fusible(node, graph):
            continue
        # Shape and Size read a tensor's metadata, not its data.
        reads = [] if node.op_type in _METADATA_OPS else data_inputs(node, graph)
        ins = tuple(dict.fromkeys(graph.find(x) for x in reads))
        outs = tuple(dict.fromkeys(graph.find(x) for x in node.output if x))
        rows.append(Row(
            name=name, op_type=lp.op_type, precision=mac_precision(node, graph), macs=lp.macs,
            weight_bytes=lp.weight_bytes, input_bytes=sum(graph.size.get(x, 0) for x in ins),
            output_bytes=sum(graph.size.get(x, 0) for x in outs), inputs=ins, outputs=outs,
            weight_bits=lp.weight_bits,
        ))
    return rows


def activation_traffic(graph: Graph, rows: list[Row], fits: list[bool]) -> tuple[list[int], list[int]]:
    """DRAM bytes read and written per layer for the activations (package doc, 4.)."""
    producer = {x: k for k, r in enumerate(rows) for x in r.outputs}
    consumers: dict[str, set[int]] = {}
    for k, r in enumerate(rows):
        for x in r.inputs:
            consumers.setdefault(x, set()).add(k)
    graph_outputs = {graph.find(x) for x in graph.outputs}

    def resident(x: str) -> bool:
        p = producer.get(x)
        if p is None or not fits[p] or x in graph_outputs or p + 1 >= len(rows):
            return False
        return consumers.get(x, set()) == {p + 1} and fits[p + 1]

    reads = [sum(graph.size.get(x, 0) for x in r.inputs if not resident(x)) for r in rows]
    writes = [sum(graph.size.get(x, 0) for x in r.outputs if not resident(x)) for r in rows]
    return reads, writes
