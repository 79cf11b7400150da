"""Model inputs that are not (only) images: one array per input name for each sample.

A :class:`SampleSet` holds N samples already in the model's input form (preprocessed:
audio waveforms or spectrograms, feature vectors, several inputs per sample, a recurrent
state beside the data). The runner feeds it as is, where an image set goes through the
model's :class:`~edgeopt.preprocess.Preprocess` first. Labels are whatever the task's
evaluator reads (class indices for a classifier, arrays for a regressor, strings for a
sequence model, boxes for a detector), one per sample.

Sample i of an input is ``inputs[name][i]``: the input's shape without its batch axis
(:attr:`edgeopt.shapes.InputSpec.sample_shape`), so for the usual batch-first input the
array is the batch itself, (N, C, H, W) or (N, 1, T). How a set becomes the feeds of one
model (the batch on each input's axis, fixed inputs repeated) is
:func:`edgeopt.data.feeds.sample_feeds`; folders are read by
:func:`edgeopt.data.sample_folder.load_sample_folder` (``.npy``/``.npz``) and
:func:`edgeopt.data.audio.load_audio_folder` (``.wav``/``.flac``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import DataError


@dataclass
class SampleSet:
    """N samples, one array per model input.

    Attributes:
        inputs: {input name: array of shape (N, *sample shape)}: sample i is
            ``inputs[name][i]``, the input without its batch axis (for a batch-first input
            the array is the batch, (N, ...)); every array has the same N.
        labels: N labels in the task's form, or None.
        names: N display names, unique within the set.
        fixed: {input name: array} fed with every batch (a recurrent state, a constant
            mask): an input with no batch axis at its shape; one with a batch axis at
            batch 1, repeated along that axis to each batch's size.
        classes: class names that integer labels index, or None.

    Raises:
        DataError: no input, arrays of different N, N = 0, or labels/names of another
            length.
    """

    inputs: dict[str, np.ndarray]
    labels: Sequence[Any] | None = None
    names: list[str] = field(default_factory=list)
    fixed: dict[str, np.ndarray] = field(default_factory=dict)
    classes: list[str] | None = None

    def __post_init__(self) -> None:
        if not self.inputs:
            raise DataError("a sample set needs at least one input array: pass {input name: (N, ...) array}")
        self.inputs = {k: np.asarray(v) for k, v in self.inputs.items()}
        counts = {k: (v.shape[0] if v.ndim else 0) for k, v in self.inputs.items()}
        n = next(iter(counts.values()))
        if n == 0 or any(c != n for c in counts.values()):
            raise DataError(f"input arrays hold {counts} samples: give every input the same N >= 1 "
                            f"along its first axis")
        if not self.names:
            self.names = [f"{i:05d}" for i in range(n)]
        if len(self.names) != n:
            raise DataError(f"{len(self.names)} names for {n} samples: pass one name per sample")
        if self.labels is not None and len(self.labels) != n:
            raise DataError(f"{len(self.labels)} labels for {n} samples: pass one label per sample")
        self.fixed = {k: np.asarray(v) for k, v in self.fixed.items()}
        both = sorted(set(self.inputs) & set(self.fixed))
        if both:
            raise DataError(f"input(s) {', '.join(both)} are both per-sample and fixed: give each input "
                            f"one way")

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, indices: Sequence[int]) -> "SampleSet":
        """The samples at ``indices``, in that order (fixed inputs shared)."""
        idx = list(indices)
        return SampleSet(inputs={k: v[idx] for k, v in self.inputs.items()},
                         labels=None if self.labels is None else [self.labels[i] for i in idx],
                         names=[self.names[i] for i in idx], fixed=self.fixed, classes=self.classes)

    def split(self, fraction: float, *, seed: int = 0) -> tuple["SampleSet", "SampleSet"]:
        """(a random ``fraction`` of the samples, the rest), both non-empty when N >= 2.

        Raises:
            DataError: fraction outside (0, 1) or fewer than 2 samples.
        """
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction {fraction} is outside (0, 1): pass e.g. 0.3")
        n = len(self)
        if n < 2:
            raise DataError(f"{n} sample cannot be split into calibration and held-out parts: give at least 2")
        order = np.random.default_rng(seed).permutation(n)
        k = min(n - 1, max(1, round(fraction * n)))
        return self.subset(sorted(order[:k])), self.subset(sorted(order[k:]))

    @property
    def label_array(self) -> np.ndarray | None:
        """Labels as one array (N, ...) (int64 class indices for a classifier), or None
        when unlabeled or when the labels are not of one shape (strings, box lists)."""
        if self.labels is None:
            return None
        try:
            arr = np.asarray(self.labels)
        except ValueError:  # ragged
            return None
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
            return None
        return arr.astype(np.int64) if np.issubdtype(arr.dtype, np.integer) else arr

    def batches(self, batch: int) -> Iterator[dict[str, np.ndarray]]:
        """Feeds of up to ``batch`` samples, in order: {input name: (b, ...) array} plus the
        fixed inputs, for batch-first inputs (a model's own axes:
        :func:`edgeopt.data.feeds.sample_feeds`)."""
        n = len(self)
        for start in range(0, n, batch):
            feed = {k: v[start:start + batch] for k, v in self.inputs.items()}
            feed.update(self.fixed)
            yield feed
