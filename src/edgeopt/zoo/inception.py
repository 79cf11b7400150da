"""Inception-BN (BN-Inception) and Inception v3.

Both are stacks of Inception modules (Szegedy et al., "Going Deeper with Convolutions",
CVPR 2015, arXiv:1409.4842): parallel branches of 1x1, factorised larger convolutions and
pooling, concatenated along channels (:class:`~edgeopt.zoo.blocks.Concat`). Every
convolution is conv + BatchNorm + ReLU. Inputs are float32 RGB images with ImageNet
normalisation; outputs (N, num_classes) float32 logits. Weights are random (seed the
torch RNG first).
"""

from __future__ import annotations

from typing import NamedTuple

from torch import nn

from .blocks import Concat, conv_bn_act, init_weights


# -- Inception-BN ---------------------------------------------------------------------------
class BNInceptionSpec(NamedTuple):
    """One row of Ioffe & Szegedy 2015, Figure 5 (channels; 0 = branch absent)."""

    n1x1: int
    n3x3_reduce: int
    n3x3: int
    double_reduce: int
    double: int
    pool: str  # "avg" or "max"
    proj: int  # 1x1 after the pool; 0 = "pass through" (the pooled input itself)
    stride: int = 1


# Ioffe & Szegedy 2015, Figure 5 (inception 3a..5b). The figure prints 576 as the depth
# of 4c and 4d, but its own branch widths give 608 (160+160+160+128, 96+192+192+128) and
# 1056 for 4e; the reference Caffe model (and every port of it) follows the branch widths.
BN_INCEPTION_MODULES: tuple[BNInceptionSpec, ...] = (
    BNInceptionSpec(64, 64, 64, 64, 96, "avg", 32),  # 3a -> 256
    BNInceptionSpec(64, 64, 96, 64, 96, "avg", 64),  # 3b -> 320
    BNInceptionSpec(0, 128, 160, 64, 96, "max", 0, 2),  # 3c -> 576, 14x14
    BNInceptionSpec(224, 64, 96, 96, 128, "avg", 128),  # 4a -> 576
    BNInceptionSpec(192, 96, 128, 96, 128, "avg", 128),  # 4b -> 576
    BNInceptionSpec(160, 128, 160, 128, 160, "avg", 128),  # 4c -> 608
    BNInceptionSpec(96, 128, 192, 160, 192, "avg", 128),  # 4d -> 608
    BNInceptionSpec(0, 128, 192, 192, 256, "max", 0, 2),  # 4e -> 1056, 7x7
    BNInceptionSpec(352, 192, 320, 160, 224, "avg", 128),  # 5a -> 1024
    BNInceptionSpec(352, 192, 320, 192, 224, "max", 128),  # 5b -> 1024
)


def bn_inception_module(in_ch: int, s: BNInceptionSpec) -> tuple[Concat, int]:
    """One Inception-BN module and its output channels.

    Branches: 1x1; 1x1 -> 3x3; 1x1 -> 3x3 -> 3x3 (the paper's replacement of the 5x5);
    3x3 pool (-> 1x1 projection). With ``stride == 2`` the last convolution of each
    3x3 branch and the max pool are strided and the pooled input is passed through.
    Input (N, in_ch, H, W); output (N, channels, H / stride, W / stride).
    """
    st = s.stride
    branches: list[nn.Module] = []
    if s.n1x1:
        branches.append(conv_bn_act(in_ch, s.n1x1, 1))
    branches.append(nn.Sequential(conv_bn_act(in_ch, s.n3x3_reduce, 1), conv_bn_act(s.n3x3_reduce, s.n3x3, 3, st)))
    branches.append(nn.Sequential(conv_bn_act(in_ch, s.double_reduce, 1), conv_bn_act(s.double_reduce, s.double, 3),
                                  conv_bn_act(s.double, s.double, 3, st)))
    # Stride-2 modules pool in Caffe's ceil mode so that 28 -> 14 and 14 -> 7, as the
    # strided 3x3 convolutions (padding 1) do.
    pool = (nn.AvgPool2d(3, 1, 1) if s.pool == "avg"
            else nn.MaxPool2d(3, st, 1 if st == 1 else 0, ceil_mode=st > 1))
    branches.append(nn.Sequential(pool, conv_bn_act(in_ch, s.proj, 1)) if s.proj else pool)
    out = s.n1x1 + s.n3x3 + s.double + (s.proj or in_ch)
    return Concat(*branches), out


def inception_bn(num_classes: int = 1000) -> nn.Sequential:
    """Inception-BN: input (N, 3, 224, 224) float32, output (N, num_classes) float32 logits.

    Ioffe & Szegedy, "Batch Normalization: Accelerating Deep Network Training by Reducing
    Internal Covariate Shift", ICML 2015 (arXiv:1502.03167), section 4.2.1 and Figure 5:
    GoogLeNet with BatchNorm after every convolution, the 5x5 convolutions replaced by
    two 3x3, 28x28 modules 3a-3b, the stride-2 modules 3c and 4e, average or max pooling
    in the pool branch. Stem: 7x7/2 conv (64), 3x3/2 max pool, 1x1 (64) and 3x3 (192)
    conv, 3x3/2 max pool (ceil mode, as the reference Caffe model); head: 7x7 global
    average pool and a fully connected layer. No auxiliary classifiers (training only).

    11,285,224 params and 2.033G MACs at 224x224, counted from the layer table. There is
    no canonical published figure; the closest, OpenVINO Open Model Zoo ``googlenet-v2``
    (the Caffe BN-Inception), lists 11.185M params (0.9% fewer) and 4.058 GFLOPs, i.e.
    2.029G MACs.
    """
    layers: list[nn.Module] = [
        conv_bn_act(3, 64, 7, 2), nn.MaxPool2d(3, 2, ceil_mode=True),
        conv_bn_act(64, 64, 1), conv_bn_act(64, 192, 3), nn.MaxPool2d(3, 2, ceil_mode=True),
    ]
    ch = 192
    for spec in BN_INCEPTION_MODULES:
        module, ch = bn_inception_module(ch, spec)
        layers.append(module)
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(ch, num_classes))
    return init_weights(nn.Sequential(nn.Sequential(*layers), head))


