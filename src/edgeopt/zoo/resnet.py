"""ResNet-18, -50 and -152 (v1.5, as torchvision defines them).

He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016
(arXiv:1512.03385), Table 1: a 7x7/2 stem convolution and 3x3/2 max pool, four stages of
residual blocks (basic 3x3-3x3 blocks for ResNet-18, 1x1-3x3-1x1 bottlenecks of expansion
4 for ResNet-50/152) at strides 4, 8, 16 and 32, global average pooling and a fully
connected classifier. "v1.5" (torchvision, NVIDIA) puts a bottleneck's stride on its 3x3
convolution rather than on the first 1x1, which costs more MACs (4.09G instead of the
paper's 3.8G for ResNet-50) for about 0.5 points of top-1. Projection shortcuts (1x1
conv + BN, option B of the paper) where the shape changes.

All take (N, 3, 224, 224) float32 RGB (ImageNet normalisation) and return (N, classes)
float32 logits; weights are random (seed the torch RNG first).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from .blocks import conv_bn_act, init_weights


class ResidualBlock(nn.Module):
    """A basic (two 3x3) or bottleneck (1x1, 3x3, 1x1 with 4x expansion) residual block.

    Input (N, in_ch, H, W) float32; output (N, width * expansion, ceil(H/stride),
    ceil(W/stride)), ReLU after the add. The shortcut is the identity, or a strided 1x1
    conv + BN when the shape changes.
    """

    def __init__(self, in_ch: int, width: int, stride: int, bottleneck: bool) -> None:
        super().__init__()
        out_ch = width * (4 if bottleneck else 1)
        if bottleneck:
            self.body = nn.Sequential(
                conv_bn_act(in_ch, width, 1),
                conv_bn_act(width, width, 3, stride),
                conv_bn_act(width, out_ch, 1, act=None),
            )
        else:
            self.body = nn.Sequential(conv_bn_act(in_ch, width, 3, stride), conv_bn_act(width, out_ch, 3, act=None))
        self.shortcut = (conv_bn_act(in_ch, out_ch, 1, stride, act=None)
                         if stride != 1 or in_ch != out_ch else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class ResNet(nn.Module):
    """ResNet with ``blocks[i]`` residual blocks in stage i (widths 64, 128, 256, 512).

    Args:
        blocks: blocks per stage, e.g. (2, 2, 2, 2) for ResNet-18.
        bottleneck: bottleneck blocks (ResNet-50 and deeper) instead of basic ones.
        num_classes: classifier outputs.

    Input (N, 3, H, W) float32, H and W >= 32; output (N, num_classes) float32 logits.
    """

    def __init__(self, blocks: Sequence[int], bottleneck: bool, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = [conv_bn_act(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1)]
        ch = 64
        for stage, n in enumerate(blocks):
            width = 64 * 2 ** stage
            for i in range(n):
                layers.append(ResidualBlock(ch, width, 2 if (i == 0 and stage > 0) else 1, bottleneck))
                ch = width * (4 if bottleneck else 1)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, num_classes))
        init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def resnet18(num_classes: int = 1000) -> ResNet:
    """ResNet-18 (He et al. 2016, arXiv:1512.03385): input (N, 3, 224, 224) float32, output
    (N, num_classes) float32 logits; 11,689,512 params, 1.814G MACs at 224x224 (torchvision)."""
    return ResNet((2, 2, 2, 2), bottleneck=False, num_classes=num_classes)


def resnet50(num_classes: int = 1000) -> ResNet:
    """ResNet-50 v1.5 (He et al. 2016, arXiv:1512.03385): input (N, 3, 224, 224) float32, output
    (N, num_classes) float32 logits; 25,557,032 params, 4.089G MACs at 224x224 (torchvision)."""
    return ResNet((3, 4, 6, 3), bottleneck=True, num_classes=num_classes)


def resnet152(num_classes: int = 1000) -> ResNet:
    """ResNet-152 v1.5 (He et al. 2016, arXiv:1512.03385): input (N, 3, 224, 224) float32, output
    (N, num_classes) float32 logits; 60,192,808 params, 11.514G MACs at 224x224 (torchvision)."""
    return ResNet((3, 8, 36, 3), bottleneck=True, num_classes=num_classes)
