"""Data augmentation of preprocessed image batches for distillation.

Augmentation runs on the preprocessed (normalised) tensors, per batch with per-sample
random parameters, all through one ``F.affine_grid``/``F.grid_sample`` per batch: random
resized crop (area 0.7-1.0, aspect 3/4-4/3, resized back to the input size; the
parameters of torchvision's ``RandomResizedCrop``), horizontal flip, translation up to
``translate`` of the size, then contrast and brightness jitter relative to each image's
own mean and standard deviation (the normalisation constants are unknown here). The
teacher sees the same augmented batch, so a flip that would change a label (text
orientation) does no harm to KD; with hard labels flips are off unless asked for.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ...errors import DataError

if TYPE_CHECKING:
    import torch


def augment_batch(x: "torch.Tensor", generator: "torch.Generator", *, flip: bool = True,
                  scale: tuple[float, float] = (0.7, 1.0), translate: float = 0.0625,
                  brightness: float = 0.1, contrast: float = 0.1) -> "torch.Tensor":
    """Randomly crop, flip, shift and colour-jitter a batch of preprocessed images.

    Args:
        x: float32 tensor (N, C, H, W), already normalised.
        generator: source of randomness (the same seed gives the same batch).
        flip: flip each image horizontally with probability 1/2.
        scale: range of the crop's area as a fraction of the image (torchvision's
            ``RandomResizedCrop`` convention; aspect ratio drawn log-uniform in 3/4-4/3).
        translate: largest shift as a fraction of width/height (borders replicated).
        brightness: largest additive shift in units of each image's std.
        contrast: largest relative contrast change around each image's mean.

    Returns:
        a new float32 tensor of the same shape (bilinear resampling).

    Raises:
        DataError: ``x`` is not 4-D.
    """
    import torch
    import torch.nn.functional as F

    if x.dim() != 4:
        raise DataError(f"augmentation takes images (N, C, H, W), got shape {tuple(x.shape)}: "
                        f"set augment=False for other inputs")
    n = x.shape[0]

    def uniform(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    area = uniform(*scale)
    log_ratio = uniform(math.log(3 / 4), math.log(4 / 3))
    ratio = torch.exp(log_ratio)
    # Crop half-extents in normalised coordinates ([-1, 1] spans the image). A side
    # longer than the image is cut to it and the other side takes the whole area, so
    # the area stays as drawn (and area 1 is the full image, whatever the ratio).
    w, h = torch.sqrt(area * ratio), torch.sqrt(area / ratio)
    sx = torch.where(h > 1, area, w.clamp(max=1.0))
    sy = torch.where(w > 1, area, h.clamp(max=1.0))
    cx = (1 - sx) * uniform(-1, 1) + translate * 2 * uniform(-1, 1)
    cy = (1 - sy) * uniform(-1, 1) + translate * 2 * uniform(-1, 1)
    sign = torch.ones(n)
    if flip:
        sign = torch.where(torch.rand(n, generator=generator) < 0.5, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0] = sx * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = sy
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid.to(x.dtype), mode="bilinear", padding_mode="border",
                        align_corners=False)
    if brightness or contrast:
        mean = out.mean(dim=(1, 2, 3), keepdim=True)
        std = out.std(dim=(1, 2, 3), keepdim=True)
        c = uniform(1 - contrast, 1 + contrast).view(n, 1, 1, 1).to(x.dtype)
        b = uniform(-brightness, brightness).view(n, 1, 1, 1).to(x.dtype)
        out = (out - mean) * c + mean + b * std
    return out
