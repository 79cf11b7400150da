"""Single-shot detectors: SSD300-VGG16, SSDLite-MobileNetV2, SqueezeNet-SSD and Tiny-YOLOv2.

Only the networks: they return raw head tensors, without anchor decoding or NMS (those
are cheap, data-dependent post-processing outside the CNN).

* SSD family: a tuple ``(boxes, scores)`` of float32 tensors, boxes (N, A, 4) box
  regressions and scores (N, A, num_classes) class logits (class 0 = background), A the
  anchors over all feature maps in (map, y, x, anchor) order (as torchvision's SSD).
* Tiny-YOLOv2: the final (N, anchors * (5 + classes), H/32, W/32) convolution map.

Inputs are (N, 3, H, W) float32 RGB with ImageNet normalisation. Weights are random
(seed the torch RNG first).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from .blocks import conv_bn_act, init_weights
from .classic import squeezenet_features, vgg_layers
from .mobilenetv2 import imagenet as mobilenetv2_imagenet

Predictor = Callable[[int, int], nn.Module]


def conv3x3_predictor(in_ch: int, out_ch: int) -> nn.Module:
    """SSD's predictor: a 3x3 conv with bias (Liu et al. 2016, section 2.1)."""
    return nn.Conv2d(in_ch, out_ch, 3, padding=1)


def separable_predictor(in_ch: int, out_ch: int) -> nn.Module:
    """SSDLite's predictor: 3x3 depthwise + BN + ReLU6, then a 1x1 conv with bias
    (Sandler et al. 2018, section 6.2)."""
    return nn.Sequential(conv_bn_act(in_ch, in_ch, 3, groups=in_ch, act="relu6"), nn.Conv2d(in_ch, out_ch, 1))


class SSDHead(nn.Module):
    """Box and class predictors on each feature map, flattened and concatenated over maps.

    Args:
        in_channels: channels of each feature map.
        anchors: anchors per location of each feature map.
        num_classes: classes including the background.
        predictor: builds one predictor, (in_ch, out_ch) -> module keeping H and W.

    Input: a list of (N, in_channels[i], H_i, W_i) float32 maps. Output (boxes
    (N, A, 4), scores (N, A, num_classes)) with A = sum of anchors[i] * H_i * W_i.

    Raises:
        ValueError: ``in_channels`` and ``anchors`` differ in length.
    """

    def __init__(self, in_channels: Sequence[int], anchors: Sequence[int], num_classes: int,
                 predictor: Predictor = conv3x3_predictor) -> None:
        super().__init__()
        if len(in_channels) != len(anchors):
            raise ValueError(f"{len(in_channels)} feature maps but {len(anchors)} anchor counts")
        self.num_classes = num_classes
        self.box = nn.ModuleList(predictor(c, a * 4) for c, a in zip(in_channels, anchors))
        self.cls = nn.ModuleList(predictor(c, a * num_classes) for c, a in zip(in_channels, anchors))

    @staticmethod
    def _flat(x: torch.Tensor, k: int) -> torch.Tensor:
        # (N, A*k, H, W) -> (N, H*W*A, k): channels hold (anchor, k), so NHWC then split.
        return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, k)

    def forward(self, feats: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        boxes = torch.cat([self._flat(p(f), 4) for p, f in zip(self.box, feats)], dim=1)
        scores = torch.cat([self._flat(p(f), self.num_classes) for p, f in zip(self.cls, feats)], dim=1)
        return boxes, scores


class SSD(nn.Module):
    """A feature pyramid (``stages`` run in sequence, each output a feature map) + SSDHead.

    ``taps`` (optional, one per stage) transform a map on its way to the head only, e.g.
    SSD300's L2Norm of conv4_3 (the next stage reads the map unnormalised).

    Input (N, 3, H, W) float32; output (boxes (N, A, 4), scores (N, A, classes)).
    """

    def __init__(self, stages: Sequence[nn.Module], head: SSDHead,
                 taps: Sequence[nn.Module] | None = None) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.taps = nn.ModuleList(taps or [nn.Identity() for _ in stages])
        self.head = head

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = []
        for stage, tap in zip(self.stages, self.taps):
            x = stage(x)
            feats.append(tap(x))
        return self.head(feats)


def _extras(in_ch: int, rows: Sequence[tuple[int, int, int, int]], separable: bool = False) -> list[nn.Module]:
    """SSD's extra feature layers, one per row (reduce, out, stride, padding): a 1x1
    conv to ``reduce`` then a 3x3 conv (SSD: conv + ReLU with bias) or, ``separable``,
    a 3x3 depthwise + 1x1 (SSDLite: BN + ReLU6 after each)."""
    layers: list[nn.Module] = []
    for mid, out, stride, pad in rows:
        if separable:
            layers.append(nn.Sequential(
                conv_bn_act(in_ch, mid, 1, act="relu6"),
                conv_bn_act(mid, mid, 3, stride, padding=pad, groups=mid, act="relu6"),
                conv_bn_act(mid, out, 1, act="relu6"),
            ))
        else:
            layers.append(nn.Sequential(conv_bn_act(in_ch, mid, 1, bn=False),
                                        conv_bn_act(mid, out, 3, stride, padding=pad, bn=False)))
        in_ch = out
    return layers


class L2Norm(nn.Module):
    """Per-location L2 normalisation over channels with a learned per-channel scale (init
    20), applied to conv4_3 in SSD (Liu et al. 2016, section 3.1; Liu et al., ParseNet,
    arXiv:1506.04579). Input and output (N, channels, H, W) float32."""

    def __init__(self, channels: int, scale: float = 20.0) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.weight.view(1, -1, 1, 1) * nn.functional.normalize(x, dim=1)


# (reduce, out, stride, padding) of conv8_2..conv11_2 of SSD300 (Liu et al. 2016, Fig. 2).
SSD300_EXTRAS = ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 1, 0), (128, 256, 1, 0))
SSD_ANCHORS = (4, 6, 6, 6, 4, 4)


