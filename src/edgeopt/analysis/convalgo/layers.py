"""The 2-D Conv layers of a Model, as :class:`ConvSpec` at concrete shapes.

Shapes come from the same concrete-shape pass as the static profile
(:mod:`edgeopt.analysis.profile`: concrete input dims, then ONNX shape inference), and
layers are named as the profile names them (``node.name`` or ``OpType_index``), so rows
line up with ``edgeopt profile``. Attributes are read as the ONNX Conv spec defines them
(https://onnx.ai/onnx/operators/onnx__Conv.html), including ``auto_pad``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from onnx import helper

from ...model import Model
from ..graphview import graph_view
from .spec import ConvSpec


@dataclass(frozen=True)
class ConvLayer:
    """One Conv node: its spec, or why it has none.

    Attributes:
        name: the profile's layer name.
        spec: the layer at the analysed batch; None when ``skipped``.
        skipped: "" or the reason the algorithms cannot take it (dilation, not 2-D,
            unknown shape).
    """

    name: str
    spec: ConvSpec | None
    skipped: str = ""


def _pads(attrs: dict[str, Any], x_hw: tuple[int, int], k: tuple[int, int], strides: tuple[int, int]
          ) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) from ``pads`` or ``auto_pad`` (SAME_UPPER puts the odd pad at the end)."""
    auto = attrs.get("auto_pad", "NOTSET")
    if isinstance(auto, bytes):
        auto = auto.decode()
    if auto in ("SAME_UPPER", "SAME_LOWER"):
        head, tail = [], []
        for size, kk, s in zip(x_hw, k, strides):
            need = max(0, (-(-size // s) - 1) * s + kk - size)
            lo = (need + 1) // 2 if auto == "SAME_LOWER" else need // 2
            head.append(lo)
            tail.append(need - lo)
        return head[0], head[1], tail[0], tail[1]
    if auto == "VALID":
        return 0, 0, 0, 0
    pads = attrs.get("pads", [0, 0, 0, 0])
    return tuple(int(p) for p in pads)  # type: ignore[return-value]


def conv_layers(model: Model, *, batch: int = 1) -> list[ConvLayer]:
    """Every default-domain ``Conv`` node of ``model`` in graph order, at ``batch``.

    Returns:
        one :class:`ConvLayer` per Conv node; the ones the algorithms cannot run (dilation
        > 1, 1-D or 3-D, shapes inference could not make concrete) carry a ``skipped`` reason.

    Raises:
        ShapeError: batch is not a positive integer, or ONNX shape inference rejects the model.
    """
    view = graph_view(model, batch)
    graph, types = view.graph, view.types
    layers = []
    for idx, node in enumerate(graph.node):
        if node.op_type != "Conv" or node.domain not in ("", "ai.onnx"):
            continue
        name = node.name or f"Conv_{idx}"
        x_shape = types.get(node.input[0], (None, 0))[0]
        w_shape = types.get(node.input[1], (None, 0))[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if x_shape is None or w_shape is None:
            layers.append(ConvLayer(name, None, "input or weight shape unknown after shape inference"))
        elif len(x_shape) != 4:
            layers.append(ConvLayer(name, None, f"{len(x_shape) - 2}-D convolution: only 2-D is implemented"))
        elif any(d != 1 for d in attrs.get("dilations", [1, 1])):
            layers.append(ConvLayer(name, None, f"dilations {attrs['dilations']}: only dilation 1 is implemented"))
        else:
            strides = tuple(int(s) for s in attrs.get("strides", [1, 1]))
            pads = _pads(attrs, (x_shape[2], x_shape[3]), (w_shape[2], w_shape[3]), strides)
            spec = ConvSpec.of(x_shape, w_shape, stride=strides, padding=pads, groups=int(attrs.get("group", 1)))
            layers.append(ConvLayer(name, spec))
    return layers