# -- Inception v3 ---------------------------------------------------------------------------
def _c(in_ch: int, out_ch: int, kernel: int | tuple[int, int], stride: int = 1,
       padding: int | tuple[int, int] | None = None) -> nn.Sequential:
    # Inception v3's BatchNorm epsilon is 1e-3 (TF-slim, kept by torchvision).
    return conv_bn_act(in_ch, out_ch, kernel, stride, padding=padding, bn_eps=1e-3)


def _avg_proj(in_ch: int, out_ch: int) -> nn.Sequential:
    return nn.Sequential(nn.AvgPool2d(3, 1, 1), _c(in_ch, out_ch, 1))


def _seven(in_ch: int, mid: int, out_ch: int, pairs: int) -> list[nn.Module]:
    """1x1 to ``mid``, then ``pairs`` 7x7s factorised as 1x7 and 7x1 (Figure 6), the last to ``out_ch``.

    torchvision starts the double branch with 7x1 instead: same params and MACs.
    """
    layers: list[nn.Module] = [_c(in_ch, mid, 1)]
    for i in range(2 * pairs):
        layers.append(_c(mid, out_ch if i == 2 * pairs - 1 else mid, (1, 7) if i % 2 == 0 else (7, 1)))
    return layers


def inception_a(in_ch: int, pool_proj: int) -> Concat:
    """The 35x35 module (Szegedy et al. 2016, Figure 5, with TF-slim's extra 5x5 branch):
    1x1 (64); 1x1 -> 5x5 (48, 64); 1x1 -> 3x3 -> 3x3 (64, 96, 96); avg pool -> 1x1.
    Input (N, in_ch, H, W) float32; output (N, 224 + pool_proj, H, W)."""
    return Concat(
        _c(in_ch, 64, 1),
        nn.Sequential(_c(in_ch, 48, 1), _c(48, 64, 5)),
        nn.Sequential(_c(in_ch, 64, 1), _c(64, 96, 3), _c(96, 96, 3)),
        _avg_proj(in_ch, pool_proj),
    )


def inception_c(in_ch: int, c7: int) -> Concat:
    """The 17x17 module (Figure 6), 7x7 factorised into 1x7 and 7x1 with ``c7`` channels
    inside. Input (N, in_ch, H, W) float32; output (N, 768, H, W)."""
    return Concat(
        _c(in_ch, 192, 1),
        nn.Sequential(*_seven(in_ch, c7, 192, 1)),
        nn.Sequential(*_seven(in_ch, c7, 192, 2)),
        _avg_proj(in_ch, 192),
    )


def _split_1x3_3x1(ch: int) -> Concat:
    return Concat(_c(ch, 384, (1, 3)), _c(ch, 384, (3, 1)))


def inception_e(in_ch: int) -> Concat:
    """The 8x8 module (Figure 7), expanded filter banks (parallel 1x3 and 3x1).
    Input (N, in_ch, H, W) float32; output (N, 2048, H, W)."""
    return Concat(
        _c(in_ch, 320, 1),
        nn.Sequential(_c(in_ch, 384, 1), _split_1x3_3x1(384)),
        nn.Sequential(_c(in_ch, 448, 1), _c(448, 384, 3), _split_1x3_3x1(384)),
        _avg_proj(in_ch, 192),
    )


def inception_v3(num_classes: int = 1000) -> nn.Sequential:
    """Inception v3: input (N, 3, 299, 299) float32, output (N, num_classes) float32 logits.

    Szegedy, Vanhoucke, Ioffe, Shlens & Wojna, "Rethinking the Inception Architecture
    for Computer Vision", CVPR 2016 (arXiv:1512.00567), Table 1, in torchvision's layout
    (Mixed_5b..Mixed_7c of the TF-slim reference). Without the auxiliary classifier,
    which only acts during training: 23,834,568 params (torchvision documents
    27,161,264 with it; timm's ``inception_v3.tv_in1k`` 23.8M without) and 5.713G MACs at
    299x299 (torchvision).
    """
    pool = lambda: nn.MaxPool2d(3, 2)
    reduce_b = Concat(  # 35 -> 17 (Mixed_6a)
        _c(288, 384, 3, 2, 0),
        nn.Sequential(_c(288, 64, 1), _c(64, 96, 3), _c(96, 96, 3, 2, 0)),
        pool(),
    )
    reduce_d = Concat(  # 17 -> 8 (Mixed_7a)
        nn.Sequential(_c(768, 192, 1), _c(192, 320, 3, 2, 0)),
        nn.Sequential(*_seven(768, 192, 192, 1), _c(192, 192, 3, 2, 0)),
        pool(),
    )
    features = nn.Sequential(
        _c(3, 32, 3, 2, 0), _c(32, 32, 3, 1, 0), _c(32, 64, 3), pool(),
        _c(64, 80, 1), _c(80, 192, 3, 1, 0), pool(),
        inception_a(192, 32), inception_a(256, 64), inception_a(288, 64),
        reduce_b,
        inception_c(768, 128), inception_c(768, 160), inception_c(768, 160), inception_c(768, 192),
        reduce_d,
        inception_e(1280), inception_e(2048),
    )
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.5), nn.Linear(2048, num_classes))
    return init_weights(nn.Sequential(features, head))
