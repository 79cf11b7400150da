"""MTCNN's refinement nets (R-Net, O-Net): one face box per input crop.

Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE SPL 2016 (arXiv:1604.02878), section II.A. Each sample is
one square crop (24 x 24 for R-Net, 48 x 48 for O-Net) and the net outputs a face
probability (N, 2) (background, face), a box regression (N, 4) and, O-Net only, five
landmarks (N, 10). The face box is the crop (0, 0, S, S) moved by the regression as
fractions of its side (facenet-pytorch's ``bbreg``, as :mod:`edgeopt.detect.mtcnn`
applies it), scored by the face probability; a crop scoring below the threshold has no
box. The landmarks are the regress task's to judge (``--task regress``).

Outputs are found by name (``probability``, ``regression``, the zoo's export names) or
else by width (2 and 4 values per sample).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ....errors import DataError
from .boxes import Detections
from .decoders import Decoder

DEFAULT_SCORE_THRESHOLD = 0.7  # O-Net's threshold in the paper's code and facenet-pytorch


class MtcnnDecoder(Decoder):
    """One box per crop from an MTCNN R-Net / O-Net (module docstring)."""

    name = "mtcnn"
    summary = "MTCNN R-Net / O-Net: probability (N, 2) + regression (N, 4) -> one face box per crop"
    default_score_threshold = DEFAULT_SCORE_THRESHOLD

    def _find(self, outputs: Sequence[np.ndarray], name: str, width: int) -> np.ndarray:
        names = self.model.output_names
        if name in names:
            return outputs[names.index(name)]
        hits = [o for o in outputs if o.ndim == 2 and o.shape[1] == width]
        if len(hits) != 1:
            raise DataError(f"the mtcnn decoder needs one {name} output of (N, {width}); {self.model.name} has "
                            f"{[tuple(o.shape) for o in outputs]}: choose another decoder=")
        return hits[0]

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        prob = self._find(outputs, "probability", 2)[:, 1]
        reg = self._find(outputs, "regression", 4)
        h, w = self.settings.input_size
        crop = np.array([0.0, 0.0, w, h])
        boxes = crop + reg * np.array([w, h, w, h], np.float64)
        return [Detections(b[None], [p], [0]) if p >= self.settings.min_score else Detections.empty()
                for b, p in zip(boxes, prob)]
