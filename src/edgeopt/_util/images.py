"""Image arrays as the detectors and the video pipeline take them."""

from __future__ import annotations

import numpy as np

from ..errors import DataError


def as_rgb_uint8(image: np.ndarray, *, what: str = "image") -> np.ndarray:
    """(H, W, 3) uint8 RGB from (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 (alpha dropped).

    Args:
        what: the noun used in error messages ("frame", "image").

    Raises:
        DataError: another dtype or shape.
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise DataError(f"{what} of dtype {arr.dtype} is not uint8 (0..255): convert with skimage.util.img_as_ubyte")
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        return np.ascontiguousarray(arr[:, :, :3])
    raise DataError(f"{what} of shape {arr.shape} is not HxW gray or HxWx3 RGB: pass such {what}s")
