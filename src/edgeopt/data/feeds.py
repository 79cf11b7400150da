"""A :class:`~edgeopt.data.samples.SampleSet` against one model: its checks, the feeds of
each forward pass, and the calibration data of the passes.

Sample i of an input is the input without its batch axis; a feed of b samples puts them on
the input's batch axis (``np.moveaxis``), an input with no batch axis gets one sample per
pass, and a fixed input (a recurrent state) is fed whole with every pass, repeated along
its batch axis when it has one (a state 2x1x128 with ``:batch=1`` becomes 2xbx128).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Iterator, Sequence, Union

import numpy as np

from ..errors import DataError, EdgeoptError
from .samples import SampleSet

if TYPE_CHECKING:
    from ..shapes import InputSpec
    from ..model import Model
    from .images import ImageSet

Calibration = Union[np.ndarray, "dict[str, np.ndarray]"]


def as_sample(array: np.ndarray, spec: "InputSpec", where: str) -> np.ndarray:
    """One sample of ``spec`` from an array of its sample shape, or of its shape at batch
    1 (the batch axis of size 1 is dropped), cast to the input's dtype.

    Args:
        array: the array as read.
        spec: the model input it feeds.
        where: names the array in messages (a file, "fixed.npz").

    Raises:
        DataError: another shape, or a dtype that does not cast to the input's within its
            kind (float data for an integer input).
    """
    arr = np.asarray(array)
    shape = tuple(arr.shape)
    if shape != spec.sample_shape:
        if spec.batch_axis is not None and shape == tuple(spec.shape):
            arr = arr.reshape(spec.sample_shape)
        else:
            raise DataError(f"{where} holds {_fmt(shape)} for input {spec.name!r}, which takes "
                            f"{_fmt(spec.sample_shape)} per sample ({spec.describe()} batched): "
                            f"save each sample at that shape")
    return _cast(arr, spec, where)


def _cast(arr: np.ndarray, spec: "InputSpec", where: str) -> np.ndarray:
    if not np.can_cast(arr.dtype, spec.dtype, casting="same_kind"):
        raise DataError(f"{where} holds {arr.dtype} for input {spec.name!r}, which takes {spec.dtype}: "
                        f"save it as {spec.dtype}")
    return arr.astype(spec.dtype, copy=False)


def match_names(given: Iterable[str], expected: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the names in ``given`` that are not expected, the expected names not given), each
    in its own order: what a one-line error about arrays named after inputs lists."""
    given = list(given)
    return [k for k in given if k not in expected], [k for k in expected if k not in given]


def check_samples(samples: SampleSet, model: "Model") -> None:
    """That ``samples`` feed every input of ``model``, each at its shape and dtype.

    Raises:
        DataError: an input is missing or unknown to the model, a sample or fixed array
            has another shape, or a dtype that does not cast to the input's.
    """
    specs = {s.name: s for s in model.inputs}
    unknown, missing = match_names([*samples.inputs, *samples.fixed], list(specs))
    if unknown:
        raise DataError(f"the samples name input(s) {', '.join(unknown)}, {model.name} takes "
                        f"{', '.join(specs)}: name the arrays after the model's inputs")
    if missing:
        raise DataError(f"no data for input(s) {', '.join(missing)} of {model.name}: add them to every "
                        f"sample, or as fixed inputs (fixed.npz beside the samples)")
    for name, arr in samples.inputs.items():
        spec = specs[name]
        if tuple(arr.shape[1:]) != spec.sample_shape:
            raise DataError(f"samples of input {name!r} are {_fmt(arr.shape[1:])}, {model.name} takes "
                            f"{_fmt(spec.sample_shape)} per sample ({spec.describe()} batched): "
                            f"reshape them or reload the model with --shape")
        _cast(arr[:0], spec, f"the samples of {name!r}")
    for name, arr in samples.fixed.items():
        spec = specs[name]
        if tuple(arr.shape) != tuple(spec.shape):
            raise DataError(f"fixed input {name!r} is {_fmt(arr.shape)}, {model.name} takes "
                            f"{_fmt(spec.shape)} (at batch 1): give it that shape")
        _cast(arr, spec, f"fixed input {name!r}")


def samples_per_call(model: "Model", batch: int) -> int:
    """Samples in one forward pass: the batch the graph fixes (1 for a model with no
    batch-first input: an input without a batch axis, or a batch on another axis, takes one
    sample per pass), else ``batch``."""
    fixed = model.fixed_batch
    if fixed is not None:
        return fixed
    return batch if any(s.batch_axis == 0 for s in model.inputs) else 1


