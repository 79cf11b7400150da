"""Run a Model on an ImageSet through a backend and collect its outputs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..backends.registry import require
from ..errors import DataError, ShapeError

if TYPE_CHECKING:
    from ..model import Model
    from ..data.images import ImageSet


def predict(model: "Model", backend: str, imageset: "ImageSet", *, batch: int = 8,
            threads: int = 2) -> np.ndarray:
    """The model's first output on every image, in image order (see :func:`predict_outputs`)."""
    return predict_outputs(model, backend, imageset, batch=batch, threads=threads)[0]


def predict_outputs(model: "Model", backend: str, imageset: "ImageSet", *, batch: int = 8,
                    threads: int = 2) -> list[np.ndarray]:
    """Every output of the model on every image, in image order.

    Images go through ``model.preprocess`` in batches of ``batch``; the last partial
    batch runs at its own size (the batch dimension of a Model is symbolic).

    Args:
        model: a Model with one image input and a preprocess.
        backend: registry name, e.g. "ort", "openvino", "reference".
        imageset: the images (labels are not used here).
        batch: images per forward pass (>= 1).
        threads: intra-op threads of the backend session.

    Returns:
        one array per graph output, in the graph's order, each concatenated over batches:
        shape (N, ...), e.g. (N, K) class scores for a classifier, dtype as the backend
        returns it.

    Raises:
        DataError: the set is empty, batch < 1, the model has no preprocess or more
            than one input.
        ShapeError: the preprocess makes a different image size than the model takes.
        BackendUnavailable: the backend is unknown, not installed or cannot load it.
    """
    if len(imageset) == 0:
        raise DataError("the image set is empty: load at least one image")
    if batch < 1:
        raise DataError(f"batch must be >= 1, not {batch}: pass a positive batch size")
    if model.preprocess is None:
        raise DataError(
            f"{model.name} has no preprocess: set model.preprocess = Preprocess(size=(H, W), ...)"
        )
    if len(model.inputs) != 1:
        raise DataError(
            f"{model.name} has {len(model.inputs)} inputs; predict feeds images to a "
            f"single-input model: evaluate a model with one image input"
        )
    spec = model.inputs[0]
    first = model.preprocess(imageset.images[0])
    if tuple(first.shape) != tuple(spec.shape[1:]):
        raise ShapeError(
            f"the preprocess makes {tuple(first.shape)} but input {spec.name!r} of "
            f"{model.name} takes {tuple(spec.shape[1:])}: make the preprocess size match "
            f"the model input"
        )
    session = require(backend).prepare(model, threads=threads)
    try:
        outs = [session.run({spec.name: x.astype(spec.dtype, copy=False)})
                for x in imageset.batches(model.preprocess, batch)]
    finally:
        session.close()
    return [np.concatenate([o[i] for o in outs], axis=0) for i in range(len(outs[0]))]