def ssd300_vgg16(num_classes: int = 91) -> SSD:
    """SSD300 with a VGG-16 backbone: input (N, 3, 300, 300) float32, output (boxes
    (N, 8732, 4), scores (N, 8732, num_classes)) float32.

    Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016 (arXiv:1512.02325),
    Figure 2, in torchvision's form: VGG-16 to conv5_3 with pool3 in ceil mode (38x38
    conv4_3, L2-normalised), pool5 as 3x3/1, fc6 as a 3x3 conv of dilation 6 (1024) and
    fc7 as 1x1 (1024), the extra layers conv8_2..conv11_2, and 3x3 predictors with 4, 6,
    6, 6, 4, 4 anchors per location on the 38, 19, 10, 5, 3, 1 maps. With COCO's 91
    classes (torchvision's label space, background included): 35,641,826 params and
    34.858G MACs (torchvision's documented figures).
    """
    vgg = vgg_layers()
    pools = [i for i, m in enumerate(vgg) if isinstance(m, nn.MaxPool2d)]
    vgg[pools[2]] = nn.MaxPool2d(2, 2, ceil_mode=True)  # 75 -> 38, the paper's conv4_3 size
    fc = nn.Sequential(
        nn.MaxPool2d(3, 1, 1),
        conv_bn_act(512, 1024, 3, padding=6, dilation=6, bn=False),  # fc6, atrous
        conv_bn_act(1024, 1024, 1, bn=False),  # fc7
    )
    stages = [nn.Sequential(*vgg[:pools[3]]), nn.Sequential(*vgg[pools[3]:pools[4]], fc),
              *_extras(1024, SSD300_EXTRAS)]
    taps = [L2Norm(512), *(nn.Identity() for _ in stages[1:])]
    head = SSDHead((512, 1024, 512, 256, 256, 256), SSD_ANCHORS, num_classes)
    return init_weights(SSD(stages, head, taps))


