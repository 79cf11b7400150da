"""The data of a distillation: checked image and label tensors, and the held-out split."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import DataError

if TYPE_CHECKING:
    import torch

# Fewer held-out images than this make the agreement too coarse to steer by: then all
# images serve both for training and for the agreement.
_MIN_VAL_IMAGES = 10


def as_tensor(arr: Any, what: str, like: tuple[int, ...] | None = None) -> "torch.Tensor":
    """``arr`` as a float32 tensor (N, ...), N >= 1, finite; (N, ``like``) when given.

    Raises:
        DataError: wrong rank, empty, not floating point, another shape than ``like``,
            or NaN/inf (``what`` names the array in the message).
    """
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


def as_labels(labels: Any, n: int, k: int, what: str) -> "torch.Tensor":
    """``labels`` as an int64 tensor (n,) of class indices in [0, k).

    Raises:
        DataError: not one integer label per image, or a label out of range.
    """
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


def training_tensors(images: np.ndarray, val_images: np.ndarray | None,
                     val_labels: np.ndarray | None) -> tuple["torch.Tensor", "torch.Tensor"]:
    """(training images, validation images) as float32 tensors; the training images
    serve as validation images when none are given.

    Raises:
        DataError: see :func:`as_tensor`; ``val_labels`` without ``val_images``.
    """
    x = as_tensor(images, "training images")
    xv = x if val_images is None else as_tensor(val_images, "validation images", tuple(x.shape[1:]))
    if val_images is None and val_labels is not None:
        raise DataError("val_labels given without val_images: pass both or neither")
    return x, xv


def hold_out(data: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int
             ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Split images (and labels) into a training and a held-out validation part.

    ``round(N * fraction)`` images, chosen by a permutation drawn from
    ``np.random.default_rng(seed)``, are held out; when that is fewer than 10 images or
    leaves no training image, nothing is held out (the caller then validates on the
    training images).

    Returns:
        (train images, validation images or None, train labels, validation labels),
        labels None when ``labels`` is None.
    """
    n = data.shape[0]
    n_val = int(round(n * fraction))
    y = None if labels is None else np.asarray(labels)
    if not (n_val >= _MIN_VAL_IMAGES and n - n_val >= 1):
        return data, None, y, None
    perm = np.random.default_rng(seed).permutation(n)
    train, val = data[perm[n_val:]], data[perm[:n_val]]
    if y is None:
        return train, val, None, None
    return train, val, y[perm[n_val:]], y[perm[:n_val]]
