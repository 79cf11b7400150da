"""mAP by the COCO evaluation (pycocotools, the reference implementation).

Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014, and the detection
evaluation of cocodataset.org: per class, detections ranked by score over all samples are
matched greedily to the reference boxes (:mod:`.match`'s rule); AP is the mean of the
interpolated precision at 101 recall points; mAP is the mean over the classes that have
reference boxes (a class with none is left out, as COCO does); mAP@0.5:0.95 averages
over the IoU thresholds 0.50, 0.55, ..., 0.95. One area range (all sizes) and up to
``max_detections`` detections per sample are evaluated.
"""

from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np

from .boxes import Detections


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


def coco_map(reference: Sequence[Detections], detections: Sequence[Detections],
             max_detections: int = 300) -> tuple[float, float] | None:
    """(mAP@0.5, mAP@0.5:0.95) in % of ``detections`` against ``reference`` boxes.

    Args:
        reference: per sample, the boxes to find (ground truth or the original's).
        detections: per sample, the detections judged, with their scores.
        max_detections: detections per sample evaluated, best first.

    Returns:
        the two mAPs; 0 when there are reference boxes and no detection; None when there
        is no reference box at all (COCO's mAP is undefined then).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if not any(len(r) for r in reference):
        return None
    if not any(len(d) for d in detections):
        return 0.0, 0.0
    classes = sorted({int(c) for r in (*reference, *detections) for c in r.classes})
    anns = []
    for i, r in enumerate(reference):
        for box, c in zip(_xywh(r.boxes), r.classes):
            anns.append({"id": len(anns) + 1, "image_id": i, "category_id": int(c), "bbox": box.tolist(),
                         "area": float(box[2] * box[3]), "iscrowd": 0})
    results = [{"image_id": i, "category_id": int(c), "bbox": box.tolist(), "score": float(s)}
               for i, d in enumerate(detections)
               for box, s, c in zip(_xywh(d.boxes), d.scores, d.classes)]
    # pycocotools prints its progress on stdout; the evaluator's caller prints its own.
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i} for i in range(len(reference))], "annotations": anns,
                      "categories": [{"id": c} for c in classes]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(results), iouType="bbox")
        p = evaluation.params
        p.imgIds = list(range(len(reference)))
        p.areaRng, p.areaRngLbl, p.maxDets = [[0.0, 1e12]], ["all"], [int(max_detections)]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval["precision"][:, :, :, 0, 0]  # (IoU thresholds, recall points, classes)
    at50 = precision[0][precision[0] > -1]
    every = precision[precision > -1]
    return float(100.0 * at50.mean()), float(100.0 * every.mean())
