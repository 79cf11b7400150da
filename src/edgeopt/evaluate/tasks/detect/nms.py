"""Score threshold and non-maximum suppression per class: raw candidate boxes -> detections.

Greedy NMS (Neubeck & Van Gool, "Efficient Non-Maximum Suppression", ICPR 2006, as in
R-CNN and every single-shot detector since): keep the best-scoring box, drop the boxes of
its class that overlap it by IoU > ``iou``, repeat with the rest. Classes are kept apart
by shifting each class's boxes to its own region of the plane (torchvision's
``batched_nms`` trick), so one pass serves every class.

The default IoU is 0.5: the IoU at which the evaluator matches boxes (two kept boxes of a
class never overlap more than a match does) and the default of PaddleDetection's
PicoDet / rapid-layout post-processing; YOLOv5 and SSD use 0.45, so their reference
numbers may keep a few more overlapping boxes. The original and the candidate are decoded
with the same setting, so the agreement does not hinge on it.
"""

from __future__ import annotations

import numpy as np

from .boxes import Detections, iou_matrix

NMS_IOU = 0.5
MAX_DETECTIONS = 300  # per sample, after NMS (Ultralytics' max_det)
PRE_NMS_TOP_K = 3000  # candidates per sample entering NMS, best first (bounds the O(K^2) work)


def nms(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, best score first, class by class.

    Args:
        boxes: (K, 4) x1, y1, x2, y2.
        scores: (K,) higher is better; ties keep the earlier box.
        classes: (K,) int class ids; boxes of different classes never suppress each other.
        iou: a box overlapping a kept box of its class by more than this is dropped.

    Returns:
        (k,) int64 indices into the inputs.
    """
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    if not len(boxes):
        return np.zeros(0, np.int64)
    # Each class in its own square of the plane, farther apart than any box is wide.
    span = float(np.abs(boxes).max()) * 2 + 1
    shifted = boxes + (np.asarray(classes, np.float64) * span)[:, None]
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        order = rest[iou_matrix(shifted[i], shifted[rest])[0] <= iou]
    return np.asarray(keep, np.int64)


def select(boxes: np.ndarray, class_scores: np.ndarray, *, min_score: float, iou: float = NMS_IOU,
           multi_label: bool = False, max_detections: int = MAX_DETECTIONS,
           pre_nms_top_k: int = PRE_NMS_TOP_K) -> Detections:
    """Detections of one sample from per-candidate boxes and class scores.

    Args:
        boxes: (A, 4) x1, y1, x2, y2 input pixels, one per anchor / grid cell.
        class_scores: (A, K) score of each class for each candidate, in [0, 1].
        min_score: scores below it are dropped before NMS.
        iou: NMS IoU threshold (see the module docstring).
        multi_label: every class scoring above ``min_score`` makes a candidate (SSD's
            and PaddleDetection's per-class NMS), else only each anchor's best class
            (Ultralytics' default).
        max_detections: most detections kept, best first.
        pre_nms_top_k: most candidates entering NMS, best first.

    Returns:
        :class:`Detections` (best score first).
    """
    scores = np.asarray(class_scores, np.float64)
    if multi_label:
        anchor, cls = np.nonzero(scores >= min_score)
        conf = scores[anchor, cls]
    else:
        cls = scores.argmax(axis=1)
        conf = scores[np.arange(len(scores)), cls]
        anchor = np.flatnonzero(conf >= min_score)
        cls, conf = cls[anchor], conf[anchor]
    top = np.argsort(-conf, kind="stable")[:pre_nms_top_k]
    b, s, c = np.asarray(boxes, np.float64)[anchor[top]], conf[top], cls[top]
    keep = nms(b, s, c, iou)[:max_detections]
    return Detections(b[keep], s[keep], c[keep])
