"""The detect task: decode a detector's raw outputs into boxes, then judge the candidate's
boxes against the original's (and against ground truth) by mAP@0.5.

Modules: :mod:`.boxes` (detections, IoU), :mod:`.nms` (threshold and NMS per class),
:mod:`.decoders` (the registry and user decoders) and one module per head family
(:mod:`.yolo`, :mod:`.ssd`, :mod:`.gfl`, :mod:`.db`, :mod:`.mtcnn`), :mod:`.heads`
(recognising a head from its outputs' shapes), :mod:`.graph` (what the ONNX graph says
about a head), :mod:`.match` (recall, precision, mean IoU), :mod:`.coco` (mAP by
pycocotools), :mod:`.labels` (ground truth in input pixels), :mod:`.evaluator`.
"""

from __future__ import annotations

from .boxes import Detections
from .evaluator import DetectEvaluator

__all__ = ["Detections", "DetectEvaluator"]
