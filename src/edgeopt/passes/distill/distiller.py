"""Knowledge distillation of one torch module into another: :func:`distill`."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from ...errors import DataError, PassError
from .batchnorm import bn_mode
from .config import DistillConfig, DistillResult
from .data import as_labels, training_tensors
from .taps import FeatureTap, LogitTap, closing
from .training import TrainSetup, probe_lr, train

if TYPE_CHECKING:
    import torch


def distill(student: "torch.nn.Module", teacher: "torch.nn.Module", images: np.ndarray, *,
            labels: np.ndarray | None = None, val_images: np.ndarray | None = None,
            val_labels: np.ndarray | None = None,
            config: DistillConfig = DistillConfig(),
            clock: Callable[[], float] = time.perf_counter) -> DistillResult:
    """Train ``student`` to reproduce ``teacher`` on ``images`` (knowledge distillation).

    The teacher runs in eval mode under ``torch.no_grad`` and is returned as it came
    (weights, buffers, mode; no hook left). The student is trained in place with AdamW
    and returned in eval mode. Both must output class scores (N, K, ...) with the same
    shape; logits or probabilities (see :mod:`.taps`).

    Args:
        student: torch.nn.Module to train (e.g. the pruned network).
        teacher: torch.nn.Module to imitate (e.g. the original network).
        images: float32 (N, C, H, W) preprocessed training images (no labels needed).
        labels: optional int (N,) class indices; adds cross-entropy (weight 1 - alpha).
        val_images: float32 (M, C, H, W) held-out images for top-1 agreement with the
            teacher; None = the (un-augmented) training images, which overstate it.
        val_labels: optional int (M,) labels of ``val_images`` for top-1 accuracy.
        config: a :class:`~.config.DistillConfig`.
        clock: monotonic clock in seconds that ``config.time_budget_s`` is counted on
            (tests inject one).

    Returns:
        a :class:`~.config.DistillResult` with the student, the history and why it stopped.

    Raises:
        DataError: images/labels of the wrong shape, dtype or range, or non-finite.
        PassError: student and teacher are the same object, their outputs differ in
            shape, are not class scores, or a module fails on the images.
    """
    import torch

    if student is teacher:
        raise PassError("student and teacher are the same module: pass a copy as the student")
    x, xv = training_tensors(images, val_images, val_labels)
    bs = min(config.batch_size, x.shape[0])
    start = clock()
    with torch.random.fork_rng(devices=[]), _restoring_mode(teacher):
        torch.manual_seed(config.seed)  # dropout in the student; global state restored after
        teacher.eval()
        t_tap = LogitTap(teacher, x[:bs], "teacher")
        s_tap = LogitTap(student, x[:bs], "student")
        with closing(t_tap, s_tap):
            y, yv = _labels(t_tap, s_tap, labels, val_labels, x.shape[0], xv.shape[0])
            f_taps: tuple[Any, Any] = (None, None)
            if config.feature_mse > 0:
                f_taps = (FeatureTap(teacher, config.feature_layer, x[:bs], "teacher"),
                          FeatureTap(student, config.feature_layer, x[:bs], "student"))
            with closing(*f_taps):
                setup = TrainSetup(student, t_tap, s_tap, f_taps, x, y, xv, yv,
                                   bn=bn_mode(config, x.shape[0]),
                                   flip=config.flip if config.flip is not None else labels is None)
                result = _probe_then_train(setup, config, start, clock)
    result.output_mode = (t_tap.mode, s_tap.mode)
    return result


def _labels(t_tap: LogitTap, s_tap: LogitTap, labels: Any, val_labels: Any, n: int, n_val: int
            ) -> tuple["torch.Tensor | None", "torch.Tensor | None"]:
    """Check that teacher and student outputs match and fit the labels; the label tensors.

    Raises:
        PassError: the outputs differ in shape.
        DataError: labels for outputs that are not (N, K), or labels that do not fit.
    """
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
    y = None if labels is None else as_labels(labels, n, k, "labels")
    yv = None if val_labels is None else as_labels(val_labels, n_val, k, "val_labels")
    return y, yv


def _probe_then_train(setup: TrainSetup, config: DistillConfig, start: float,
                      clock: Callable[[], float]) -> DistillResult:
    """The learning-rate probe when ``config.lr_probe`` asks for one, then the main run."""
    probe: list[tuple[float, float]] = []
    main_start = start
    if config.lr_probe:
        config, probe = probe_lr(setup, config, start, clock)
        main_start = clock()  # config.time_budget_s is now what is left
    result = train(setup, config, start=main_start, clock=clock)
    result.lr, result.lr_probe = config.lr, probe
    return result


@contextlib.contextmanager
def _restoring_mode(module: "torch.nn.Module") -> Iterator[None]:
    mode = module.training
    try:
        yield
    finally:
        module.train(mode)
