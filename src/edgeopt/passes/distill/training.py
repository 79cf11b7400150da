"""The distillation training loop: one run of AdamW at a fixed learning rate, and the
learning-rate probe that picks among several.

A run evaluates the student before training (epoch 0), then goes epoch by epoch over a
fresh permutation of the training images (the last partial batch dropped), evaluates
every ``eval_every`` epochs, and stops at ``max_epochs``, at the time budget, at
``target_agreement``, or when its agreement plateaus far below ``need_agreement``
(:mod:`.plateau`). The budget is a :class:`~edgeopt._util.deadline.Deadline`: before
each step the loop asks for the longest step so far plus the longest evaluation so far
(x 1.2), and stops when they would not end within the budget, so the final evaluation
fits too. The loss is Hinton et al.'s KD term
(:func:`kd_loss`), with hard labels ``alpha * KD + (1 - alpha) * CE``, plus the optional
FitNets hint ``feature_mse * MSE``.

Randomness, for repeatable runs: the permutations come from ``np.random.default_rng(seed)``,
the augmentation from a ``torch.Generator`` seeded with ``seed``, dropout from torch's
global generator (seeded by the caller).
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..._util.deadline import Deadline
from ..._util.progress import progress_bar
from .augment import augment_batch
from .batchnorm import recalibrate_bn, set_train
from .config import DistillConfig, DistillResult
from .plateau import Plateau
from .taps import FeatureTap, LogitTap, check_feature_shapes

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TrainSetup:
    """What every training run of one distillation shares (the probe's and the main one).

    Attributes:
        student: the ``torch.nn.Module`` trained in place.
        teacher: :class:`~.taps.LogitTap` of the teacher (called under no_grad).
        student_logits: :class:`~.taps.LogitTap` of the student.
        features: (teacher, student) :class:`~.taps.FeatureTap` of the hint term, or
            (None, None) without it.
        x: float32 (N, C, H, W) training images; y: int64 (N,) labels or None.
        xv: float32 (M, C, H, W) validation images; yv: int64 (M,) labels or None.
        bn: "train", "freeze" or "recalibrate" ("auto" already resolved).
        flip: horizontal flips in the augmentation.
    """

    student: Any
    teacher: LogitTap
    student_logits: LogitTap
    features: tuple[FeatureTap | None, FeatureTap | None]
    x: "torch.Tensor"
    y: "torch.Tensor | None"
    xv: "torch.Tensor"
    yv: "torch.Tensor | None"
    bn: str
    flip: bool


def train(setup: TrainSetup, config: DistillConfig, *, start: float,
          clock: Callable[[], float] = time.perf_counter) -> DistillResult:
    """Train ``setup.student`` as ``config`` says; the budget counts from ``start`` on
    ``clock`` (seconds, monotonic; tests inject one).

    Returns:
        a :class:`~.config.DistillResult` (``lr``, ``lr_probe`` and ``output_mode`` left
        to the caller); the student is left in eval mode, at the best weights when
        ``config.restore_best``.
    """
    run = _Run(setup, config, Deadline(config.time_budget_s, clock=clock, start=start))
    # The bar counts seconds of the budget: training ends at the budget long before the
    # epochs run out, so steps would fill a fraction of it.
    with progress_bar("distill", max(1, round(config.time_budget_s)), enabled=config.progress) as bar:
        run.epochs(bar)
    return run.finish()


def probe_lr(setup: TrainSetup, config: DistillConfig, start: float,
             clock: Callable[[], float] = time.perf_counter) -> tuple[DistillConfig, list]:
    """Train from the same start with each of ``config.lr_probe`` for an equal share of
    the probe time; leave the student at the best one's weights.

    Returns:
        (config with that ``lr`` and the budget left, [(lr, validation score), ...]).
    """
    student, run = setup.student, functools.partial(train, setup)
    init = snapshot(student)
    share = config.time_budget_s * config.probe_share / len(config.lr_probe)
    trials = []
    for lr in config.lr_probe:
        student.load_state_dict(init)
        short = dataclasses.replace(config, lr=lr, time_budget_s=share, target_agreement=None,
                                    need_agreement=None, restore_best=False, progress=False, lr_probe=())
        h = run(short, start=clock(), clock=clock).history[-1]
        score = h["val_accuracy"] if h["val_accuracy"] is not None else h["val_agreement"]
        trials.append((lr, score, snapshot(student)))
    lr, _, weights = max(trials, key=lambda t: t[1])
    student.load_state_dict(weights)
    # What is left, never 0 (a config needs a positive budget); the main run then stops
    # before its first step instead of overrunning.
    left = max(1e-3, config.time_budget_s - (clock() - start))
    return (dataclasses.replace(config, lr=lr, time_budget_s=left, lr_probe=()),
            [(t[0], t[1]) for t in trials])


class _Run:
    """The state of one :func:`train` call: optimizer, random sources, history, best
    weights; its methods are the loop's phases in the order they run."""

    def __init__(self, setup: TrainSetup, config: DistillConfig, deadline: Deadline) -> None:
        import torch

        self.setup, self.config, self.deadline = setup, config, deadline
        n = setup.x.shape[0]
        self.bs, self.ev_bs = min(config.batch_size, n), max(config.batch_size, 64)
        self.freeze_bn = setup.bn != "train"
        self._prepare()
        self.score_key = "val_agreement" if setup.yv is None else "val_accuracy"
        self.plateau = None if config.need_agreement is None else Plateau(
            config.need_agreement, patience=config.plateau_patience, epsilon=config.plateau_epsilon)
        self.result = DistillResult(student=setup.student, history=[self.evaluate(0, 0, None)])
        # (score, epoch, weights, step) of the best evaluation
        self.best = (self.result.history[0][self.score_key], 0,
                     snapshot(setup.student) if config.restore_best else None, 0)
        self.opt = torch.optim.AdamW(setup.student.parameters(), lr=config.lr,
                                     weight_decay=config.weight_decay)
        self.gen = torch.Generator().manual_seed(config.seed)
        self.rng = np.random.default_rng(config.seed)
        # Drop the last partial batch: a batch of 1 breaks BatchNorm1d in train mode, and
        # small tail batches give noisy steps; shuffling changes which images it holds.
        self.steps_per_epoch = max(1, n // self.bs)
        self.stopped, self.step, self.losses = "epochs", 0, []
        self._give_up(self.result.history[0])
        set_train(setup.student, self.freeze_bn)

    def _prepare(self) -> None:
        """BatchNorm recalibration, the teacher's validation classes, its cached training
        outputs, and the hint features' shape check."""
        s = self.setup
        if s.bn == "recalibrate":
            recalibrate_bn(s.student, s.x, self.ev_bs)
        self.val_target = predict(s.teacher, s.xv, self.ev_bs).argmax(1)
        # Without augmentation the teacher's outputs never change: compute them once (not
        # with feature_mse, whose hook needs the teacher to run on every batch).
        cache = not self.config.augment and s.features[0] is None
        self.teacher_train = predict(s.teacher, s.x, self.ev_bs) if cache else None
        f_t, f_s = s.features
        if f_t is not None:
            check_feature_shapes(f_t, f_s, s.student, s.teacher, s.x[:1])

    def evaluate(self, epoch: int, step: int, loss: float | None) -> dict:
        """One history entry: agreement (and accuracy with labels) on the validation images."""
        with self.deadline.step("evaluation"):
            return self._evaluate(epoch, step, loss)

    def _evaluate(self, epoch: int, step: int, loss: float | None) -> dict:
        s = self.setup
        s.student.eval()
        pred = predict(s.student_logits, s.xv, self.ev_bs).argmax(1)
        set_train(s.student, self.freeze_bn)
        agree = 100.0 * float((pred == self.val_target).float().mean())
        acc = None
        if s.yv is not None:
            acc = 100.0 * float((pred == s.yv).float().mean())
        return {"epoch": epoch, "step": step, "loss": loss, "val_agreement": agree,
                "val_accuracy": acc, "seconds": self.deadline.elapsed()}

    def reached(self, h: dict) -> bool:
        return self.config.target_agreement is not None and h["val_agreement"] >= self.config.target_agreement

    def _give_up(self, h: dict) -> None:
        """Feed the plateau rule one evaluation; stop (``stopped="plateau"``, with the
        note) when it says so."""
        if self.plateau is not None and self.plateau.update(h["val_agreement"], self.setup.xv.shape[0]):
            if self.stopped == "epochs":
                self.stopped = "plateau"
                self.result.note = self.plateau.note(h["seconds"])

    def _show(self, bar) -> None:
        """The progress line: seconds of the budget left, the agreement now and the best."""
        d = self.deadline
        bar.to(d.elapsed())
        h = self.result.history[-1]
        best = max(e["val_agreement"] for e in self.result.history)
        loss = f" · loss {self.losses[-1]:.4f}" if self.losses else ""
        bar.describe(f"{d.remaining():.0f} s left · agreement {h['val_agreement']:.1f}% "
                     f"(best {best:.1f}%){loss}")

    def epochs(self, bar) -> None:
        """Train epoch after epoch until the epochs, the budget or the target run out."""
        config = self.config
        if self.reached(self.result.history[0]):
            self.stopped = "target"
        epoch = 0
        while self.stopped == "epochs" and epoch < config.max_epochs:
            epoch += 1
            self._epoch(bar, epoch)
            if not self.losses:
                break  # stopped (budget, mid-epoch check): nothing new since the last evaluation
            if self.stopped == "budget" or self._due(epoch) or epoch == config.max_epochs:
                self._checkpoint(epoch, bar)

    def _due(self, epoch: int) -> bool:
        """An evaluation is due after this step (``eval_steps``) or epoch (``eval_every``)."""
        every = self.config.eval_steps
        return self.step % every == 0 if every else epoch % self.config.eval_every == 0

    def _epoch(self, bar, epoch: int) -> None:
        """One pass over a fresh permutation; stops early (``stopped="budget"``) before
        a step that, with the evaluation after it, would not end within the budget.
        With ``eval_steps``, evaluates inside the epoch too (its last step is left to
        :meth:`epochs`)."""
        import torch

        order = torch.from_numpy(self.rng.permutation(self.setup.x.shape[0]))
        d = self.deadline
        for b in range(self.steps_per_epoch):
            if not d.allows(d.estimate("step") + d.estimate("evaluation")):
                self.stopped = "budget"
                return
            with d.step("step"):
                self.losses.append(self._step(order[b * self.bs:(b + 1) * self.bs]))
            self._show(bar)
            if self.config.eval_steps and b < self.steps_per_epoch - 1 and self._due(epoch):
                self._checkpoint(epoch, bar)
                if self.stopped != "epochs":
                    return

    def _step(self, idx: "torch.Tensor") -> float:
        """One optimizer step on the images ``idx``; returns its loss."""
        import torch
        import torch.nn.functional as F

        s, config = self.setup, self.config
        f_t, f_s = s.features
        xb = s.x[idx]
        if config.augment:
            xb = augment_batch(xb, self.gen, flip=s.flip, translate=config.translate,
                               brightness=config.brightness, contrast=config.contrast)
        with torch.no_grad():
            tb = s.teacher(xb) if self.teacher_train is None else self.teacher_train[idx]
            ft = f_t.value if f_t is not None else None
        sb = s.student_logits(xb)
        loss = kd_loss(sb, tb, config.temperature)
        if s.y is not None:
            loss = config.alpha * loss + (1 - config.alpha) * F.cross_entropy(sb, s.y[idx])
        if f_s is not None:
            loss = loss + config.feature_mse * F.mse_loss(f_s.value, ft)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.step += 1
        return float(loss.detach())

    def _checkpoint(self, epoch: int, bar) -> None:
        """Evaluate, record, keep the best weights, and stop at the target agreement."""
        h = self.evaluate(epoch, self.step, float(np.mean(self.losses)) if self.losses else None)
        self.result.history.append(h)
        self._show(bar)
        self.losses = []
        key = self.score_key
        if self.config.restore_best and h[key] > self.best[0]:
            self.best = (h[key], epoch, snapshot(self.setup.student), self.step)
        elif not self.config.restore_best:
            self.best = (h[key], epoch, None, self.step)
        if self.stopped == "epochs" and self.reached(h):
            self.stopped = "target"
        self._give_up(h)

    def finish(self) -> DistillResult:
        """Restore the best weights (``restore_best``), eval mode, the result."""
        student = self.setup.student
        if self.config.restore_best and self.best[2] is not None:
            student.load_state_dict(self.best[2])
        self.result.best_epoch, self.result.best_step = self.best[1], self.best[3]
        self.result.stopped_because = self.stopped
        student.eval()
        return self.result


# -- pieces --------------------------------------------------------------------------------------
def _class_last(x: "torch.Tensor") -> "torch.Tensor":
    """(N, K, ...) -> (N * positions, K): one distribution per row."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def kd_loss(s: "torch.Tensor", t: "torch.Tensor", temperature: float) -> "torch.Tensor":
    """Hinton et al.'s KD = KL(softmax(t / T) || softmax(s / T)) * T^2, batch mean, over
    student logits ``s`` and teacher logits ``t`` (N, K, ...)."""
    import torch.nn.functional as F

    log_p_s = F.log_softmax(_class_last(s) / temperature, dim=1)
    log_p_t = F.log_softmax(_class_last(t) / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean") * temperature ** 2


def predict(fn: Callable, images: "torch.Tensor", batch_size: int) -> "torch.Tensor":
    """``fn`` over ``images`` in batches, under no_grad, concatenated."""
    import torch

    with torch.no_grad():
        return torch.cat([fn(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)])


def snapshot(module: "torch.nn.Module") -> dict:
    """A detached copy of ``module``'s state dict."""
    return {k: v.detach().clone() for k, v in module.state_dict().items()}
