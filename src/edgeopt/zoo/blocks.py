"""Building blocks shared by the zoo architectures (PyTorch).

Every block takes and returns float32 NCHW tensors. This file is part of the cache key
of the trained digits weights (:mod:`edgeopt.zoo.digits`): editing it retrains them once.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "ACTIVATIONS", "Concat", "InvertedResidual", "SqueezeExcite", "calibrate_batchnorm", "conv_bn",
    "conv_bn_act", "init_weights", "make_divisible",
]

# The activations of the zoo, by the short names the architecture tables use.
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": lambda: nn.ReLU(inplace=True),
    "relu6": lambda: nn.ReLU6(inplace=True),
    "hswish": lambda: nn.Hardswish(inplace=True),  # Howard et al. 2019, eq. 2
    "leaky": lambda: nn.LeakyReLU(0.1, inplace=True),  # darknet's "leaky" slope
}

Size2 = int | tuple[int, int]


def _pair(v: Size2) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def conv_bn_act(in_ch: int, out_ch: int, kernel: Size2 = 1, stride: int = 1, *,
                padding: Size2 | None = None, groups: int = 1, dilation: int = 1,
                act: str | None = "relu", bn: bool = True, bn_eps: float = 1e-5) -> nn.Sequential:
    """Conv2d (+ BatchNorm2d) (+ activation): the layer every CNN here is made of.

    Args:
        in_ch, out_ch: channels of the input and output.
        kernel: kernel size, an int or (height, width) (Inception v3 uses 1x7 and 7x1).
        stride: stride in both directions.
        padding: zero padding per side; None gives "same" padding for odd kernels at
            stride 1, i.e. ``dilation * (k - 1) // 2`` per dimension.
        groups: ``groups == in_ch == out_ch`` makes a depthwise convolution.
        act: a key of :data:`ACTIVATIONS`, or None for a linear layer.
        bn: with BatchNorm; the convolution then has no bias (BN's beta replaces it),
            without BN the convolution has a bias.
        bn_eps: BatchNorm epsilon (Inception v3 and MobileNetV3 use 1e-3).

    Returns:
        ``nn.Sequential(conv[, bn][, act])``: input (N, in_ch, H, W) float32, output
        (N, out_ch, H', W') float32 with H' = floor((H + 2p - d(k-1) - 1) / stride) + 1.

    Raises:
        KeyError: ``act`` is not a key of :data:`ACTIVATIONS`.
    """
    kh, kw = _pair(kernel)
    pad = _pair(padding) if padding is not None else (dilation * (kh - 1) // 2, dilation * (kw - 1) // 2)
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, (kh, kw), stride, pad, dilation=dilation, groups=groups, bias=not bn)
    ]
    if bn:
        layers.append(nn.BatchNorm2d(out_ch, eps=bn_eps))
    if act is not None:
        layers.append(ACTIVATIONS[act]())
    return nn.Sequential(*layers)


def make_divisible(value: float, divisor: int = 8) -> int:
    """``value`` rounded to the nearest multiple of ``divisor``, never below 90% of it.

    Source: TensorFlow slim ``mobilenet.py`` ``_make_divisible`` (rounding channel
    counts keeps the multiples of 8 that SIMD kernels like).
    """
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


def conv_bn(in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1,
            relu6: bool = True) -> nn.Sequential:
    """MobileNetV2's layer: Conv2d (no bias, "same" padding for odd kernels) + BatchNorm2d
    (+ ReLU6), i.e. :func:`conv_bn_act` with ``act="relu6"`` (None without ``relu6``).

    ``groups == in_ch == out_ch`` makes it a depthwise convolution. Input (N, in_ch, H, W)
    float32, output (N, out_ch, ceil(H / stride), ceil(W / stride)) for odd kernels.
    """
    return conv_bn_act(in_ch, out_ch, kernel, stride, groups=groups, act="relu6" if relu6 else None)


class InvertedResidual(nn.Module):
    """The MobileNetV2 block: expand 1x1 (ReLU6), depthwise 3x3 (ReLU6), project 1x1 (linear).

    Input (N, in_ch, H, W) float32; output (N, out_ch, ceil(H/stride), ceil(W/stride)).
    The expansion layer is omitted when ``expand_ratio == 1`` (as in the paper's first
    block); the input is added to the output when ``stride == 1`` and ``in_ch == out_ch``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, not {stride}")
        hidden = int(round(in_ch * expand_ratio))
        self.use_residual = stride == 1 and in_ch == out_ch
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(conv_bn(in_ch, hidden, 1))
        layers += [
            conv_bn(hidden, hidden, 3, stride, groups=hidden),
            conv_bn(hidden, out_ch, 1, relu6=False),  # linear bottleneck
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_residual else out


class Concat(nn.Module):
    """Runs each branch on the same input and concatenates the outputs along channels.

    The Inception module (Szegedy et al. 2015, arXiv:1409.4842) and the SqueezeNet fire
    module's expand layer are this pattern. Input (N, C, H, W) float32; output (N, sum of
    the branches' channels, H', W'): every branch must give the same H' and W'.

    Raises:
        RuntimeError (at forward): the branches' spatial sizes differ.
    """

    def __init__(self, *branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleList(branches)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([b(x) for b in self.branches], dim=1)


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation: rescale each channel by a gate computed from its global mean.

    Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018 (arXiv:1709.01507), in the
    MobileNetV3 form (Howard et al. 2019, arXiv:1905.02244, section 5.3): global average
    pool, 1x1 conv to ``squeeze_ch`` (+bias) and ReLU, 1x1 conv back (+bias), hard
    sigmoid gate. Input and output (N, ch, H, W) float32.
    """

    def __init__(self, ch: int, squeeze_ch: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(ch, squeeze_ch, 1)
        self.fc2 = nn.Conv2d(squeeze_ch, ch, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = torch.relu(self.fc1(nn.functional.adaptive_avg_pool2d(x, 1)))
        return x * nn.functional.hardsigmoid(self.fc2(s))


def init_weights(module: nn.Module) -> nn.Module:
    """Random weights as torchvision initialises its classifiers; returns ``module``.

    Conv2d: Kaiming normal (fan-out, ReLU gain), zero bias; BatchNorm: gamma 1, beta 0;
    Linear: N(0, 0.01), zero bias. Draws from the global torch RNG, so seed it first for
    reproducible weights (the zoo factories use seed 0).
    """
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
            nn.init.zeros_(m.bias)
    return module


def calibrate_batchnorm(module: nn.Module, shape: tuple[int, ...]) -> nn.Module:
    """Set every BatchNorm's running statistics to those of one N(0, 1) batch; return
    ``module`` in eval mode.

    A freshly initialised network's BatchNorms hold mean 0 and variance 1, so in eval mode
    they do not normalise and the activations drift with depth: at seed 0 the logits of a
    random MobileNet v1 are ~1e-18 and those of a ResNet-152 ~1e8, out of float16 range
    and useless for comparing an optimised model with its original. After this one
    train-mode pass (the input standing in for ImageNet-normalised images), each BN
    output has about zero mean and unit variance, as in a trained network. Draws the
    input from the global torch RNG. Dropout is active during the pass, but no BN
    follows a dropout here.

    Args:
        module: the network; its forward takes one float32 tensor of ``shape``.
        shape: (N, C, H, W) of the calibration batch; N * H * W of every BN's input must
            exceed 1 (torch refuses batch statistics of a single value).
    """
    norms = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if norms:
        momenta = [m.momentum for m in norms]
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average: after one batch, that batch's statistics
        module.train()
        with torch.no_grad():
            module(torch.randn(shape))
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
    return module.eval()
