"""Ground-truth boxes (:mod:`edgeopt.data.detections`, image pixels) in the pixels of
the model input, through the geometry of the model's preprocessing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ....data.detections import GroundTruth
from ....errors import DataError
from .boxes import Detections

if TYPE_CHECKING:
    from ....preprocess import Preprocess


def input_geometry(image_size: tuple[int, int], input_size: tuple[int, int],
                   preprocess: "Preprocess | None") -> tuple[np.ndarray, np.ndarray]:
    """(scale (2,), offset (2,)) with input x, y = image x, y * scale - offset, as
    :class:`~edgeopt.preprocess.Preprocess` resizes: straight to the input size, or with
    ``resize_short`` to that short side and a centre crop of the input size."""
    (ih, iw), (h, w) = image_size, input_size
    if preprocess is None or not preprocess.resize_short:
        return np.array([w / iw, h / ih]), np.zeros(2)
    factor = preprocess.resize_short / min(iw, ih)
    rw, rh = max(w, round(iw * factor)), max(h, round(ih * factor))
    return np.array([rw / iw, rh / ih]), np.array([(rw - w) // 2, (rh - h) // 2], np.float64)


def to_input(labels: Sequence[Any], n: int, input_size: tuple[int, int],
             preprocess: "Preprocess | None") -> list[Detections]:
    """N ground truths as :class:`Detections` (score 1) in input pixels, clipped to the
    input; a box left with no area (cropped away) is dropped.

    Raises:
        DataError: not N :class:`~edgeopt.data.detections.GroundTruth` items.
    """
    if len(labels) != n or not all(isinstance(g, GroundTruth) for g in labels):
        raise DataError(f"detection labels must be {n} GroundTruth items (edgeopt.data.detections: read_coco_json "
                        "or read_yolo_folder), one per sample")
    h, w = input_size
    out = []
    for g in labels:
        scale, offset = input_geometry(g.image_size, input_size, preprocess)
        b = g.boxes * np.tile(scale, 2) - np.tile(offset, 2)
        b = np.clip(b, 0, [w, h, w, h])
        keep = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        out.append(Detections(b[keep], np.ones(int(keep.sum())), g.classes[keep]))
    return out
