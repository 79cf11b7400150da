"""A folder of ``.npy`` / ``.npz`` files as a :class:`~edgeopt.data.samples.SampleSet`: one
sample per file, already in the model's input form (features, spectrograms, token ids,
several inputs).

- ``NAME.npz``: one array per input name (``numpy.savez(path, input_ids=..., mask=...)``);
- ``NAME.npy``: the one array of a model with a single per-sample input;
- each array at the input's shape without its batch axis, or at batch 1 (the axis of
  size 1 is dropped), e.g. (1, 16000) or (1, 1, 16000) for an input N x 1 x 16000; cast
  to the input's dtype within its kind (float64 -> float32, never float -> int);
- ``fixed.npz`` beside the samples: inputs fed with every batch (a recurrent state at its
  shape, or at batch 1 for a state with a batch axis);
- labels: class sub-folders, ``labels.json`` or ``labels.npy``
  (:mod:`edgeopt.data.folders`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import DataError
from .feeds import as_sample, check_samples, match_names
from .folders import FIXED_FILE, Layout, folder_layout, load_arrays, read_fixed, read_label_file
from .samples import SampleSet

if TYPE_CHECKING:
    from ..model import Model

log = logging.getLogger(__name__)

SAMPLE_EXTENSIONS = (".npy", ".npz")


def load_sample_folder(path: str | Path, model: "Model") -> SampleSet:
    """Read a folder of ``.npy``/``.npz`` samples for ``model`` (see the module docstring).

    Args:
        path: the folder.
        model: the model the samples feed (input names, shapes, dtypes, class names).

    Returns:
        a SampleSet (names: paths relative to ``path`` without the extension; classes:
        the class names when sub-folders give labels).

    Raises:
        DataError: one line naming the bad folder or file: missing folder, no sample,
            samples next to class sub-folders, an unreadable file, a ``.npy`` for a model
            with several per-sample inputs, an array of another shape or dtype, an array
            named after no input, an input no file holds, or labels that do not fit.
    """
    layout = folder_layout(path, SAMPLE_EXTENSIONS, "sample", class_names=model.labels)
    fixed = read_fixed(layout.root)
    specs = {s.name: s for s in model.inputs}
    for name in fixed:
        if name not in specs:
            raise DataError(f"{layout.root / FIXED_FILE} holds {name!r}, not an input of {model.name} "
                            f"({', '.join(specs)}): name its arrays after the model's inputs")
        fixed[name] = np.asarray(fixed[name])
    per_sample = [s for s in model.inputs if s.name not in fixed]
    if not per_sample:
        raise DataError(f"{layout.root / FIXED_FILE} holds every input of {model.name}: leave the "
                        f"per-sample inputs to the sample files")
    columns: dict[str, list[np.ndarray]] = {s.name: [] for s in per_sample}
    for f in layout.files:
        arrays = _read(f, per_sample, model.name)
        for spec in per_sample:
            columns[spec.name].append(as_sample(arrays[spec.name], spec, str(f)))
    samples = _sample_set(layout, {k: np.stack(v) for k, v in columns.items()}, fixed)
    check_samples(samples, model)
    if layout.ignored:
        log.warning("%s: ignored %d file(s) that are not .npy/.npz samples", layout.root, layout.ignored)
    return samples


def _sample_set(layout: Layout, inputs: dict[str, np.ndarray], fixed: dict[str, np.ndarray]) -> SampleSet:
    """The SampleSet of a folder's arrays, with its class or label-file labels."""
    labels = layout.labels if layout.labels is not None else read_label_file(layout)
    return SampleSet(inputs=inputs, labels=labels, names=layout.names(), fixed=fixed, classes=layout.classes)


def _read(path: Path, per_sample: list, model_name: str) -> dict[str, np.ndarray]:
    """{input name: array} of one sample file."""
    names = [s.name for s in per_sample]
    arrays = load_arrays(path)
    if isinstance(arrays, np.ndarray):
        if len(per_sample) != 1:
            raise DataError(f"{path} is one array, {model_name} takes inputs {', '.join(names)} per sample: "
                            f"save one .npz per sample with an array per input (numpy.savez)")
        return {names[0]: arrays}
    unknown, missing = match_names(arrays, names)
    if unknown:
        raise DataError(f"{path} holds {', '.join(unknown)}, not per-sample inputs of {model_name} "
                        f"({', '.join(names)}): name the arrays after the inputs")
    if missing:
        raise DataError(f"{path} has no array for input(s) {', '.join(missing)} of {model_name}: add them, "
                        f"or put inputs shared by every sample in {FIXED_FILE}")
    return arrays

