"""Mobile CNNs: MobileNet v1, MobileNetV3 (small, large) and ShuffleNet v2 (x1.0).

All take (N, 3, 224, 224) float32 RGB images with ImageNet normalisation and return
(N, num_classes) float32 logits. Weights are random (seed the torch RNG first). The
MobileNetV2 of the zoo is :func:`edgeopt.zoo.mobilenetv2.imagenet`.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from .blocks import ACTIVATIONS, SqueezeExcite, conv_bn_act, init_weights, make_divisible


def _classifier(in_ch: int, num_classes: int, hidden: int = 0, act: str = "hswish",
                dropout: float = 0.0) -> nn.Sequential:
    """Global average pool, optional hidden layer (MobileNetV3), dropout and a linear layer."""
    layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    if hidden:
        layers += [nn.Linear(in_ch, hidden), ACTIVATIONS[act]()]
        in_ch = hidden
    if dropout:
        layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers, nn.Linear(in_ch, num_classes))


# -- MobileNet v1 -----------------------------------------------------------------------------
# (output channels, stride) of the depthwise separable layers: Howard et al. 2017, Table 1.
MOBILENET_V1_LAYERS: tuple[tuple[int, int], ...] = (
    (64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1),
)


def mobilenet_v1(num_classes: int = 1000, width: float = 1.0) -> nn.Sequential:
    """MobileNet v1: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile Vision
    Applications", 2017 (arXiv:1704.04861), Table 1: a 3x3/2 conv (32), thirteen
    depthwise separable layers (3x3 depthwise + BN + ReLU, 1x1 pointwise + BN + ReLU),
    global average pooling and a fully connected layer. ``width`` is the paper's alpha.
    At width 1.0: 4,231,976 params (TF-slim's ``mobilenet_v1.py`` layer table: 3,185,088
    conv weights, plus BN gamma/beta and the classifier; the paper's Table 8 rounds to
    4.2M) and 569M MACs at 224x224 (Table 8; 568,740,352 counted).
    """
    ch = int(32 * width)
    layers: list[nn.Module] = [conv_bn_act(3, ch, 3, 2)]
    for c, s in MOBILENET_V1_LAYERS:
        out = int(c * width)
        layers += [conv_bn_act(ch, ch, 3, s, groups=ch), conv_bn_act(ch, out, 1)]
        ch = out
    return init_weights(nn.Sequential(nn.Sequential(*layers), _classifier(ch, num_classes)))


# -- MobileNetV3 ------------------------------------------------------------------------------
class V3Block(NamedTuple):
    """One bneck row of Howard et al. 2019, Tables 1 and 2."""

    kernel: int
    expand: int  # "exp size"
    out: int  # "#out"
    se: bool
    act: str  # "relu" (RE) or "hswish" (HS)
    stride: int


_R, _H = "relu", "hswish"
MOBILENET_V3_LARGE: tuple[V3Block, ...] = (  # Table 1
    V3Block(3, 16, 16, False, _R, 1), V3Block(3, 64, 24, False, _R, 2), V3Block(3, 72, 24, False, _R, 1),
    V3Block(5, 72, 40, True, _R, 2), V3Block(5, 120, 40, True, _R, 1), V3Block(5, 120, 40, True, _R, 1),
    V3Block(3, 240, 80, False, _H, 2), V3Block(3, 200, 80, False, _H, 1), V3Block(3, 184, 80, False, _H, 1),
    V3Block(3, 184, 80, False, _H, 1), V3Block(3, 480, 112, True, _H, 1), V3Block(3, 672, 112, True, _H, 1),
    V3Block(5, 672, 160, True, _H, 2), V3Block(5, 960, 160, True, _H, 1), V3Block(5, 960, 160, True, _H, 1),
)
MOBILENET_V3_SMALL: tuple[V3Block, ...] = (  # Table 2
    V3Block(3, 16, 16, True, _R, 2), V3Block(3, 72, 24, False, _R, 2), V3Block(3, 88, 24, False, _R, 1),
    V3Block(5, 96, 40, True, _H, 2), V3Block(5, 240, 40, True, _H, 1), V3Block(5, 240, 40, True, _H, 1),
    V3Block(5, 120, 48, True, _H, 1), V3Block(5, 144, 48, True, _H, 1), V3Block(5, 288, 96, True, _H, 2),
    V3Block(5, 576, 96, True, _H, 1), V3Block(5, 576, 96, True, _H, 1),
)


class InvertedResidualV3(nn.Module):
    """The MobileNetV3 bneck: 1x1 expand, kxk depthwise, optional SE, 1x1 linear projection.

    Input (N, in_ch, H, W) float32; output (N, spec.out, ceil(H/stride), ceil(W/stride)).
    The expansion is omitted when ``spec.expand == in_ch``; SE squeezes to a quarter of the
    expanded channels (rounded to 8); the input is added when the shapes match.
    """

    def __init__(self, in_ch: int, spec: V3Block) -> None:
        super().__init__()
        e = spec.expand
        layers: list[nn.Module] = []
        if e != in_ch:
            layers.append(conv_bn_act(in_ch, e, 1, act=spec.act, bn_eps=1e-3))
        layers.append(conv_bn_act(e, e, spec.kernel, spec.stride, groups=e, act=spec.act, bn_eps=1e-3))
        if spec.se:
            layers.append(SqueezeExcite(e, make_divisible(e // 4)))
        layers.append(conv_bn_act(e, spec.out, 1, act=None, bn_eps=1e-3))
        self.body = nn.Sequential(*layers)
        self.residual = spec.stride == 1 and in_ch == spec.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return x + out if self.residual else out


def _mobilenet_v3(blocks: tuple[V3Block, ...], last: int, num_classes: int) -> nn.Sequential:
    layers: list[nn.Module] = [conv_bn_act(3, 16, 3, 2, act="hswish", bn_eps=1e-3)]
    ch = 16
    for spec in blocks:
        layers.append(InvertedResidualV3(ch, spec))
        ch = spec.out
    layers.append(conv_bn_act(ch, 6 * ch, 1, act="hswish", bn_eps=1e-3))
    head = _classifier(6 * ch, num_classes, hidden=last, dropout=0.2)
    return init_weights(nn.Sequential(nn.Sequential(*layers), head))


def mobilenet_v3_large(num_classes: int = 1000) -> nn.Sequential:
    """MobileNetV3-Large 1.0: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Howard et al., "Searching for MobileNetV3", ICCV 2019 (arXiv:1905.02244), Table 1:
    a 3x3/2 h-swish stem (16), fifteen bneck blocks (ReLU or h-swish, some with SE), a 1x1
    conv to 960 (h-swish), global average pooling, a 1280-unit h-swish layer without BN
    and the classifier. 5,483,032 params and 217M MACs at 224x224 (torchvision; the
    paper's Table 3 gives 5.4M and 219M).
    """
    return _mobilenet_v3(MOBILENET_V3_LARGE, 1280, num_classes)


def mobilenet_v3_small(num_classes: int = 1000) -> nn.Sequential:
    """MobileNetV3-Small 1.0: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Howard et al. 2019 (arXiv:1905.02244), Table 2: as :func:`mobilenet_v3_large` with
    eleven blocks, a 1x1 conv to 576 and a 1024-unit hidden layer. 2,542,856 params and
    57M MACs at 224x224 (torchvision; the paper's Table 3 gives 2.5M and 56M).
    """
    return _mobilenet_v3(MOBILENET_V3_SMALL, 1024, num_classes)


# -- ShuffleNet v2 ----------------------------------------------------------------------------
def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups (Zhang et al. 2018, arXiv:1707.01083,
    section 3.1): (N, g*c, H, W) -> (N, c*g, H, W) float32, same shape."""
    n, ch, h, w = x.shape
    return x.view(n, groups, ch // groups, h, w).transpose(1, 2).reshape(n, ch, h, w)


class ShuffleUnit(nn.Module):
    """The ShuffleNet v2 unit (Ma et al. 2018, Figure 3 c and d).

    Stride 1: split the channels in half, run one half through 1x1 -> 3x3 depthwise ->
    1x1 (BN, ReLU after the 1x1s), concatenate with the untouched half, shuffle. Stride 2:
    both branches see the whole input (the left one 3x3/2 depthwise -> 1x1), doubling the
    channels. Input (N, in_ch, H, W) float32; output (N, out_ch, ceil(H/s), ceil(W/s)).

    Raises:
        ValueError: ``stride == 1`` with ``in_ch != out_ch``.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        if stride == 1 and in_ch != out_ch:
            raise ValueError(f"a stride-1 unit keeps its channels: {in_ch} != {out_ch}")
        half = out_ch // 2
        self.stride = stride
        self.left = (nn.Sequential(conv_bn_act(in_ch, in_ch, 3, stride, groups=in_ch, act=None),
                                   conv_bn_act(in_ch, half, 1))
                     if stride > 1 else None)
        right_in = in_ch if stride > 1 else half
        self.right = nn.Sequential(
            conv_bn_act(right_in, half, 1),
            conv_bn_act(half, half, 3, stride, groups=half, act=None),
            conv_bn_act(half, half, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.left is None:
            a, b = x.chunk(2, dim=1)
            out = torch.cat((a, self.right(b)), dim=1)
        else:
            out = torch.cat((self.left(x), self.right(x)), dim=1)
        return channel_shuffle(out, 2)


def shufflenet_v2(num_classes: int = 1000, stage_channels: tuple[int, ...] = (116, 232, 464),
                  repeats: tuple[int, ...] = (4, 8, 4), last: int = 1024) -> nn.Sequential:
    """ShuffleNet v2 1x: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Ma, Zhang, Zheng & Sun, "ShuffleNet V2: Practical Guidelines for Efficient CNN
    Architecture Design", ECCV 2018 (arXiv:1807.11164), Table 5: 3x3/2 conv (24), 3x3/2
    max pool, three stages of shuffle units (116, 232, 464 channels; 4, 8, 4 units, the
    first of each stride 2), 1x1 conv (1024), global average pooling, fully connected.
    2,278,604 params (torchvision) and 145M MACs (the paper's Table 5: 146M "FLOPs", which
    are multiply-adds).
    """
    layers: list[nn.Module] = [conv_bn_act(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
    ch = 24
    for out, n in zip(stage_channels, repeats):
        layers += [ShuffleUnit(ch if i == 0 else out, out, 2 if i == 0 else 1) for i in range(n)]
        ch = out
    layers.append(conv_bn_act(ch, last, 1))
    return init_weights(nn.Sequential(nn.Sequential(*layers), _classifier(last, num_classes)))
