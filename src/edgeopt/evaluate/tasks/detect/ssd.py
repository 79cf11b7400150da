"""SSD and other anchor heads: separate box (N, A, 4) and class-score (N, A, K) outputs.

Liu et al., "SSD: Single Shot MultiBox Detector", ECCV 2016 (arXiv:1512.02325). The box
output holds either

- ``boxes=offsets`` (default; the raw head, as the zoo's ``ssd300-vgg16``,
  ``ssdlite-mobilenetv2`` and ``squeezenet-ssd`` and torchvision's SSD export it):
  offsets (dx, dy, dw, dh) from default boxes (anchors), decoded with the variances
  0.1, 0.1, 0.2, 0.2 of the paper's Caffe code (torchvision's box-coder weights 10, 10,
  5, 5): cx = a_cx + 0.1 dx a_w, w = a_w exp(0.2 dw) (dw clamped at log(1000/16) as
  torchvision does);
- ``boxes=corners``: decoded x1, y1, x2, y2 in input pixels (``normalized=true``: as
  fractions of the input size), as exports with the decoding inside give.

Default boxes: ``anchors=FILE.npy`` gives them, (A, 4) centre x, centre y, width,
height as fractions of the input size, in the head's order. Without it they are made by
the paper's rule (section 2.2) from the feature maps the graph's head concatenates
(:func:`~.graph.head_maps`): on map k of m (cells in (map, y, x, anchor) order, centres
at (x + 0.5) / W_k), scale s_k = 0.2 + 0.7 (k - 1) / (m - 1), boxes of aspect ratio 1 at
s_k and at sqrt(s_k s_{k+1}) (s_{m+1} = 1), then ratios 2, 1/2, 3, 1/3, ... at s_k, as many
as the map has anchors per location; clipped to the image. A trained model's exact
anchors (torchvision's SSD300 uses other scales) come with ``anchors=``; the original
and the candidate are decoded with the same ones either way.

Scores: softmax over the K classes unless the graph already ends the score output in a
Softmax or Sigmoid (``activation=softmax|sigmoid|none`` overrides); class ``background``
(default 0, ``background=none`` for heads without one) is dropped. Every class above the
score threshold makes a candidate, NMS per class (the paper's and torchvision's rule).

Options: ``boxes_output``, ``scores_output`` (names; default: as recognised from the
shapes, else the first of two outputs is the boxes, as the zoo's SSDs order them),
``boxes``, ``normalized``, ``anchors``, ``activation``, ``background``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ....errors import DataError
from .boxes import Detections, cxcywh_to_xyxy
from .decoders import DecodeSettings, Decoder
from .graph import activation, head_maps
from .nms import select
from .options import choice, flag

if TYPE_CHECKING:
    from ....model import Model

VARIANCES = (0.1, 0.2)  # centre, size (Liu et al.'s Caffe prior boxes)
_DW_CLAMP = math.log(1000.0 / 16)
S_MIN, S_MAX = 0.2, 0.9


def default_boxes(maps: Sequence[tuple[int, int, int]]) -> np.ndarray:
    """SSD default boxes (module docstring) of feature maps (height, width, anchors per
    location): (A, 4) float64 centre x, centre y, width, height as fractions of the input.

    Raises:
        DataError: a map has no anchor.
    """
    m = len(maps)
    scales = [S_MIN + (S_MAX - S_MIN) * k / (m - 1) if m > 1 else S_MIN for k in range(m)] + [1.0]
    out = []
    for k, (h, w, a) in enumerate(maps):
        if a < 1:
            raise DataError(f"feature map {k} has {a} anchors per location: give anchors=FILE.npy")
        s = scales[k]
        shapes = [(s, s), (math.sqrt(s * scales[k + 1]),) * 2]
        r = 2
        while len(shapes) < a:
            shapes += [(s * math.sqrt(r), s / math.sqrt(r)), (s / math.sqrt(r), s * math.sqrt(r))]
            r += 1
        wh = np.asarray(shapes[:a])
        ys, xs = np.meshgrid((np.arange(h) + 0.5) / h, (np.arange(w) + 0.5) / w, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        cells = np.concatenate([np.repeat(centres, a, axis=0), np.tile(wh, (h * w, 1))], axis=1)
        out.append(cells)
    priors = np.concatenate(out)
    # Clip the corners to the image, as torchvision's DefaultBoxGenerator(clip=True).
    corners = np.clip(cxcywh_to_xyxy(priors), 0.0, 1.0)
    return np.concatenate([(corners[:, :2] + corners[:, 2:]) / 2, corners[:, 2:] - corners[:, :2]], axis=1)


def decode_offsets(offsets: np.ndarray, priors: np.ndarray) -> np.ndarray:
    """(..., A, 4) offsets dx, dy, dw, dh from priors (A, 4) cx, cy, w, h -> (..., A, 4)
    x1, y1, x2, y2 in the priors' units (module docstring)."""
    c, s = VARIANCES
    cxcy = priors[:, :2] + offsets[..., :2] * c * priors[:, 2:]
    wh = priors[:, 2:] * np.exp(np.minimum(offsets[..., 2:] * s, _DW_CLAMP))
    return cxcywh_to_xyxy(np.concatenate([cxcy, wh], axis=-1))


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


