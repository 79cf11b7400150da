"""MTCNN's three networks (P-Net, R-Net, O-Net) with the pretrained weights of facenet-pytorch.

Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE Signal Processing Letters 23(10), 2016 (arXiv:1604.02878),
figure 2. The layers are written here; their names, the order of the outputs and the
softmax on the face/non-face pair follow facenet-pytorch (``facenet_pytorch/models/
mtcnn.py``), whose state dicts ``data/pnet.pt``, ``rnet.pt``, ``onet.pt`` (converted from
the authors' Caffe models via David Sandberg's TensorFlow port) load into them unchanged.
We never import facenet-pytorch's Python code (it imports torchvision, which has no CPU
build here): only its weight files are read, with ``torch.load(weights_only=True)`` so a
file cannot run code.

Inputs are float32 RGB, NCHW, normalised as ``(pixel - 127.5) * 0.0078125`` (pixels in
0..255). Outputs, in this order (the ONNX output names in brackets):

- P-Net, fully convolutional, input (N, 3, H, W) with H, W >= 12: box offsets
  (N, 4, h, w) ["regression"] and face probabilities (N, 2, h, w) ["probability",
  channel 1 = face], with h = ceil((H - 2) / 2) - 4 (one cell per 12x12 window,
  stride 2).
- R-Net, input (N, 3, 24, 24): offsets (N, 4) ["regression"], probabilities (N, 2)
  ["probability"].
- O-Net, input (N, 3, 48, 48): offsets (N, 4) ["regression"], landmarks (N, 10)
  ["landmarks": x of the 5 points, then y, as fractions of the box], probabilities
  (N, 2) ["probability"].

Offsets are fractions of the box width/height added to (x1, y1, x2, y2).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from .._util.errorline import error_line
from ..shapes import BATCH_DIM
from .mtcnn_io import INPUT_NAME, INPUT_SIDE, NETS, OUTPUT_NAMES
from .packaged import packaged_file

DISTRIBUTION = "facenet-pytorch"
VERSION = "2.6.0"
INSTALL = f"pip install --no-deps {DISTRIBUTION}=={VERSION}"


class PNet(nn.Module):
    """Proposal network: 3x3 conv 10, max-pool 2, 3x3 conv 16, 3x3 conv 32, two 1x1 heads.

    Input (N, 3, H, W) float32, H, W >= 12. Returns (offsets (N, 4, h, w), face/non-face
    softmax (N, 2, h, w)); see the module docstring for h, w. 6,632 parameters;
    192.6 M MACs at 288x384 (``edgeopt.profile``), about 1.74 K MACs per input pixel.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        # ceil_mode: the Caffe pooling of the original models rounds up.
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.softmax4_1 = nn.Softmax(dim=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        return self.conv4_2(x), self.softmax4_1(self.conv4_1(x))


class RNet(nn.Module):
    """Refine network: 3x3 conv 28, pool, 3x3 conv 48, pool, 2x2 conv 64, FC 128, two heads.

    Input (N, 3, 24, 24) float32. Returns (offsets (N, 4), softmax (N, 2)).
    100,178 parameters; 1.53 M MACs per crop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.softmax5_1 = nn.Softmax(dim=1)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        # The dense weights read the map in (W, H, C) order: the Caffe originals ran on
        # transposed (column-major MATLAB) images. Flatten is one ONNX node, unlike view().
        x = torch.flatten(x.permute(0, 3, 2, 1), 1)
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), self.softmax5_1(self.dense5_1(x))


class ONet(nn.Module):
    """Output network: 4 convs (32, 64, 64, 128) with 3 pools, FC 256, three heads.

    Input (N, 3, 48, 48) float32. Returns (offsets (N, 4), landmarks (N, 10), softmax
    (N, 2)). 389,040 parameters; 12.9 M MACs per crop.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.softmax6_1 = nn.Softmax(dim=1)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = torch.flatten(x.permute(0, 3, 2, 1), 1)  # (W, H, C) order, as in RNet
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), self.softmax6_1(self.dense6_1(x))


_CLASSES = {"pnet": PNet, "rnet": RNet, "onet": ONet}


def _check_net(net: str) -> None:
    if net not in _CLASSES:
        raise ModelLoadError(f"no MTCNN network {net!r}: choose one of {', '.join(NETS)}")


def weights_file(net: str) -> Path:
    """Path of facenet-pytorch's state dict for ``net`` ("pnet", "rnet" or "onet").

    Raises:
        ModelLoadError: unknown net, or facenet-pytorch is not installed (the message
            gives the ``pip install --no-deps`` command).
    """
    _check_net(net)
    return packaged_file(DISTRIBUTION, f"facenet_pytorch/data/{net}.pt", INSTALL)


def pretrained(net: str) -> nn.Module:
    """``net`` ("pnet", "rnet", "onet") in eval mode with facenet-pytorch's trained weights.

    Raises:
        ModelLoadError: unknown net, package missing, or the file is not a state dict
            that fits the architecture (e.g. another facenet-pytorch version).
    """
    path = weights_file(net)
    module = _CLASSES[net]()
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state, strict=True)
    except Exception as e:
        raise ModelLoadError(
            f"{path} does not load into edgeopt's {type(module).__name__} "
            f"({error_line(e, limit=160, with_type=False)}): run `{INSTALL}`"
        ) from e
    return module.eval()


def export_onnx(module: nn.Module, net: str, *, side: int | None = None, opset: int = 17) -> bytes:
    """Export an MTCNN network to ONNX bytes with the input/output names of this module.

    The batch dimension is symbolic ("N"); P-Net's height and width are symbolic too
    ("H", "W"; its outputs "h", "w"), so one graph serves every pyramid scale. (``edgeopt.model.from_torch``
    makes only the batch dynamic and names one output.)

    Args:
        module: a PNet, RNet or ONet.
        net: "pnet", "rnet" or "onet".
        side: square side of the example input used for tracing (default: the net's
            training size 12, 24 or 48).
        opset: ONNX opset.

    Raises:
        ModelLoadError: unknown net or the export fails.
    """
    import io
    import warnings

    _check_net(net)
    outputs = OUTPUT_NAMES[net]
    pnet = net == "pnet"
    # The output map is smaller than the input: its dims get their own names.
    axes = {INPUT_NAME: {0: BATCH_DIM, **({2: "H", 3: "W"} if pnet else {})}}
    axes.update({name: {0: BATCH_DIM, **({2: "h", 3: "w"} if pnet else {})} for name in outputs})
    side = side or INPUT_SIDE[net]
    buf = io.BytesIO()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module.eval(), (torch.zeros(1, 3, side, side),), buf, dynamo=False,
                opset_version=opset, input_names=[INPUT_NAME], output_names=list(outputs),
                dynamic_axes=axes,
            )
    except Exception as e:
        raise ModelLoadError(
            f"cannot export MTCNN {net} to ONNX ({error_line(e, limit=200, with_type=False)}): "
            f"check the torch version (2.13 is tested)"
        ) from e
    return buf.getvalue()
