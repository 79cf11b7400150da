"""Recovery by knowledge distillation: train a (pruned) student to match its original (teacher).

The loss (Hinton, Vinyals and Dean 2015, "Distilling the Knowledge in a Neural Network",
arXiv:1503.02531, section 2) on softened logits at temperature T::

    KD = KL(softmax(t / T) || softmax(s / T)) * T^2

averaged over the batch (``F.kl_div(..., reduction="batchmean")``); the T^2 keeps the
soft-target gradients the same size whatever T (the paper's remark at the end of
section 2). With hard labels the loss is ``alpha * KD + (1 - alpha) * CE(s, y)`` (the
paper's weighted average); without labels it is KD alone, so any unlabeled images of the
deployment domain (the calibration images) suffice. An optional hint term adds
``feature_mse * MSE(f_s, f_t)`` between a feature map of the student and the same one of
the teacher (FitNets, Romero et al. 2015, arXiv:1412.6550, without the regressor, so
only where the shapes already match): by default the input of the last layer with
weights (the classifier's input features).

The package:

- :mod:`.config`: :class:`DistillConfig` (and the learning-rate measurements behind its
  defaults), :func:`recovery_config`, :class:`DistillResult`.
- :mod:`.data`: checked image/label tensors and the held-out split.
- :mod:`.augment`: :func:`augment_batch`, random crops, flips, shifts and colour jitter.
- :mod:`.taps`: logits out of models that end in a softmax, the hint's feature maps.
- :mod:`.batchnorm`: BatchNorm train / freeze / recalibrate (:func:`recalibrate_bn`).
- :mod:`.training`: the training loop and the learning-rate probe.
- :mod:`.plateau`: when to give up: agreement plateaued far below what the caller needs.
- :mod:`.distiller`: :func:`distill` on torch modules.
- :mod:`.api`: :func:`distill_model` and the pass ``distill`` (:func:`apply`), which needs
  the original model as teacher besides the calibration images.

Importing this package does not import torch.
"""

from __future__ import annotations

from .api import NOTE_KEY, apply, distill_model, read_summary
from .augment import augment_batch
from .batchnorm import recalibrate_bn
from .config import (BN_FREEZE_BELOW, BN_MODES, LR_PROBE, PASS_NAME, TEACHER, DistillConfig,
                     DistillResult, recovery_config)
from .distiller import distill

__all__ = [
    "BN_FREEZE_BELOW", "BN_MODES", "DistillConfig", "DistillResult", "LR_PROBE", "NOTE_KEY", "PASS_NAME",
    "TEACHER", "apply", "augment_batch", "distill", "distill_model", "read_summary", "recalibrate_bn",
    "recovery_config",
]
