"""Image preprocessing that turns a real image into a model input tensor.

A :class:`Preprocess` is part of a Model: calibration, evaluation and the deployed
pipeline all feed images through the same steps, so quality numbers measured here
hold in deployment.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from PIL import Image

# PIL is imported where an image is resized, not here: a board's lean install has no
# image library, yet unpickles Models that carry a Preprocess.
_RESAMPLE = ("nearest", "bilinear", "bicubic", "lanczos")


@dataclass(frozen=True)
class Preprocess:
    """Resize, crop, scale, normalise and lay out one image.

    Steps, in order: convert to ``channels``; if ``resize_short`` is set, resize so the
    short side equals it and centre-crop to ``size``, else resize straight to ``size``;
    multiply by ``scale``; subtract ``mean`` and divide by ``std`` per channel; transpose
    to ``layout``.

    Attributes:
        size: output (height, width) in pixels.
        channels: "RGB", "BGR" or "GRAY" (channel order of the model input).
        resize_short: short side in pixels (>= 1) before the centre crop, or None.
        scale: multiplier applied to the uint8 pixel values (1/255 maps to [0, 1]).
        mean, std: per-channel normalisation, in ``channels`` order after scaling: one
            finite value per channel (3, or 1 for GRAY) or one for all; std > 0.
        layout: "NCHW" or "NHWC" (of the batch the model takes).
        interpolation: "nearest", "bilinear", "bicubic" or "lanczos".

    Raises:
        ValueError: a field outside its values (the message names the field and the fix).
    """

    size: tuple[int, int]
    channels: str = "RGB"
    resize_short: int | None = None
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.0,)
    std: tuple[float, ...] = (1.0,)
    layout: str = "NCHW"
    interpolation: str = "bilinear"

    def __post_init__(self) -> None:
        if self.channels not in ("RGB", "BGR", "GRAY"):
            raise ValueError(f"channels must be RGB, BGR or GRAY, not {self.channels!r}")
        if self.layout not in ("NCHW", "NHWC"):
            raise ValueError(f"layout must be NCHW or NHWC, not {self.layout!r}")
        if self.interpolation not in _RESAMPLE:
            raise ValueError(f"interpolation must be one of {sorted(_RESAMPLE)}")
        if self.resize_short is not None and not self.resize_short >= 1:
            raise ValueError(f"resize_short {self.resize_short} is not a size in pixels: give e.g. 256 (>= 1), "
                             f"or none to resize straight to the input size")
        # One value applies to every channel; any other count would broadcast wrongly or fail per image.
        n = 1 if self.channels == "GRAY" else 3
        for name, values, example in (("mean", self.mean, "0.485,0.456,0.406"),
                                      ("std", self.std, "0.229,0.224,0.225")):
            shown = ",".join(f"{v:g}" for v in values)
            if len(values) not in (1, n):
                raise ValueError(f"{name} {shown} has {len(values)} values, {self.channels} images have {n} "
                                 f"channel{'s' if n > 1 else ''}: give {n} (one per channel) or 1 (for all)"
                                 + (f", e.g. {example}" if n == 3 else ""))
            if not all(math.isfinite(v) for v in values) or (name == "std" and not all(v > 0 for v in values)):
                raise ValueError(f"{name} {shown} is not {'all > 0' if name == 'std' else 'all finite'}: "
                                 f"give finite numbers{' > 0 (the divisors)' if name == 'std' else ''}, "
                                 f"e.g. {example}")

    def to_dict(self) -> dict:
        """JSON-ready form (for deploy.json and reports)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "Preprocess":
        """Inverse of :meth:`to_dict`."""
        d = dict(d)
        d["size"] = tuple(d["size"])
        d["mean"] = tuple(d["mean"])
        d["std"] = tuple(d["std"])
        return cls(**d)

    def __call__(self, image: "np.ndarray | Image.Image") -> np.ndarray:
        """Preprocess one image.

        Args:
            image: HxW (gray) or HxWx3/4 uint8 array in RGB order, or a PIL image.

        Returns:
            float32 array of shape (C, H, W) for NCHW or (H, W, C) for NHWC, C = 1 or 3.
        """
        from PIL import Image

        pil = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        pil = pil.convert("L" if self.channels == "GRAY" else "RGB")
        h, w = self.size
        resample = Image.Resampling[self.interpolation.upper()]
        if self.resize_short:
            factor = self.resize_short / min(pil.width, pil.height)
            rw, rh = max(w, round(pil.width * factor)), max(h, round(pil.height * factor))
            pil = pil.resize((rw, rh), resample)
            left, top = (rw - w) // 2, (rh - h) // 2
            pil = pil.crop((left, top, left + w, top + h))
        else:
            pil = pil.resize((w, h), resample)
        arr = np.asarray(pil, dtype=np.float32)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if self.channels == "BGR":
            arr = arr[:, :, ::-1]
        arr = arr * np.float32(self.scale)
        arr = (arr - np.asarray(self.mean, np.float32)) / np.asarray(self.std, np.float32)
        if self.layout == "NCHW":
            arr = arr.transpose(2, 0, 1)
        return np.ascontiguousarray(arr, dtype=np.float32)


def default_for_input(shape: tuple[int, ...], layout: str) -> Preprocess:
    """A plain preprocessing for an image input of ``shape`` (batch 1) when the model
    carries none: resize to the input size, scale to [0, 1], no mean/std, RGB (GRAY for
    one channel). It is a guess: callers must say so to the user.

    Raises:
        ValueError: the input is not a 4-D NCHW/NHWC image with 1 or 3 channels.
    """
    if len(shape) != 4 or layout not in ("NCHW", "NHWC"):
        raise ValueError(f"input shape {shape} is not an NCHW or NHWC image")
    h, w, c = (shape[2], shape[3], shape[1]) if layout == "NCHW" else (shape[1], shape[2], shape[3])
    return Preprocess(size=(h, w), channels="GRAY" if c == 1 else "RGB", layout=layout)


def parse_floats(text: str, what: str) -> tuple[float, ...]:
    """``"0.485,0.456,0.406"`` -> (0.485, 0.456, 0.406).

    Raises:
        ValueError: not comma-separated numbers (the message names ``what``).
    """
    try:
        vals = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        vals = ()
    if not vals:
        raise ValueError(f"bad {what} {text!r}: give numbers separated by commas, e.g. 0.485,0.456,0.406")
    return vals
