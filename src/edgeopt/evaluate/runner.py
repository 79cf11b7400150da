"""Run a Model on images or samples through a backend and collect its outputs; find out by
running it whether its graph takes any batch."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Iterator

import numpy as np

from .._util.errorline import error_line
from ..analysis.memory import check_fits
from ..backends.ort import session_options
from ..backends.registry import get as get_backend, require
from ..data.feeds import sample_feeds, samples_per_call, stack_outputs
from ..data.samples import SampleSet
from ..errors import DataError, ShapeError
from ..shapes import BatchCheck

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from ..model import Model


def predict(model: "Model", backend: str, data: "ImageSet | SampleSet", *, batch: int = 8,
            threads: int = 2) -> np.ndarray:
    """The model's first output on every image or sample, in order (see :func:`predict_outputs`)."""
    return predict_outputs(model, backend, data, batch=batch, threads=threads)[0]


def predict_outputs(model: "Model", backend: str, data: "ImageSet | SampleSet", *, batch: int = 8,
                    threads: int = 2) -> list[np.ndarray]:
    """Every output of the model on every image or sample, in order.

    Images go through ``model.preprocess`` into its one input; a
    :class:`~edgeopt.data.samples.SampleSet` is fed as it is, one array per input, its
    fixed inputs with every pass (:func:`edgeopt.data.feeds.sample_feeds`). Passes hold
    ``batch`` samples (the last one fewer), except where the model decides:
    a graph that fixes its batch at b (:attr:`Model.fixed_batch`) gets b per pass, and a
    model with no batch-first input (no batch axis, or the batch on another axis) one.

    Args:
        model: the Model.
        backend: registry name, e.g. "ort", "openvino", "reference".
        data: the images or samples (labels are not used here).
        batch: samples per forward pass (>= 1) where the model runs at any batch.
        threads: intra-op threads of the backend session.

    Returns:
        one array per graph output, in the graph's order, samples first: (N, ...), e.g.
        (N, K) class scores for a classifier. Batch-first outputs are concatenated over
        the passes; a model run one sample per pass without a batch-first input has each
        output stacked on a new axis 0. dtype as the backend returns it.

    Raises:
        DataError: the set is empty, batch < 1, images for a model without a preprocess
            or with more than one input, or samples that do not fit the model.
        ShapeError: the preprocess makes a different image size than the model takes.
        BackendUnavailable: the backend is unknown, not installed or cannot load it.
    """
    if len(data) == 0:
        raise DataError("the set is empty: load at least one image or sample")
    if batch < 1:
        raise DataError(f"batch must be >= 1, not {batch}: pass a positive batch size")
    if isinstance(data, SampleSet):
        feeds = sample_feeds(data, model, batch)
        first = next(feeds)  # checks the samples before a session is prepared
    else:
        feeds = _image_feeds(model, data, batch)
        first = next(feeds)
    session = require(backend).prepare(model, threads=threads)
    chunks, counts = [], []
    try:
        for feed, n in _chain(first, feeds):
            chunks.append(session.run(feed))
            counts.append(n)
    finally:
        session.close()
    return stack_outputs(chunks, counts, batch_first=any(s.batch_axis == 0 for s in model.inputs))


def _chain(first, rest) -> Iterator:
    yield first
    yield from rest


def _image_feeds(model: "Model", images: "ImageSet", batch: int) -> Iterator[tuple[dict[str, np.ndarray], int]]:
    """Feeds of one image input through the preprocess, filled up to a fixed batch."""
    if model.preprocess is None:
        raise DataError(
            f"{model.name} has no preprocess: set model.preprocess = Preprocess(size=(H, W), ...), "
            f"or feed it samples (a SampleSet, --inputs DIR)"
        )
    if len(model.inputs) != 1 or model.inputs[0].batch_axis != 0:
        raise DataError(
            f"{model.name} has inputs {[s.describe() for s in model.inputs]}; images feed one "
            f"batch-first input: feed it samples (a SampleSet, --inputs DIR of .npy/.npz files)"
        )
    spec = model.inputs[0]
    first = model.preprocess(images.images[0])
    if tuple(first.shape) != tuple(spec.shape[1:]):
        raise ShapeError(
            f"the preprocess makes {tuple(first.shape)} but input {spec.name!r} of "
            f"{model.name} takes {tuple(spec.shape[1:])}: make the preprocess size match "
            f"the model input"
        )
    per_call = samples_per_call(model, batch)
    for x in images.batches(model.preprocess, per_call):
        n = len(x)
        if model.fixed_batch is not None and n < per_call:
            x = np.concatenate([x, np.repeat(x[-1:], per_call - n, axis=0)])
        yield {spec.name: x.astype(spec.dtype, copy=False)}, n


