"""Labelled text-line images for text recognizers (zoo:ppocr-rec): real text, rendered.

The words are real prose in their real order: consecutive words of the Python Language
Reference as CPython ships it (``pydoc_data.topics``, the text ``help()`` shows: about
465,000 characters of English with digits, punctuation and code), so every machine with
Python has them offline. pydoc's markup is removed (the double quotes it puts around
literals, emphasis asterisks, table bars), only words made of printable ASCII are kept (the
dictionary of PP-OCR's recognizer holds all of them) and reStructuredText underlines
("-----") are dropped; a line is the run of words from a random position that fits the line's width.

Rendering: a TrueType font that matplotlib ships with full ASCII coverage (DejaVu Sans,
Serif, Mono with their bold and oblique faces, STIX General; not Computer Modern, whose TeX
encoding puts other glyphs at some ASCII codes), its size drawn from ``size_range`` (px),
dark ink on light paper with a slight colour tint, word gaps of 1-1.8 spaces, a small
random left margin and vertical position, then, for some lines, a slight Gaussian blur, sensor
noise and JPEG compression. Lines are rendered at the recognizer's input size (48 x 320 for
PP-OCRv4: text left-aligned, paper to the right, as in a crop from a page), so the model's
preprocess does not stretch them.

Each line ``i`` depends only on ``(seed, i)`` (``numpy.random.default_rng([seed, i])``).
FreeType versions may render a grey level differently here and there.
"""

from __future__ import annotations

import functools
import io
import re
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..errors import DataError
from .images import ImageSet
from .synthetic_text import _font, _font_files

# Fonts whose glyphs at ASCII codes are the ASCII characters (see the module docstring).
_ASCII_FONTS = ("DejaVu", "STIXGeneral")
_UNDERLINE = re.compile(r"(\W)\1{2,}")  # reStructuredText under/overlines: "*****", "-----"
_MAX_WORD = 20
# pydoc's plain text marks literals with double quotes (``len()`` becomes "len()"),
# emphasis with asterisks and table cells with bars: markup, not the prose, removed.
_MARKUP = str.maketrans("", "", '"*|')


@functools.lru_cache(maxsize=1)
def source_words() -> tuple[str, ...]:
    """The words of the Python Language Reference (``pydoc_data.topics``), in order, topics
    sorted by name; only printable-ASCII words of up to 20 characters, no underlines.

    Raises:
        DataError: this Python has no ``pydoc_data`` (some distributions split it off).
    """
    try:
        from pydoc_data.topics import topics
    except ImportError:
        raise DataError("this Python has no pydoc_data (the text of help()): install your "
                        "distribution's full Python standard library") from None
    words = []
    for key in sorted(topics):
        for word in topics[key].split():
            word = word.translate(_MARKUP)
            if word and word.isascii() and word.isprintable() and len(word) <= _MAX_WORD \
                    and not _UNDERLINE.fullmatch(word):
                words.append(word)
    return tuple(words)


def line_fonts() -> list[str]:
    """Paths of the TrueType fonts lines are rendered in (see the module docstring).

    Raises:
        DataError: matplotlib's fonts are not there.
    """
    fonts = [path for _, path in _font_files() if Path(path).name.startswith(_ASCII_FONTS)]
    if not fonts:
        raise DataError("no DejaVu or STIX font found in matplotlib's data: reinstall matplotlib")
    return fonts


def _render_line(rng: np.random.Generator, words: tuple[str, ...], fonts: list[str],
                 size: tuple[int, int], size_range: tuple[int, int]) -> tuple[np.ndarray, str]:
    """One (H, W, 3) uint8 line image and its text."""
    height, width = size
    font = _font(fonts[int(rng.integers(len(fonts)))], int(rng.integers(size_range[0], size_range[1] + 1)))
    left = int(rng.integers(2, 17))
    space = font.getlength(" ") * rng.uniform(1.0, 1.8)
    # The run of words from a random position that fits; a first word too wide for the
    # line at this size is skipped.
    start = int(rng.integers(len(words)))
    while font.getlength(words[start % len(words)]) > width - left - 2:
        start += 1
    chosen, x, xs = [], float(left), []
    for word in words[start:] + words[:start]:
        w = font.getlength(word)
        if x + w > width - 2:
            break
        chosen.append(word)
        xs.append(x)
        x += w + space
    paper = rng.uniform(175, 255) + rng.uniform(-12, 12, 3)
    ink = rng.uniform(0, 90) + rng.uniform(-15, 15, 3)
    img = Image.new("RGB", (width, height), tuple(int(v) for v in np.clip(paper, 0, 255)))
    draw = ImageDraw.Draw(img)
    ascent, descent = font.getmetrics()
    slack = height - ascent - descent  # the baseline moves, the glyphs stay inside the line
    top = rng.uniform(0, slack) if slack > 0 else slack / 2
    fill = tuple(int(v) for v in np.clip(ink, 0, 255))
    for word, wx in zip(chosen, xs):
        draw.text((wx, top), word, font=font, fill=fill)
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 0.9))))
    arr = np.asarray(img, dtype=np.float32) + rng.normal(0, rng.uniform(0, 6), (height, width, 1))
    arr = np.clip(np.rint(arr), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        buf = io.BytesIO()
        Image.fromarray(arr).save(buf, format="JPEG", quality=int(rng.integers(50, 91)))
        arr = np.asarray(Image.open(buf).convert("RGB"), dtype=np.uint8)
    return arr, " ".join(chosen)


def text_lines(n: int = 64, *, seed: int = 0, size: tuple[int, int] = (48, 320),
               size_range: tuple[int, int] = (28, 38)) -> tuple[ImageSet, list[str]]:
    """``n`` rendered lines of real text and their strings (see the module docstring).

    Args:
        n: lines (>= 1).
        seed: seed of every random choice; the same seed gives the same lines.
        size: (height, width) of each line image in pixels, the recognizer's input size
            (PP-OCRv4's 48 x 320 by default).
        size_range: (smallest, largest) font size in pixels, 8 <= lo <= hi <= height.

    Returns:
        (images, texts): an ImageSet of ``n`` (H, W, 3) uint8 RGB lines named
        ``line-NNNNN`` whose targets are the true strings (no class labels), and the ``n``
        strings in image order (single spaces between words), the ``sequence``
        evaluator's ground truth.

    Raises:
        DataError: a bad argument, no text source or no font.
    """
    height, width = (int(v) for v in size)
    lo, hi = (int(v) for v in size_range)
    if n < 1:
        raise DataError(f"n must be >= 1, not {n}: ask for at least one line")
    if not 8 <= lo <= hi <= height:
        raise DataError(f"size_range {size_range} must satisfy 8 <= smallest <= largest <= the line height "
                        f"{height}: pass e.g. (28, 38) for 48 px lines")
    if width < 4 * hi:
        raise DataError(f"a line {width} px wide cannot hold words at {hi} px: pass a wider size or a "
                        f"smaller size_range")
    words, fonts = source_words(), line_fonts()
    images, texts = [], []
    for i in range(n):
        image, text = _render_line(np.random.default_rng([seed, i]), words, fonts, (height, width), (lo, hi))
        images.append(image)
        texts.append(text)
    return ImageSet(images=images, names=[f"line-{i:05d}" for i in range(n)], targets=list(texts)), texts