class SsdDecoder(Decoder):
    """Box and score outputs of an anchor head (module docstring)."""

    name = "ssd"
    summary = "SSD / anchor heads: boxes (N, anchors, 4) as offsets or corners + scores (N, anchors, classes)"
    option_names = ("boxes_output", "scores_output", "boxes", "normalized", "anchors", "activation", "background")

    def __init__(self, model: "Model", settings: DecodeSettings) -> None:
        super().__init__(model, settings)
        self.mode = choice(self.options, "boxes", "offsets", ("offsets", "corners"))
        names = list(model.output_names)
        self.boxes_name = self.options.get("boxes_output") or (names[0] if len(names) == 2 else None)
        self.scores_name = self.options.get("scores_output") or next(
            (n for n in names if n != self.boxes_name and len(names) == 2), None)
        for key, name in (("boxes_output", self.boxes_name), ("scores_output", self.scores_name)):
            if name not in names:
                raise DataError(f"the ssd decoder reads a boxes and a scores output; {model.name} has "
                                f"{', '.join(names)}: name them with {key}=NAME")
        act = choice(self.options, "activation", "auto", ("auto", "softmax", "sigmoid", "none"))
        graph_act = activation(model, self.scores_name)
        self.activation = ("softmax" if graph_act is None else "none") if act == "auto" else act
        bg = str(self.options.get("background", 0))
        self.background = None if bg.lower() == "none" else int(bg)
        self.priors = self._priors(model) if self.mode == "offsets" else None

    def _priors(self, model: "Model") -> np.ndarray:
        path = self.options.get("anchors")
        if path:
            try:
                priors = np.load(path).astype(np.float64)
            except (OSError, ValueError) as e:
                raise DataError(f"anchors file {path} cannot be read ({e}): give an .npy of (A, 4) cx, cy, w, h "
                                "fractions") from None
            if priors.ndim != 2 or priors.shape[1] != 4:
                raise DataError(f"anchors file {path} holds {priors.shape}: give (A, 4) cx, cy, w, h fractions")
            return priors
        maps = head_maps(model, self.boxes_name, 4)
        if maps is None:
            raise DataError(f"the default boxes of {model.name}'s head cannot be read from its graph: give "
                            "anchors=FILE.npy ((A, 4) cx, cy, w, h fractions) or boxes=corners")
        return default_boxes(maps)

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        names = self.model.output_names
        raw = outputs[names.index(self.boxes_name)]
        scores = outputs[names.index(self.scores_name)]
        if raw.ndim != 3 or raw.shape[2] != 4 or scores.ndim != 3 or scores.shape[:2] != raw.shape[:2]:
            raise DataError(f"the ssd decoder needs boxes (N, A, 4) and scores (N, A, K), got {raw.shape} and "
                            f"{scores.shape}: name them with boxes_output= and scores_output=")
        h, w = self.settings.input_size
        size = np.array([w, h, w, h], np.float64)
        if self.mode == "offsets":
            if len(self.priors) != raw.shape[1]:
                raise DataError(f"{len(self.priors)} default boxes for {raw.shape[1]} anchors: give anchors=FILE.npy "
                                "of the head's anchors")
            boxes = decode_offsets(raw, self.priors) * size
        else:
            boxes = raw * size if flag(self.options, "normalized", False) else raw
        if self.activation == "softmax":
            scores = _softmax(scores)
        elif self.activation == "sigmoid":
            scores = 1.0 / (1.0 + np.exp(-scores))
        classes = np.arange(scores.shape[2])
        if self.background is not None:
            keep = classes != self.background
            scores, classes = scores[..., keep], classes[keep]
        s = self.settings
        out = []
        for b, sc in zip(boxes, scores):
            det = select(b, sc, min_score=s.min_score, iou=s.nms_iou, multi_label=True,
                         max_detections=s.max_detections)
            out.append(Detections(det.boxes, det.scores, classes[det.classes]))
        return out
