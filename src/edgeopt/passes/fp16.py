"""float16 conversion: weights and activations in fp16, graph inputs/outputs kept fp32.

Uses ONNX Runtime's converter, ``onnxruntime.transformers.float16.convert_float_to_float16``
(the same code as onnxconverter-common's ``float16.py``, shipped inside onnxruntime, so no
extra dependency). With ``keep_io_types`` it inserts a Cast after each float input and
before each float output, so callers keep feeding float32 and the input names stay.

Ops in ``DEFAULT_OP_BLOCK_LIST`` of that module (TopK, NonMaxSuppression, Range, Upsample,
RoiAlign, Min/Max, CumSum, the ai.onnx.ml ops, ...) stay fp32 behind Casts: they either
have no fp16 kernel in ONNX Runtime or lose too much precision. ``Fp16Config.op_block_list``
adds to that list. Initializer values outside the fp16 range are clamped to
+-65504 and tiny ones to +-5.96e-8 (the converter's defaults, IEEE 754 binary16 limits).

On a CPU without native fp16 arithmetic ONNX Runtime and OpenVINO compute most fp16 ops
in fp32 (ORT inserts Casts around ops lacking an fp16 CPU kernel); the gain there is the
halved file size, not speed. Benchmarks decide.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnx import numpy_helper

from ..errors import PassError
from .._util.onnxgraph import copy_proto
from .._util.errorline import error_line
from .base import finish, sort_nodes

if TYPE_CHECKING:
    from ..model import Model

NAME = "fp16"
_FP16_MAX = float(np.finfo(np.float16).max)  # 65504


@dataclass(frozen=True)
class Fp16Config:
    """Settings of the fp16 pass.

    Attributes:
        keep_io_types: keep graph inputs/outputs float32 (Casts inside the graph).
        op_block_list: op types kept in float32 in addition to the converter's
            ``DEFAULT_OP_BLOCK_LIST``.
        node_block_list: node names kept in float32.
    """

    keep_io_types: bool = True
    op_block_list: tuple[str, ...] = ()
    node_block_list: tuple[str, ...] = ()


def apply(model: "Model", config: Fp16Config = Fp16Config()) -> "Model":
    """Convert the float32 tensors of ``model`` to float16.

    Returns:
        a new Model (``passes`` + "fp16"); float initializers are float16 (2 bytes per
        weight instead of 4), inputs/outputs float32 when ``keep_io_types``.

    Raises:
        PassError: the converter fails on this graph.
    """
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    proto = copy_proto(model.proto)  # both helpers below edit it in place
    constants_to_initializers(proto)
    blocked_nodes = set(config.node_block_list) | out_of_range_nodes(proto)
    try:
        proto = convert_float_to_float16(
            proto,
            keep_io_types=config.keep_io_types,
            op_block_list=sorted(set(DEFAULT_OP_BLOCK_LIST) | set(config.op_block_list)),
            node_block_list=sorted(blocked_nodes) or None,
        )
    except Exception as e:
        raise PassError(
            f"fp16 conversion of {model.name} failed ({error_line(e)}): keep the failing op in "
            f"fp32 with Fp16Config(op_block_list=(...,)) or skip fp16"
        ) from e
    sort_nodes(proto.graph)
    out = finish(model, proto, NAME)
    if config.keep_io_types:
        return out
    # The graph now takes float16 where it took float32: the specs must say so.
    inputs = [dataclasses.replace(s, dtype="float16") if s.dtype == "float32" else s for s in out.inputs]
    return dataclasses.replace(out, inputs=inputs)


def constants_to_initializers(proto: onnx.ModelProto) -> int:
    """Turn main-graph ``Constant`` nodes holding a tensor into initializers, in place.

    Same values, fewer nodes. The converter handles initializers well (it keeps the fp32
    inputs of blocked nodes fp32) but converts Constant nodes blindly: on zoo:ppocr-det
    (342 Constant nodes from paddle2onnx) the converted model gave cosine 0.03 to the
    original, 0.9999 after this step plus the out-of-range blocking below.

    Returns:
        the number of nodes turned into initializers.
    """
    keep, moved = [], 0
    for node in proto.graph.node:
        attrs = list(node.attribute)
        if node.op_type == "Constant" and len(attrs) == 1 and attrs[0].name == "value":
            tensor = onnx.TensorProto()
            tensor.CopyFrom(attrs[0].t)
            tensor.name = node.output[0]
            proto.graph.initializer.append(tensor)
            moved += 1
        else:
            keep.append(node)
    if moved:
        del proto.graph.node[:]
        proto.graph.node.extend(keep)
    return moved


def out_of_range_nodes(proto: onnx.ModelProto) -> set[str]:
    """Names of nodes that read a float initializer with a value beyond the fp16 range.

    The converter clamps such values to +-65504, which silently changes the model: the
    PP-OCRv4 detector (zoo:ppocr-det) keeps an unfolded BatchNormalization whose running
    variance reaches 9.8e7; converting it gives outputs with cosine 0.50 to the original.
    Those nodes stay fp32 (the cleanup pass folds such BatchNorms into Conv weights,
    which then fit fp16). Unnamed such nodes are named in place (names are how the
    converter blocks nodes), so ``proto`` must be a copy the caller owns.
    """
    big = {i.name for i in proto.graph.initializer if _beyond_fp16(numpy_helper.to_array(i))}
    names = set()
    for i, node in enumerate(proto.graph.node):
        if big.intersection(node.input):
            if not node.name:
                node.name = f"{node.op_type}_{i}_fp32"
            names.add(node.name)
    return names


def _beyond_fp16(a: np.ndarray) -> bool:
    return a.dtype.kind == "f" and bool(np.abs(a[np.isfinite(a)]).max(initial=0.0) > _FP16_MAX)
