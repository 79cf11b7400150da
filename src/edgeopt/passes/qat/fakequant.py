"""Fake-quantizers in a torch module and its export as a QDQ ONNX graph.

Two placements (:data:`~.config.PLACEMENTS`): "inputs", the weighted layers' inputs only
(:mod:`.inputs`, NNCF's placement for OpenVINO), and "outputs", every op's output as
torch.ao places them (below; the layout ONNX Runtime fuses into QLinearConv).

"outputs" is torch.ao's FX graph mode QAT (``prepare_qat_fx``; PyTorch docs, "Quantization-aware
training", FX graph mode) with two choices made for the export:

- BatchNorm is folded into the preceding conv in eval mode first
  (``torch.fx.experimental.optimization.fuse``), so the export has plain Conv nodes that
  ONNX Runtime fuses with their QDQ pairs into QLinearConv (a ConvBn QAT module exports
  Conv -> Div -> Add -> BatchNormalization instead).
- The fake-quantizers are the unfused ``FakeQuantize`` on full 8-bit ranges: the default
  x86 qconfig's ``FusedMovingAvgObsFakeQuantize`` has no ONNX export
  ("aten::fused_moving_avg_obs_fake_quant ... not supported"), and its reduced activation
  range (0..127) exports an extra Clip after each QuantizeLinear/DequantizeLinear pair.

Activations: asymmetric uint8 per tensor, min/max over all calibration images (as ORT's
MinMax calibration; a moving average would let the first batch decide); weights: symmetric int8
per output channel, the scheme ORT's QLinearConv and OpenVINO's int8 convolutions take.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import torch
from torch import nn

from ...convert.modules import fold_batchnorm, run_batches
from .inputs import quantize_inputs

# The weight fake-quantizer keeps its observer on during training (weights move, their
# per-channel ranges follow); activation ranges stay those of the calibration.
_WEIGHT_FQ = "weight_fake_quant"


def _qconfig_mapping():
    from torch.ao.quantization import (FakeQuantize, MinMaxObserver, MovingAveragePerChannelMinMaxObserver, QConfig,
                                       QConfigMapping)

    activation = FakeQuantize.with_args(observer=MinMaxObserver, quant_min=0, quant_max=255,
                                        dtype=torch.quint8, qscheme=torch.per_tensor_affine)
    weight = FakeQuantize.with_args(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128,
                                    quant_max=127, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                    ch_axis=0)
    return QConfigMapping().set_global(QConfig(activation=activation, weight=weight))


def insert_fake_quantizers(module: nn.Module, images: np.ndarray, placement: str = "inputs",
                           batch_size: int = 64) -> nn.Module:
    """A copy of ``module`` with BatchNorm folded, fake-quantizers inserted and calibrated.

    Args:
        module: float32 module taking (N, C, H, W) float32 tensors; not modified.
        images: float32 (N, C, H, W) calibration images; every one runs through the
            observers once (post-training calibration: activation min/max).
        placement: one of :data:`~.config.PLACEMENTS` (see the module docstring).
        batch_size: images per forward pass of the calibration.

    Returns:
        a ``torch.fx.GraphModule`` in eval mode whose activation observers are off (ranges
        frozen at the calibration's) and whose weight observers are on.

    Raises:
        torch.fx's or torch.ao's errors when the module cannot be traced symbolically
        (the pass turns them into a PassError).
    """
    folded = fold_batchnorm(module)
    if placement == "inputs":
        return quantize_inputs(folded, images, batch_size)
    return _prepare_outputs(folded, images, batch_size)


def _prepare_outputs(folded: nn.Module, images: np.ndarray, batch_size: int) -> nn.Module:
    """torch.ao's FX QAT placement on ``folded``, calibrated (see :func:`insert_fake_quantizers`)."""
    from torch.ao.quantization import disable_observer
    from torch.ao.quantization.quantize_fx import prepare_qat_fx

    x = torch.from_numpy(images)
    with warnings.catch_warnings():
        # torch.ao's FX mode is deprecated for torchao's pt2e (pytorch/ao#2259), whose QAT
        # has no TorchScript ONNX export yet; and ops with fixed output ranges (Softmax)
        # stay float under a global qconfig, which is the intent.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="QConfig must specify a FixedQParams")
        prepared = prepare_qat_fx(folded.train(), _qconfig_mapping(), (x[:1],))
    prepared.eval()
    run_batches(prepared, images, batch_size)
    prepared.apply(disable_observer)
    for name, sub in prepared.named_modules():
        if name.endswith(_WEIGHT_FQ):
            sub.enable_observer()
    return prepared


def export_qdq(module: nn.Module, example: np.ndarray, input_name: str, output_name: str) -> onnx.ModelProto:
    """The fake-quantized ``module`` exported as an ONNX graph of QuantizeLinear /
    DequantizeLinear pairs (:func:`edgeopt.model.from_torch`: TorchScript exporter, opset
    17, batch dimension symbolic), its weights stored as int8 initializers behind
    DequantizeLinear (:func:`edgeopt.passes.quantize.weight_fold.fold_weight_quantize`:
    the exporter writes float32 weights and a QuantizeLinear).

    Args:
        module: the output of :func:`insert_fake_quantizers` (trained or not); its
            observers are switched off and it is put in eval mode.
        example: float32 (1, C, H, W) input for the trace.

    Raises:
        ModelLoadError: a module of the graph has no export.
    """
    from torch.ao.quantization import disable_observer

    from ...model import from_torch
    from ..quantize.weight_fold import fold_weight_quantize

    module.apply(disable_observer)
    with warnings.catch_warnings():  # the tracer's notes on fake-quantizers' constant ranges
        warnings.simplefilter("ignore")
        proto = from_torch(module, torch.from_numpy(example), input_name=input_name, output_name=output_name).proto
    return fold_weight_quantize(proto)
