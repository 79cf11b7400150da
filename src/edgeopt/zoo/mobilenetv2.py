"""MobileNetV2 built from shared blocks: the ImageNet network and small variants of it.

Architecture from Sandler et al., "MobileNetV2: Inverted Residuals and Linear
Bottlenecks", CVPR 2018 (arXiv:1801.04381), Table 2: a 3x3 stem convolution, a stack of
inverted residual blocks (1x1 expansion by factor t, ReLU6; 3x3 depthwise with stride s,
ReLU6; 1x1 linear projection, no activation; a residual add when s = 1 and the input and
output channels are equal), a 1x1 convolution to ``last_channels``, global average
pooling, dropout and a fully connected classifier. Every convolution is followed by
BatchNorm. Channel counts are scaled by the width multiplier and rounded to a multiple of
8 as in the reference implementation (TensorFlow ``models/research/slim/nets/mobilenet``
``_make_divisible``, also used by torchvision). The block and its layers
(:class:`~edgeopt.zoo.blocks.InvertedResidual`, :func:`~edgeopt.zoo.blocks.conv_bn`,
:func:`~edgeopt.zoo.blocks.make_divisible`) are in :mod:`edgeopt.zoo.blocks`.

:func:`imagenet` is the paper's 224x224 ImageNet network: 3,504,872 params at width 1.0
(torchvision's ``mobilenet_v2`` documents the same count; the paper rounds it to 3.4M)
and about 300M MACs at 224x224. Small variants (e.g. the digits model in
:mod:`edgeopt.zoo.digits`) pass their own block table, stem and head.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .blocks import InvertedResidual, conv_bn, init_weights, make_divisible

# (t expansion factor, c output channels, n repeats, s stride of the first repeat):
# Sandler et al. 2018, Table 2.
IMAGENET_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


class MobileNetV2(nn.Module):
    """MobileNetV2 with a configurable block table, stem, head, input channels and classes.

    Args:
        settings: block table rows (t, c, n, s) as in :data:`IMAGENET_SETTINGS`.
        in_channels: image channels (1 gray, 3 colour).
        num_classes: classifier outputs.
        width: width multiplier applied to every channel count (paper section 6.1).
        stem_channels: channels of the 3x3 stem convolution (before ``width``).
        stem_stride: stride of the stem (2 for ImageNet; 1 for small inputs).
        last_channels: channels of the final 1x1 convolution; scaled by ``width`` only
            when ``width > 1``, as in the paper.
        dropout: dropout probability before the classifier (training only).

    Input (N, in_channels, H, W) float32; output (N, num_classes) float32 logits (no
    softmax). Weights are initialised as in torchvision (Kaiming normal fan-out for
    convolutions, N(0, 0.01) for the classifier) from the global torch RNG.

    Raises:
        ValueError: an empty block table, or a stride other than 1 or 2.
    """

    def __init__(self, settings: Sequence[tuple[int, int, int, int]] = IMAGENET_SETTINGS, *,
                 in_channels: int = 3, num_classes: int = 1000, width: float = 1.0,
                 stem_channels: int = 32, stem_stride: int = 2, last_channels: int = 1280,
                 dropout: float = 0.2) -> None:
        super().__init__()
        if not settings:
            raise ValueError("settings must have at least one (t, c, n, s) row")
        ch = make_divisible(stem_channels * width)
        layers: list[nn.Module] = [conv_bn(in_channels, ch, 3, stem_stride)]
        for t, c, n, s in settings:
            out_ch = make_divisible(c * width)
            for i in range(n):
                layers.append(InvertedResidual(ch, out_ch, s if i == 0 else 1, t))
                ch = out_ch
        head = make_divisible(last_channels * max(1.0, width))
        layers.append(conv_bn(ch, head, 1))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(dropout), nn.Linear(head, num_classes))
        # Kaiming's default (leaky_relu, a=0) and the ReLU gain are the same sqrt(2): the
        # weights are those this class drew with its own copy of the loop.
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)))


def imagenet(width: float = 1.0, num_classes: int = 1000) -> MobileNetV2:
    """The paper's ImageNet MobileNetV2 (input (N, 3, 224, 224), RGB); random weights.

    3,504,872 params and about 300M MACs at width 1.0 and 224x224.
    """
    return MobileNetV2(IMAGENET_SETTINGS, in_channels=3, num_classes=num_classes, width=width)
