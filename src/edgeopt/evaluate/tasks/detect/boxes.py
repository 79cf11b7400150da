"""Detections of one sample and the box geometry every decoder and metric shares."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Detections:
    """The boxes a detector found in one sample, best score first.

    Attributes:
        boxes: (M, 4) float64 x1, y1, x2, y2 in pixels of the model input (continuous
            coordinates: the whole H x W input is 0, 0, W, H).
        scores: (M,) float64 confidence in [0, 1] (the decoder's score: class
            probability, objectness x class probability, mean text probability, ...).
        classes: (M,) int64 class ids (0 for single-class detectors).
    """

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    def __post_init__(self) -> None:
        order = np.argsort(-np.asarray(self.scores, np.float64), kind="stable")
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float64).reshape(-1, 4)[order])
        object.__setattr__(self, "scores", np.asarray(self.scores, np.float64).reshape(-1)[order])
        object.__setattr__(self, "classes", np.asarray(self.classes, np.int64).reshape(-1)[order])

    def __len__(self) -> int:
        return len(self.scores)

    @staticmethod
    def empty() -> "Detections":
        """No detection."""
        return Detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))


def cxcywh_to_xyxy(b: np.ndarray) -> np.ndarray:
    """(..., 4) centre x, centre y, width, height -> x1, y1, x2, y2 (same units)."""
    b = np.asarray(b, np.float64)
    half = b[..., 2:4] / 2
    return np.concatenate([b[..., 0:2] - half, b[..., 0:2] + half], axis=-1)


def box_area(b: np.ndarray) -> np.ndarray:
    """(..., 4) x1, y1, x2, y2 -> (...) area (0 for an inverted box)."""
    return np.clip(b[..., 2] - b[..., 0], 0, None) * np.clip(b[..., 3] - b[..., 1], 0, None)


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over union of every box of ``a`` (P, 4) with every box of ``b``
    (Q, 4), x1, y1, x2, y2: (P, Q) float64 in [0, 1]; 0 where both boxes have no area
    (Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010,
    section 4.4, with continuous coordinates as COCO: no +1 on widths)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
