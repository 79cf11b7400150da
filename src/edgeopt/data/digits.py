"""scikit-learn's handwritten digits as an ImageSet with one fixed train/test split.

The data are the 1,797 8x8 scans of the UCI "Optical Recognition of Handwritten Digits"
test set (Alpaydin & Kaynak, 1998) that scikit-learn ships (``sklearn.datasets.
load_digits``; no download). Each pixel counts the set pixels of a 4x4 block of the
original 32x32 bitmap, 0..16. :func:`digits_set` is the only place the split is made:
training of the zoo's digits models and every evaluation of them call it.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import DataError
from .images import ImageSet

DIGIT_CLASSES = tuple(str(d) for d in range(10))
TRAIN_FRACTION = 0.8


@functools.lru_cache(maxsize=1)
def _scans() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 block counts -> 0..255 gray levels, so the usual 1/255 scaling applies.
    images = np.rint(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    images.setflags(write=False)
    labels = bunch.target.astype(np.int64)
    labels.setflags(write=False)
    return images, labels


def digits_set(split: str = "test", *, seed: int = 0) -> ImageSet:
    """The scikit-learn digits, whole or one part of the fixed stratified split.

    Args:
        split: "train" (80%, 1,438 scans), "test" (20%, 359 scans) or "all" (1,797).
        seed: seed of the split (numpy ``default_rng``); the zoo models are trained on
            ``seed=0``, so evaluate them on the test part of seed 0.

    Returns:
        an ImageSet of 8x8 uint8 gray images (0..16 scaled to 0..255, i.e. x * 255/16
        rounded), labels 0..9, classes "0".."9", names ``digit-<index in load_digits>``.
        The split is :meth:`ImageSet.split` at 0.8: per class, so both parts keep the
        class balance; the same seed gives the same parts on every machine.

    Raises:
        DataError: ``split`` is not "train", "test" or "all".
    """
    if split not in ("train", "test", "all"):
        raise DataError(f"unknown digits split {split!r}: pass 'train', 'test' or 'all'")
    images, labels = _scans()
    full = ImageSet(
        images=[np.array(img) for img in images],
        labels=labels.tolist(),
        names=[f"digit-{i}" for i in range(len(images))],
        classes=list(DIGIT_CLASSES),
    )
    if split == "all":
        return full
    train, test = full.split(TRAIN_FRACTION, seed=seed)
    return train if split == "train" else test
