"""Drawing detections and the live overlay (fps, latency) on a frame; numpy + Pillow only."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

BOX_COLOR = (0, 255, 0)
TEXT_COLOR = (255, 255, 0)


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (needs FreeType; else the small bitmap font)."""
    try:
        return ImageFont.load_default(size=size)
    except ImportError:  # Pillow built without FreeType
        return ImageFont.load_default()


def draw_frame(image: np.ndarray, boxes: np.ndarray, scores: np.ndarray | None = None,
               text: str = "", quads: np.ndarray | None = None) -> np.ndarray:
    """A copy of ``image`` with ``boxes`` outlined, their scores, and ``text`` top-left.

    Args:
        image: (H, W, 3) uint8 RGB (not modified).
        boxes: (N, 4) x1, y1, x2, y2 in pixels.
        scores: (N,) shown next to each box, or None.
        text: overlay line(s), e.g. "12.3 fps  p90 85 ms", on a dark band for contrast.
        quads: (N, 4, 2) corners drawn as polygons instead of ``boxes`` (rotated text
            boxes), or None; scores still sit at the box's top-left.

    Returns:
        (H, W, 3) uint8 RGB.
    """
    pil = Image.fromarray(image)
    d = ImageDraw.Draw(pil)
    font = _font(max(12, round(image.shape[0] / 30)))
    width = max(2, round(min(image.shape[:2]) / 240))
    for k, box in enumerate(np.asarray(boxes, np.float64).reshape(-1, 4)):
        x1, y1, x2, y2 = (float(v) for v in box)
        if quads is not None:
            d.polygon([(float(x), float(y)) for x, y in quads[k]], outline=BOX_COLOR, width=width)
        else:
            d.rectangle((x1, y1, x2, y2), outline=BOX_COLOR, width=width)
        if scores is not None:
            d.text((x1, max(0.0, y1 - getattr(font, "size", 10) - 2)), f"{float(scores[k]):.2f}", fill=BOX_COLOR, font=font)
    if text:
        left, top, right, bottom = d.multiline_textbbox((4, 4), text, font=font)
        d.rectangle((0, 0, right + 4, bottom + 4), fill=(0, 0, 0))
        d.multiline_text((4, 4), text, fill=TEXT_COLOR, font=font)
    return np.asarray(pil)
