"""One-to-one matching of detections to reference boxes at an IoU threshold, and the
counts it gives: recall, precision, mean IoU of the matched pairs.

The matching is COCO's and PASCAL VOC's (Everingham et al., IJCV 2010, section 4.4):
detections in descending score order each take the unmatched reference box of the same
class with the highest IoU, if that IoU is at least the threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .boxes import Detections, iou_matrix


@dataclass(frozen=True)
class MatchStats:
    """Matching totals over a set of samples.

    Attributes:
        reference: reference boxes (ground truth, or the original's detections).
        detected: detections judged.
        matched: matched pairs.
        iou_sum: sum of the matched pairs' IoU.
    """

    reference: int
    detected: int
    matched: int
    iou_sum: float

    @property
    def recall(self) -> float:
        """% of reference boxes matched (100 when there is none: nothing was missed)."""
        return 100.0 * self.matched / self.reference if self.reference else 100.0

    @property
    def precision(self) -> float:
        """% of detections matched (100 when there is none: nothing was wrong)."""
        return 100.0 * self.matched / self.detected if self.detected else 100.0

    @property
    def mean_iou(self) -> float | None:
        """Mean IoU of the matched pairs, None without a pair."""
        return self.iou_sum / self.matched if self.matched else None


def match(reference: Detections, detections: Detections, iou: float = 0.5) -> np.ndarray:
    """IoU of each detection's match, NaN where it has none.

    Args:
        reference: the boxes to find (their scores are not used).
        detections: the boxes judged, best score first (as :class:`Detections` keeps them).
        iou: the lowest IoU of a match.

    Returns:
        (len(detections),) float64.
    """
    ious = iou_matrix(detections.boxes, reference.boxes)
    ious[detections.classes[:, None] != reference.classes[None, :]] = -1.0
    out = np.full(len(detections), np.nan)
    taken = np.zeros(len(reference), bool)
    for d in range(len(detections)):
        row = np.where(taken, -1.0, ious[d])
        if row.size and row.max() >= iou:
            g = int(row.argmax())
            taken[g], out[d] = True, row[g]
    return out


def match_all(reference: Sequence[Detections], detections: Sequence[Detections], iou: float = 0.5) -> MatchStats:
    """:func:`match` on every sample, totalled."""
    ious = [match(r, d, iou) for r, d in zip(reference, detections)]
    matched = np.concatenate([x[~np.isnan(x)] for x in ious]) if ious else np.zeros(0)
    return MatchStats(reference=sum(len(r) for r in reference), detected=sum(len(d) for d in detections),
                      matched=len(matched), iou_sum=float(matched.sum()))