def ssdlite_mobilenetv2(num_classes: int = 81) -> SSD:
    """SSDLite with a MobileNetV2 backbone: input (N, 3, 300, 300) float32 (or 320x320),
    output (boxes (N, A, 4), scores (N, A, num_classes)) float32; A = 1917 at 300x300, 2034
    at 320x320.

    Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks", CVPR 2018
    (arXiv:1801.04381), section 6.2, as in the TF object detection API's
    ``ssdlite_mobilenet_v2_coco``: feature maps at the expansion of the first 160-channel
    block (576 channels, stride 16) and at the final 1x1 conv (1280, stride 32), four
    extra layers (1x1 -> 3x3/2 depthwise -> 1x1; 512, 256, 256, 128 channels), separable
    predictors with 3 anchors on the first map and 6 on the others. The paper's Table 6
    gives 4.3M params and 0.8B MACs (COCO, 320x320); its 4.3M fits 81 classes (COCO's 80
    and background): 4,337,013 params here (4.50M with 91) and 789M MACs at 320x320
    (735M at the zoo's default 300x300).
    """
    trunk = mobilenetv2_imagenet().features
    block = trunk[14]  # the first 160-channel block: stride 2, so no residual to split
    stages = [
        nn.Sequential(*trunk[:14], block.conv[0]),
        nn.Sequential(*block.conv[1:], *trunk[15:]),
        *_extras(1280, ((256, 512, 2, 1), (128, 256, 2, 1), (128, 256, 2, 1), (64, 128, 2, 1)), separable=True),
    ]
    head = SSDHead((576, 1280, 512, 256, 256, 128), (3, 6, 6, 6, 6, 6), num_classes, separable_predictor)
    return init_weights(SSD(stages, head))


def squeezenet_ssd(num_classes: int = 21) -> SSD:
    """SqueezeNet-SSD: input (N, 3, 300, 300) float32, output (boxes (N, 8096, 4), scores
    (N, 8096, num_classes)) float32.

    SSD (Liu et al. 2016, arXiv:1512.02325) on the SqueezeNet 1.1 trunk (Iandola et al.
    2016, arXiv:1602.07360). There is no canonical definition; this one takes fire5
    (256 channels, 37x37) and fire9 (512, 18x18) as the first two maps, adds four SSD
    extra layers (1x1 reduce, 3x3 conv: 256 at 9x9, then 128 at 5x5, 3x3 and 1x1) and 3x3
    predictors with 4, 6, 6, 6, 4, 4 anchors. PASCAL VOC's 21 classes (20 and background):
    3,009,006 params and 1.11G MACs at 300x300 (derived from the layer table; no published
    figure).
    """
    trunk = squeezenet_features()
    stages = [
        trunk[:7],
        trunk[7:],
        *_extras(512, ((128, 256, 2, 1), (64, 128, 2, 1), (64, 128, 2, 1), (64, 128, 1, 0))),
    ]
    head = SSDHead((256, 512, 256, 128, 128, 128), SSD_ANCHORS, num_classes)
    return init_weights(SSD(stages, head))


class DarknetPool2x2(nn.Module):
    """Darknet's 2x2 max pool of stride 1: out[i, j] = max of in[i:i+2, j:j+2], ignoring
    positions past the bottom and right edges. (N, C, H, W) float32 -> same shape.

    Padding 1 on every side (pooling ignores padded positions) then dropping the first
    row and column pads only the bottom and right, in two ONNX ops (MaxPool, Slice).
    """

    def __init__(self) -> None:
        super().__init__()
        self.pool = nn.MaxPool2d(2, 1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(x)[:, :, 1:, 1:]


def tiny_yolov2(num_classes: int = 20, anchors: int = 5) -> nn.Sequential:
    """Tiny-YOLOv2 (VOC): input (N, 3, 416, 416) float32, output (N, anchors * (5 + num_classes),
    13, 13) float32 raw predictions (x, y, w, h, objectness, class logits per anchor).

    Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017 (arXiv:1612.08242);
    layers from darknet's ``cfg/yolov2-tiny-voc.cfg``: six 3x3 conv (16..512 channels,
    BN, leaky ReLU 0.1) each followed by a 2x2 max pool (the last of stride 1, padded
    right and bottom so 13x13 stays 13x13), two 3x3 convs of 1024, a 1x1 conv to
    125 = 5 * (5 + 20) with bias. 15,861,773 params (derived; darknet publishes none) and
    3.49G MACs at 416x416 (darknet's 6.97 BFLOPs = 2 x MACs).
    """
    layers: list[nn.Module] = []
    ch = 3
    for i, c in enumerate((16, 32, 64, 128, 256, 512)):
        layers += [conv_bn_act(ch, c, 3, act="leaky"), nn.MaxPool2d(2, 2) if i < 5 else DarknetPool2x2()]
        ch = c
    layers += [conv_bn_act(512, 1024, 3, act="leaky"), conv_bn_act(1024, 1024, 3, act="leaky"),
               nn.Conv2d(1024, anchors * (5 + num_classes), 1)]
    return init_weights(nn.Sequential(*layers))
