"""What a detection head's outputs are made of, read from the ONNX graph: the
activation that ends a score output and the feature maps a box output concatenates."""

from __future__ import annotations

from typing import TYPE_CHECKING

import onnx

from ....analysis.graphview import GraphView, graph_view
from ....errors import EdgeoptError

if TYPE_CHECKING:
    from ....model import Model

# Ops that move or relabel values without computing new ones: a head's outputs are
# Conv results behind a few of these (NCHW -> NHWC, flatten, concat over maps).
_LAYOUT_OPS = {"Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast"}


def _producers(graph: onnx.GraphProto) -> dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def _source(producers: dict[str, onnx.NodeProto], tensor: str) -> tuple[onnx.NodeProto | None, str]:
    """(the first node above ``tensor`` that is not a layout op, the tensor it makes)."""
    node = producers.get(tensor)
    while node is not None and node.op_type in _LAYOUT_OPS:
        tensor = node.input[0]
        node = producers.get(tensor)
    return node, tensor


def activation(model: "Model", output: str) -> str | None:
    """"softmax" or "sigmoid" when every branch of output ``output`` ends in that op
    (through layout ops and a Concat over feature maps), else None (raw logits)."""
    producers = _producers(model.proto.graph)
    node, _ = _source(producers, output)
    branches = [_source(producers, t)[0] for t in node.input] if node is not None and node.op_type == "Concat" \
        else [node]
    kinds = {b.op_type.lower() if b is not None else None for b in branches}
    return kinds.pop() if len(kinds) == 1 and kinds & {"softmax", "sigmoid"} else None


def head_maps(model: "Model", output: str, per_anchor: int) -> list[tuple[int, int, int]] | None:
    """The feature maps behind an SSD-style head output (N, A, ``per_anchor``): one
    (height, width, anchors per location) per map in concatenation order, read from the
    (N, anchors * per_anchor, H, W) convolution outputs the head reshapes; None when the
    graph is not built that way."""
    try:
        view: GraphView = graph_view(model, 1)
    except EdgeoptError:
        return None
    producers = _producers(view.graph)
    node, tensor = _source(producers, output)
    tensors = [tensor] if node is None or node.op_type != "Concat" else [_source(producers, t)[1] for t in node.input]
    maps = []
    for t in tensors:
        shape = view.shape(t)
        if shape is None or len(shape) != 4 or shape[1] % per_anchor:
            return None
        maps.append((shape[2], shape[3], shape[1] // per_anchor))
    return maps
