"""The interface of the exported MTCNN graphs (:mod:`edgeopt.zoo.mtcnn`): network names,
input name and side, output names in graph order.

Apart from the networks so the detector (:mod:`edgeopt.detect.mtcnn`), which runs the
graphs on ONNX Runtime, reads them without importing torch (the networks are
``torch.nn.Module`` classes, so :mod:`edgeopt.zoo.mtcnn` imports torch at its top).
"""

from __future__ import annotations

NETS = ("pnet", "rnet", "onet")
INPUT_NAME = "input"
# Input side of R-Net and O-Net; P-Net's training windows are 12x12 (Zhang et al. 2016,
# section II.A), and its exported graph takes any H, W >= 12.
INPUT_SIDE = {"pnet": 12, "rnet": 24, "onet": 48}
# Graph output names of the export, in graph order (facenet-pytorch's output order).
OUTPUT_NAMES = {
    "pnet": ("regression", "probability"),
    "rnet": ("regression", "probability"),
    "onet": ("regression", "landmarks", "probability"),
}
