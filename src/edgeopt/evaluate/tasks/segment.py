"""Segmentation: agreement of the per-pixel class maps (argmax over the class axis).

Pixel agreement is the % of pixels whose class is the original's; mIoU is the mean over
the classes present in either map of |A and B| / |A or B| (the PASCAL VOC / Cityscapes
definition), computed here between the candidate's map and the original's. The drop is
100 - mIoU in points (budget 1 point by default).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import Evaluator, TaskScore, check_outputs


def class_maps(a: np.ndarray, axis: int) -> np.ndarray:
    """(N, ...) class indices: argmax over ``axis`` (the class axis)."""
    return a.argmax(axis=axis)


def mean_iou(ref_map: np.ndarray, cand_map: np.ndarray) -> float:
    """Mean IoU (%) over the classes present in either map."""
    ious = []
    for k in np.union1d(np.unique(ref_map), np.unique(cand_map)):
        a, b = ref_map == k, cand_map == k
        ious.append(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())
    return float(100.0 * np.mean(ious))


class SegmentEvaluator(Evaluator):
    """Pixel agreement and mIoU of the argmax class maps.

    Options:
        output: name of the score-map output (default: the first).
        class_axis: axis of the classes (default 1, NCHW).
    """

    task = "segment"
    default_tolerance = 1.0
    summary = "pixel agreement and mIoU of the argmax class maps vs the original"

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        i = self.output_index()
        name = self.model.output_names[i]
        axis = int(self.options.get("class_axis", 1))
        rm, cm = class_maps(ref[i], axis), class_maps(cand[i], axis)
        miou = mean_iou(rm, cm)
        details: dict[str, Any] = {"pixel_agreement": float(100.0 * np.mean(rm == cm)), "output": name}
        original = None
        if labels is not None:
            y = np.asarray(labels).reshape(rm.shape)
            original = mean_iou(y, rm)
            details["candidate_miou_to_labels"] = mean_iou(y, cm)
        return TaskScore(task=self.task, metric="mIoU vs the original's class map", unit="%", value=miou,
                         drop=100.0 - miou, drop_unit="points", original=original, details=details)