def check_batch(model: "Model", *, threads: int = 1, seed: int = 0) -> "Model":
    """``model`` with :attr:`Model.batch_check` set by running it on ONNX Runtime at
    batch 1 and batch 2 (random inputs, :meth:`Model.example_feeds`).

    The graph takes any batch when the batch-2 run succeeds, every output's leading dim
    doubles, and sample 0's outputs equal those of the batch-1 run (within 1e-3 of each
    output's range: kernels may sum in another order at another batch). Otherwise it is
    fixed at 1, with the reason: the batch-2 run fails (a Reshape to a literal (1, -1)
    meeting a Gemm), its outputs keep batch 1 (both samples packed into one row), or
    sample 0's outputs change with a second sample in the batch. This catches what
    :func:`edgeopt.shapes.find_fixed_batch` cannot see in the graph, and overrules it
    when the run shows the batch free.

    A model already checked by a run, one without a batch-first input (it runs one
    sample per pass: :func:`edgeopt.data.feeds.samples_per_call`), one whose batch-2 run
    would not fit in memory (:func:`edgeopt.analysis.memory.check_fits`), or one ONNX
    Runtime cannot run at batch 1 (its failure shows where it is first used) is returned
    as is.

    Args:
        model: the model (not modified).
        threads: ONNX Runtime intra-op threads.
        seed: seed of the random inputs.

    Returns:
        a copy of ``model`` with ``batch_check`` set, or ``model`` itself.
    """
    if model.batch_check is not None or not any(s.batch_axis == 0 for s in model.inputs):
        return model
    try:
        check_fits(model, 2)
    except ShapeError:  # inputs too large for a batch-2 run here: the graph alone decides
        return model
    session = _quiet_session(model, threads)
    if session is None:
        return model
    two = model.example_feeds(2, seed=seed)
    one = {s.name: (_take_first(two[s.name], s.batch_axis)) for s in model.inputs}
    try:
        ref = session.run(None, one)
    except Exception:  # noqa: BLE001 - not runnable at batch 1 either: not a batch question
        return model
    check = _batch_two(session, two, ref)
    graph = model.batch_status  # what the graph says (no run has been recorded yet)
    if check.fixed is not None and graph.fixed is not None:
        # The node that fixes it says more than the symptom.
        check = BatchCheck(graph.fixed, f"{graph.reason}; a batch-2 run on onnxruntime confirms it", probed=True)
    return dataclasses.replace(model, batch_check=check)


def _quiet_session(model: "Model", threads: int):
    """An onnxruntime session of ``model`` that logs nothing (the batch-2 run is expected to
    fail on a fixed batch, and ONNX Runtime prints its errors on stderr), or None when
    onnxruntime is missing or cannot load the model."""
    if get_backend("ort").available() is not None:
        return None
    import onnxruntime as ort

    opts = session_options(threads)
    opts.log_severity_level = 4
    try:
        return ort.InferenceSession(model.serialized(), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception:  # noqa: BLE001 - the model's own load error shows where it is first used
        return None


def _take_first(arr: np.ndarray, axis: int | None) -> np.ndarray:
    return arr if axis is None else np.take(arr, [0], axis=axis)


def _batch_two(session, feeds: dict[str, np.ndarray], ref: list[np.ndarray]) -> BatchCheck:
    """The BatchCheck of the batch-2 run against the batch-1 outputs ``ref``."""
    try:
        outs = session.run(None, feeds)
    except Exception as e:  # noqa: BLE001 - any runtime failure at batch 2 is the finding
        return BatchCheck(1, f"a batch-2 run on onnxruntime fails: {error_line(e, limit=120, with_type=False)}",
                          probed=True)
    for r, o in zip(ref, outs):
        r, o = np.asarray(r), np.asarray(o)
        if r.ndim == 0 or o.ndim != r.ndim or o.shape[0] != 2 * r.shape[0] or o.shape[1:] != r.shape[1:]:
            return BatchCheck(1, f"at batch 2 an output is {'x'.join(map(str, o.shape))} where batch 1 gives "
                                 f"{'x'.join(map(str, r.shape))}", probed=True)
        if np.issubdtype(r.dtype, np.floating):
            first = o[: r.shape[0]].astype(np.float64)
            span = float(np.ptp(r)) if r.size else 0.0
            if not np.allclose(first, r, rtol=0.0, atol=1e-3 * span + 1e-5, equal_nan=True):
                return BatchCheck(1, "sample 0's outputs change when a second sample shares the batch",
                                  probed=True)
    return BatchCheck(None, "a batch-2 run on onnxruntime matches batch 1", probed=True)
