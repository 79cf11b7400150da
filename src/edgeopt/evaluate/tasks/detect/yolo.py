"""YOLO heads with one prediction row per anchor point, boxes as centre and size.

- YOLOv5 (Jocher et al., ultralytics/yolov5, its ONNX export; also YOLOv7 and
  YOLOX-style exports): (N, A, 5 + K) rows ``cx, cy, w, h, objectness, K class
  probabilities``; a box's score is objectness x class probability (Redmon & Farhadi,
  "YOLO9000", CVPR 2017, section 2).
- YOLOv8 / YOLO11 (ultralytics, anchor-free, no objectness): (N, 4 + K, A) columns
  ``cx, cy, w, h, K class probabilities`` (an (N, A, 4 + K) layout is read too).

Boxes are in input pixels, probabilities already through the sigmoid, as Ultralytics
exports them; options ``normalized=true`` (boxes as fractions of the input size) and
``activation=sigmoid`` (raw logits) read other exports. Each anchor keeps its best class
(Ultralytics' ``multi_label=False``), then NMS per class (:mod:`.nms`).

Options: ``output`` (the head's output name; default the first), ``normalized``,
``activation`` (none | sigmoid).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ....errors import DataError
from .boxes import Detections, cxcywh_to_xyxy
from .decoders import Decoder
from .nms import select
from .options import choice, flag


class _Yolo(Decoder):
    """Shared reading of one (N, A, 4 + extra + K) prediction table."""

    extra = 0  # columns between the box and the class scores (objectness)
    option_names = ("output", "normalized", "activation")

    def _table(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        """(N, A, 4 + extra + K) rows, one per anchor point."""
        return self.output(outputs, "output", 0)

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        t = self._table(outputs)
        if t.ndim != 3 or t.shape[2] < 4 + self.extra + (0 if self.extra else 1):
            raise DataError(f"{self.name} decoder needs an (N, anchors, 4{' + 1' * self.extra} + classes) table, "
                            f"got {t.shape}: choose another decoder= or give output=NAME")
        sigmoid = choice(self.options, "activation", "none", ("none", "sigmoid")) == "sigmoid"
        scores = t[..., 4:]
        if sigmoid:
            scores = 1.0 / (1.0 + np.exp(-scores))
        if self.extra:
            # Objectness times class probability; a single-class table has objectness only.
            scores = scores[..., :1] * scores[..., 1:] if scores.shape[2] > 1 else scores
        boxes = cxcywh_to_xyxy(t[..., :4])
        if flag(self.options, "normalized", False):
            h, w = self.settings.input_size
            boxes = boxes * np.array([w, h, w, h], np.float64)
        s = self.settings
        return [select(b, c, min_score=s.min_score, iou=s.nms_iou, max_detections=s.max_detections)
                for b, c in zip(boxes, scores)]


class YoloV5Decoder(_Yolo):
    """YOLOv5-style (N, A, 5 + K) table with objectness (module docstring)."""

    name = "yolov5"
    summary = "YOLOv5-style (N, anchors, 5 + classes): cx, cy, w, h, objectness, class probabilities"
    extra = 1


class YoloV8Decoder(_Yolo):
    """YOLOv8-style (N, 4 + K, A) table without objectness (module docstring)."""

    name = "yolov8"
    summary = "YOLOv8-style (N, 4 + classes, anchors): cx, cy, w, h, class probabilities"

    def _table(self, outputs: Sequence[np.ndarray]) -> np.ndarray:
        t = super()._table(outputs)
        # Ultralytics exports (N, 4 + K, A) with A (thousands of points) > 4 + K.
        return t.transpose(0, 2, 1) if t.ndim == 3 and t.shape[1] < t.shape[2] else t
