"""The 2-D convolutions of a Model as :class:`~.layer.ConvLayer` s, from its profile and
the nodes' ONNX attributes, and the convs the dataflow model leaves out (with why).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from onnx import helper

from ...errors import EdgeoptError
from ..ophandlers import handler_key
from ..profile import profile
from .layer import ConvLayer

if TYPE_CHECKING:
    from ...model import Model

# Conv-like op types (the profile's op_type keys) and the input position of their weight.
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "com.microsoft:FusedConv": 1}


class _Skip(Exception):
    """A conv the dataflow model leaves out; the message is the reason."""


def model_convs(model: "Model") -> tuple[list[ConvLayer], list[str]]:
    """The 2-D convolutions of ``model`` at batch 1, in graph order, and ``"name: reason"``
    for each conv left out (dilated, not 2-D, uncounted by the profile, shapes unknown).

    Output shape and MACs come from :func:`edgeopt.analysis.profile.profile` (input channels
    per group = MACs / (outputs x Kh x Kw)); kernel, strides, pads, auto_pad and group from
    the node's attributes (ONNX Conv spec); the input size from the profiled output shape
    of the node that produces the conv's input (or the model's input spec).

    Raises:
        ShapeError: the profile cannot infer the model's shapes.
    """
    prof = profile(model, batch=1)
    rows = {layer.name: layer for layer in prof.layers}
    nodes = list(model.proto.graph.node)
    # The profile's naming: node.name, else OpType_index in graph order.
    names = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(nodes)]
    spatial: dict[str, tuple[int, ...]] = {s.name: s.batched(1)[2:] for s in model.inputs}
    for node, name in zip(nodes, names):
        if node.output and node.output[0] and name in rows and len(rows[name].output_shape) == 4:
            spatial[node.output[0]] = rows[name].output_shape[2:]
    weights = {t.name: tuple(int(d) for d in t.dims) for t in model.proto.graph.initializer}
    convs: list[ConvLayer] = []
    skipped: list[str] = []
    for node, name in zip(nodes, names):
        op = handler_key(node.domain, node.op_type)
        if op not in _CONV_WEIGHT:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        try:
            if name not in rows:
                raise _Skip("not a runtime layer of the profile")
            w_name = node.input[_CONV_WEIGHT[op]] if len(node.input) > _CONV_WEIGHT[op] else ""
            convs.append(_conv_layer(name, rows[name], attrs, spatial.get(node.input[0]), weights.get(w_name)))
        except _Skip as e:
            skipped.append(f"{name}: {e}")
    return convs, skipped


def _conv_layer(name: str, row: Any, attrs: dict[str, Any], in_hw: tuple[int, ...] | None,
                w_shape: tuple[int, ...] | None) -> ConvLayer:
    """One ConvLayer from the profile row, the ONNX attributes and the input size.

    Raises:
        _Skip: the conv is outside the model (reason in the message).
    """
    y = tuple(row.output_shape)
    if not row.counted or len(y) != 4:
        raise _Skip("not a counted 2-D conv in the profile")
    if y[0] != 1:
        raise _Skip(f"batch {y[0]} (the model covers batch 1)")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _Skip(f"dilations {list(attrs['dilations'])} are not modelled")
    kernel = attrs.get("kernel_shape") or (w_shape[2:] if w_shape else None)
    if not kernel or len(kernel) != 2:
        raise _Skip("kernel shape unknown (no kernel_shape attribute, weight not an initializer)")
    kh, kw = (int(v) for v in kernel)
    sh, sw = (int(v) for v in attrs.get("strides", [1, 1]))
    groups = int(attrs.get("group", 1))
    m, r, c = y[1], y[2], y[3]
    n_per_group, rest = divmod(row.macs, m * r * c * kh * kw)
    if rest or n_per_group < 1:
        raise _Skip(f"MACs {row.macs} do not factor as M x R x C x K x K x N/groups")
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    hw: list[int] = []
    pads: list[int] = []
    for axis, (out, k, s) in enumerate(((r, kh, sh), (c, kw, sw))):
        needed = (out - 1) * s + k  # padded extent the outputs read
        size = int(in_hw[axis]) if in_hw is not None and len(in_hw) == 2 else None
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if size is None:
                raise _Skip("auto_pad SAME with an unknown input size")
            total = max(0, needed - size)
            pads.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        else:
            explicit = list(attrs.get("pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else [0, 0, 0, 0]
            pads.append(int(explicit[axis]))
            # Rows past the last window are never read, so when the input size is unknown the
            # extent the windows reach (padding after excluded) gives the same traffic.
            size = size if size is not None else needed - int(explicit[axis]) - int(explicit[axis + 2])
        hw.append(size)
    try:
        layer = ConvLayer(m=m, n=n_per_group * groups, r=r, c=c, k=(kh, kw), stride=(sh, sw),
                          pad=tuple(pads), h=hw[0], w=hw[1], groups=groups, name=name)
    except EdgeoptError as e:
        raise _Skip(str(e)) from None
    return layer