def sample_feeds(samples: SampleSet, model: "Model", batch: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """The feeds of ``model`` for ``samples``, in order, ``batch`` samples at a time.

    A graph that fixes its batch at b gets exactly b samples per pass: the last pass is
    filled up by repeating its last sample, and the caller keeps the first n outputs.

    Args:
        samples: checked against ``model`` first (:func:`check_samples`).
        model: the model fed.
        batch: samples per pass when the model runs at any batch (see
            :func:`samples_per_call`).

    Yields:
        (feeds {input name: array at the input's dtype}, n real samples in them).

    Raises:
        DataError: see :func:`check_samples`; ``batch`` < 1.
    """
    if batch < 1:
        raise DataError(f"batch must be >= 1, not {batch}: pass a positive batch size")
    check_samples(samples, model)
    per_call = samples_per_call(model, batch)
    pad = model.fixed_batch is not None
    specs = {s.name: s for s in model.inputs}
    for start in range(0, len(samples), per_call):
        idx = np.arange(start, min(start + per_call, len(samples)))
        n = len(idx)
        if pad and n < per_call:
            idx = np.concatenate([idx, np.full(per_call - n, idx[-1])])
        feeds = {}
        for name, arr in samples.inputs.items():
            spec = specs[name]
            chunk = arr[idx].astype(spec.dtype, copy=False)
            feeds[name] = chunk[0] if spec.batch_axis is None else np.moveaxis(chunk, 0, spec.batch_axis)
        for name, arr in samples.fixed.items():
            spec = specs[name]
            arr = arr.astype(spec.dtype, copy=False)
            feeds[name] = arr if spec.batch_axis is None else np.repeat(arr, len(idx), axis=spec.batch_axis)
        yield feeds, n


def calibration_data(model: "Model", data: "ImageSet | SampleSet") -> Calibration:
    """The calibration data of the passes for ``model``.

    - images: the images through ``model.preprocess``, float32 (N, C, H, W);
    - samples of a model with one input, batch-first: that input's array (N, ...), e.g.
      (N, 1, 16000) for a 1-D audio model, at its dtype;
    - samples of any other model: {input name: array}, each per-sample input (N, *sample
      shape) and each fixed input at its shape. No pass calibrates such a model yet: they
      refuse it with one line (:func:`edgeopt.passes.base.check_calibration`).

    Raises:
        EdgeoptError: images for a model without preprocessing; DataError: samples that
            do not fit the model (:func:`check_samples`), an empty image set.
    """
    if not isinstance(data, SampleSet):
        if model.preprocess is None:
            raise EdgeoptError(f"{model.name} has no image preprocessing: set model.preprocess "
                               f"(CLI: --mean/--std/--channels), or give it samples (--inputs DIR)")
        return data.tensor(model.preprocess)
    check_samples(data, model)
    specs = {s.name: s for s in model.inputs}
    arrays = {k: v.astype(specs[k].dtype, copy=False) for k, v in data.inputs.items()}
    if len(model.inputs) == 1 and model.inputs[0].batch_axis == 0:
        return next(iter(arrays.values()))
    return {**arrays, **{k: v.astype(specs[k].dtype, copy=False) for k, v in data.fixed.items()}}


def class_labels(data: "ImageSet | SampleSet") -> np.ndarray | None:
    """The class indices of ``data``, int64 (N,), or None when it has none (unlabeled, or
    labels of another form: a regressor's targets, a sequence's text)."""
    labels = data.label_array
    if labels is None or labels.ndim != 1 or labels.dtype.kind not in "iu":
        return None
    return labels.astype(np.int64, copy=False)


def stack_outputs(chunks: Sequence[list[np.ndarray]], counts: Sequence[int], batch_first: bool) -> list[np.ndarray]:
    """Every output over all passes, samples first: (N, ...).

    Args:
        chunks: the outputs of each pass, in graph order.
        counts: real samples of each pass (the rest filled a fixed batch).
        batch_first: the outputs hold the batch on axis 0 (concatenated, filler rows
            dropped); else each pass ran one sample, and its outputs are stacked on a new
            axis 0.
    """
    if not batch_first:
        return [np.stack([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    return [np.concatenate([c[i][:n] for c, n in zip(chunks, counts)], axis=0) for i in range(len(chunks[0]))]


def _fmt(shape: Sequence[int]) -> str:
    return "x".join(map(str, shape)) or "a scalar"
