"""Training a rewritten copy of a model against the original, within a time budget.

Passes that change how a network computes and then recover it by distillation (``qat``:
fake-quantizers; ``weights-ternary`` / ``weights-binary``: straight-through weights)
share the same settings (:class:`TrainingBudget`) and the same steps
(:func:`train_student`): the images split into training and held-out parts, the float
model as teacher, no early stop at a target agreement, and no epoch cap, so the user's
``seconds`` decide how long it trains.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from ...errors import PassError
from .config import DistillConfig, DistillResult
from .data import hold_out

if TYPE_CHECKING:
    import torch

    from ...model import Model

@dataclass(frozen=True)
class TrainingBudget:
    """Settings of a pass that trains against the original (all defaults valid; the
    passes' configs subclass it with defaults of their own).

    Attributes:
        seconds: wall-time budget of the training (s, > 0); preparing and exporting the
            network come on top.
        lr: AdamW learning rate (> 0).
        calibration_count: images used, at most (>= 1); ``val_fraction`` of them are
            held out to pick the best weights.
        batch_size: images per training step (>= 1).
        val_fraction: share held out for the agreement (or accuracy, with labels) that
            picks the weights kept, in [0, 1) (as :class:`DistillConfig`).
        seed: seeds the hold-out, shuffling and augmentation.
        max_epochs: passes over the training images at most (>= 1); high, so that
            ``seconds`` decides (distillation's own default of 30 epochs ends a run on
            112 images after about 60 steps).

    Raises:
        PassError: (on construction) a value out of range, in one line naming the class.
    """

    seconds: float = 60.0
    lr: float = 1e-4
    calibration_count: int = 300
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    max_epochs: int = 100_000

    def __post_init__(self) -> None:
        for ok, fix in self.checks():
            if not ok:
                raise PassError(f"bad {type(self).__name__}: {fix}")

    def checks(self) -> list[tuple[bool, str]]:
        """(holds, what to fix) per rule; subclasses extend the list with their own."""
        return [
            (self.seconds > 0, "seconds must be > 0"),
            (self.lr > 0, "lr must be > 0"),
            (self.calibration_count >= 1, "calibration_count must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
        ]


def check_single_output(model: "Model", pass_name: str, instead: str) -> None:
    """Refuse a model with several outputs (distillation matches one (N, K) score tensor).

    Raises:
        PassError: naming the outputs and the pass to use ``instead``.
    """
    if len(model.output_names) != 1:
        raise PassError(f"pass {pass_name} trains single-output classifiers, {model.name} has outputs "
                        f"{model.output_names}: use {instead} instead")


def train_student(student: "torch.nn.Module", teacher: "torch.nn.Module", data: np.ndarray,
                  labels: np.ndarray | None, budget: TrainingBudget, *,
                  clock: Callable[[], float] = time.perf_counter) -> DistillResult:
    """Distil ``teacher`` into ``student`` for ``budget.seconds`` (:func:`.distiller.distill`).

    Args:
        student, teacher: torch modules taking ``data``'s shape; BatchNorm already folded
            into the student (there is none left to train).
        data: float32 (N, C, H, W) preprocessed images.
        labels: optional int (N',) class indices of the first N' images (N' >= N; cut
            to N); with them the loss adds cross-entropy and accuracy picks the weights.
        budget: the pass's settings.
        clock: seconds clock the budget is counted on (tests inject one).

    Returns:
        the :class:`DistillResult` (its ``student`` holds the best held-out weights, the
        start included).
    """
    from .distiller import distill

    y = None if labels is None else np.asarray(labels)[:len(data)]
    train, val, y_train, y_val = hold_out(data, y, budget.val_fraction, budget.seed)
    return distill(student, teacher, train, labels=y_train, val_images=val, val_labels=y_val,
                   config=distill_config(budget), clock=clock)


def distill_config(budget: TrainingBudget) -> DistillConfig:
    """The :class:`DistillConfig` of :func:`train_student`: ``budget``'s settings, no
    early stop at a target agreement (the budget is the user's to spend), no progress bar."""
    return DistillConfig(lr=budget.lr, time_budget_s=budget.seconds, batch_size=budget.batch_size,
                         target_agreement=None, max_epochs=budget.max_epochs, val_fraction=budget.val_fraction,
                         seed=budget.seed, progress=False)
