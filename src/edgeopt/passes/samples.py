"""The check every pass makes of a stack of preprocessed samples before it uses them."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def check_image_batch(images: np.ndarray, input_name: str, dims: list[int | None], *,
                      what: str = "images", limit: int | None = None) -> np.ndarray:
    """Validate a stack of preprocessed samples (images, audio clips, feature vectors)
    against one model input whose batch is axis 0.

    Args:
        images: float array (N, *dims[1:]).
        input_name: the input's name, for the messages.
        dims: the input's dims; the first (batch) is ignored, None matches any size.
        what: how the messages name the data ("calibration data", "images").
        limit: keep at most this many samples (the first ones).

    Returns:
        a C-contiguous float32 array (min(N, limit), ...).

    Raises:
        DataError: wrong rank or shape, no samples, not floating point, or non-finite.
    """
    data = np.asarray(images)
    want = "(N, " + ", ".join("?" if d is None else str(d) for d in dims[1:]) + ")"
    if data.ndim != len(dims) or any(d is not None and d != n for d, n in zip(dims[1:], data.shape[1:])):
        raise DataError(f"{what} have shape {data.shape}, input {input_name!r} takes {want}: "
                        f"stack samples of that shape (images through model.preprocess)")
    if data.shape[0] == 0:
        raise DataError(f"{what} hold no images or samples: pass at least one")
    if not np.issubdtype(data.dtype, np.floating):
        raise DataError(f"{what} are {data.dtype}: pass float32 samples (the output of model.preprocess "
                        f"for images), not raw pixels")
    data = np.ascontiguousarray(data[:limit], dtype=np.float32)
    if not np.isfinite(data).all():
        raise DataError(f"{what} contain NaN or inf: check the samples and their preprocessing")
    return data
