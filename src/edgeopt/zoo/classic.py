"""The plain CNNs: AlexNet, VGG-16 and SqueezeNet 1.1, as torchvision defines them.

All take (N, 3, 224, 224) float32 RGB images normalised with the ImageNet mean and std
and return (N, num_classes) float32 logits (no softmax). Weights are random
(:func:`~edgeopt.zoo.blocks.init_weights`); seed the torch RNG for reproducible ones.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import Concat, conv_bn_act, init_weights

# VGG-16, configuration "D" of Simonyan & Zisserman 2014, Table 1: output channels of the
# 3x3 convolutions, "M" a 2x2 max pool.
VGG16_CFG: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M",
)


def _mlp_head(in_features: int, num_classes: int, hidden: int = 4096, dropout: float = 0.5) -> nn.Sequential:
    """The two 4096-unit fully connected layers (ReLU, dropout) and the classifier of
    AlexNet and VGG: input (N, in_features), output (N, num_classes)."""
    return nn.Sequential(
        nn.Flatten(),
        nn.Dropout(dropout), nn.Linear(in_features, hidden), nn.ReLU(inplace=True),
        nn.Dropout(dropout), nn.Linear(hidden, hidden), nn.ReLU(inplace=True),
        nn.Linear(hidden, num_classes),
    )


def alexnet(num_classes: int = 1000) -> nn.Sequential:
    """AlexNet as in torchvision: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional
    Neural Networks", NeurIPS 2012, in the single-tower form of Krizhevsky, "One weird
    trick for parallelizing convolutional neural networks", 2014 (arXiv:1404.5997):
    conv 11x11/4 (64), 5x5 (192), 3x3 (384, 256, 256), three 3x3/2 max pools, an
    adaptive average pool to 6x6 (so 224x224 inputs work; the 2012 paper used 227x227
    and grouped convolutions), and three fully connected layers. 61,100,840 params and
    714M MACs at 224x224 (torchvision's documented figures).
    """
    features = nn.Sequential(
        conv_bn_act(3, 64, 11, 4, padding=2, bn=False), nn.MaxPool2d(3, 2),
        conv_bn_act(64, 192, 5, bn=False), nn.MaxPool2d(3, 2),
        conv_bn_act(192, 384, 3, bn=False),
        conv_bn_act(384, 256, 3, bn=False),
        conv_bn_act(256, 256, 3, bn=False), nn.MaxPool2d(3, 2),
        nn.AdaptiveAvgPool2d(6),
    )
    return init_weights(nn.Sequential(features, _mlp_head(256 * 6 * 6, num_classes)))


def vgg_layers(cfg: tuple[int | str, ...] = VGG16_CFG) -> list[nn.Module]:
    """The convolutional layers of a VGG configuration: 3x3 conv (+bias) + ReLU per int,
    2x2/2 max pool per "M". Input (N, 3, H, W); output (N, last channels, H/32, W/32) for D."""
    layers: list[nn.Module] = []
    ch = 3
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers.append(conv_bn_act(ch, int(v), 3, bn=False))
            ch = int(v)
    return layers


def vgg16(num_classes: int = 1000) -> nn.Sequential:
    """VGG-16 (configuration D): input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image
    Recognition", ICLR 2015 (arXiv:1409.1556), Table 1 column D: thirteen 3x3
    convolutions with ReLU in five stages separated by 2x2 max pools, then three fully
    connected layers (4096, 4096, classes). 138,357,544 params, 15.47G MACs at 224x224
    (torchvision; the paper's Table 2 gives 138M params).
    """
    # torchvision's adaptive pool to 7x7: any input of at least 32x32 works.
    features = nn.Sequential(*vgg_layers(), nn.AdaptiveAvgPool2d(7))
    return init_weights(nn.Sequential(features, _mlp_head(512 * 7 * 7, num_classes)))


class Fire(nn.Module):
    """The SqueezeNet fire module: 1x1 squeeze (ReLU), then 1x1 and 3x3 expand (ReLU) concatenated.

    Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
    <0.5MB model size", 2016 (arXiv:1602.07360), section 3.2. Input (N, in_ch, H, W)
    float32; output (N, expand1x1 + expand3x3, H, W).
    """

    def __init__(self, in_ch: int, squeeze: int, expand1x1: int, expand3x3: int) -> None:
        super().__init__()
        self.squeeze = conv_bn_act(in_ch, squeeze, 1, bn=False)
        self.expand = Concat(conv_bn_act(squeeze, expand1x1, 1, bn=False),
                             conv_bn_act(squeeze, expand3x3, 3, bn=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.expand(self.squeeze(x))


def squeezenet_features() -> nn.Sequential:
    """SqueezeNet 1.1's convolutional trunk (conv1 to fire9): input (N, 3, H, W), output
    (N, 512, H/16, W/16) roughly (3x3/2 ceil-mode pools as in the reference Caffe model).

    Index 6 (fire5, 256 channels, stride 8) is the last layer before the third pool.
    """
    pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)
    return nn.Sequential(
        conv_bn_act(3, 64, 3, 2, padding=0, bn=False), pool(),
        Fire(64, 16, 64, 64), Fire(128, 16, 64, 64), pool(),
        Fire(128, 32, 128, 128), Fire(256, 32, 128, 128), pool(),
        Fire(256, 48, 192, 192), Fire(384, 48, 192, 192),
        Fire(384, 64, 256, 256), Fire(512, 64, 256, 256),
    )


def squeezenet1_1(num_classes: int = 1000) -> nn.Sequential:
    """SqueezeNet 1.1: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Iandola et al. 2016 (arXiv:1602.07360); version 1.1 is from the authors' repository
    (github.com/forresti/SqueezeNet, "2.4x less computation than 1.0"): a 3x3/2 conv1 of
    64 channels, the fire modules of :func:`squeezenet_features`, then dropout, a 1x1
    conv to the classes with ReLU and global average pooling. 1,235,496 params and 349M
    MACs at 224x224 (torchvision's documented figures).
    """
    head = nn.Sequential(nn.Dropout(0.5), conv_bn_act(512, num_classes, 1, bn=False),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten())
    return init_weights(nn.Sequential(squeezenet_features(), head))
