"""Ground-truth boxes for a detector's samples: COCO JSON files and YOLO txt folders.

The detection evaluator (:mod:`edgeopt.evaluate.tasks.detect`) reads labels as one
:class:`GroundTruth` per sample, in the samples' order: boxes in pixels of the image as
read (before any resizing), their class ids, and the image's size, from which the
evaluator maps the boxes to the model input's pixels through the model's preprocessing.

Formats:

- COCO (Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014; the
  format of cocodataset.org's "data format" page): one JSON file with ``images``
  (``id``, ``file_name``, ``width``, ``height``), ``annotations`` (``image_id``,
  ``category_id``, ``bbox`` = [x, y, width, height] in pixels, ``iscrowd``) and
  ``categories`` (``id``, ``name``).
- YOLO (the Ultralytics / Darknet txt layout): one ``NAME.txt`` per image, one object per
  line ``class cx cy w h`` with the centre and size as fractions of the image's width and
  height (a polygon ``class x1 y1 x2 y2 ...`` of a segmentation label gives its bounds);
  an image without a file, or with an empty one, has no object. Class names, when
  present, are in ``classes.txt`` (one per line).

Crowd regions (COCO ``iscrowd: 1``) are left out: the evaluator matches objects one to one
and has no "ignore" region, so they are counted in :attr:`Labels.skipped_crowd` instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np

from ..errors import DataError
from .._util.userfile import read_user_text


@dataclass(frozen=True)
class GroundTruth:
    """The objects of one image.

    Attributes:
        boxes: (M, 4) float64 x1, y1, x2, y2 in pixels of the image (x right, y down,
            continuous coordinates: a box over the whole W x H image is 0, 0, W, H).
        classes: (M,) int64 class ids (the model's class indices; see the readers).
        image_size: (height, width) of the image in pixels.

    Raises:
        DataError: boxes are not (M, 4) with x2 >= x1 and y2 >= y1, classes not (M,), or
            the image size is not positive.
    """

    boxes: np.ndarray
    classes: np.ndarray
    image_size: tuple[int, int]

    def __post_init__(self) -> None:
        boxes = np.asarray(self.boxes, np.float64).reshape(-1, 4) if np.size(self.boxes) else np.zeros((0, 4))
        classes = np.asarray(self.classes, np.int64).reshape(-1)
        object.__setattr__(self, "boxes", boxes)
        object.__setattr__(self, "classes", classes)
        object.__setattr__(self, "image_size", (int(self.image_size[0]), int(self.image_size[1])))
        if len(classes) != len(boxes):
            raise DataError(f"{len(boxes)} boxes but {len(classes)} class ids: give one class id per box")
        if len(boxes) and ((boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any()):
            raise DataError("a box has x2 < x1 or y2 < y1: give boxes as x1, y1, x2, y2 corners")
        if min(self.image_size) <= 0:
            raise DataError(f"image size {self.image_size} is not positive: give (height, width) in pixels")

    def __len__(self) -> int:
        return len(self.classes)


@dataclass(frozen=True)
class Labels:
    """Ground truth of N samples, as read from a file or folder.

    Attributes:
        per_sample: one :class:`GroundTruth` per sample, in the order of the names asked for.
        classes: {class id: name} as the file names them ({} when it does not).
        skipped_crowd: COCO crowd regions left out (see the module docstring).
    """

    per_sample: list[GroundTruth]
    classes: dict[int, str] = field(default_factory=dict)
    skipped_crowd: int = 0

    def __len__(self) -> int:
        return len(self.per_sample)

    def __getitem__(self, i: int) -> GroundTruth:
        return self.per_sample[i]


def _key(name: str) -> str:
    """A sample name or a file name without its extension, with / separators."""
    p = PurePosixPath(str(name).replace("\\", "/"))
    return str(p.with_suffix("")) if p.suffix else str(p)


def _lookup(table: dict[str, int], name: str) -> int | None:
    """The entry of ``name`` (a sample name: a path relative to the image folder, without
    extension), matched on the whole path, else on the file stem when that is unique."""
    if _key(name) in table:
        return table[_key(name)]
    stem = PurePosixPath(_key(name)).name
    hits = [v for k, v in table.items() if PurePosixPath(k).name == stem]
    return hits[0] if len(hits) == 1 else None


def read_coco_json(path: str | Path, names: Sequence[str], *, contiguous: bool = False) -> Labels:
    """Ground truth of the images ``names`` from a COCO annotation file.

    Args:
        path: the JSON file.
        names: the samples' names (an image set's names: the file path relative to the
            image folder without its extension); each is matched to an image's
            ``file_name`` without its extension, on the whole path or on the stem.
        contiguous: class ids 0..K-1 in the order of the sorted category ids (for models
            whose class index is not the COCO category id; COCO's 80 categories have ids
            1..90 with gaps), instead of the category ids themselves.

    Returns:
        :class:`Labels`; an image with no annotation has no object.

    Raises:
        DataError: the file is missing or not COCO JSON, a name has no image in it, or an
            annotation names an unknown image or category or has a bad box.
    """
    p = Path(path)
    text = read_user_text(p, what="COCO annotation file", error=DataError, fix="pass a COCO annotation file")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{p} is not a readable JSON file ({e}): pass a COCO annotation file") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(
            doc.get("annotations"), list):
        raise DataError(f"{p} has no 'images' and 'annotations' lists: pass a COCO annotation file")
    try:
        images = {int(im["id"]): im for im in doc["images"]}
        by_name = {_key(im["file_name"]): i for i, im in images.items()}
        categories = {int(c["id"]): str(c.get("name", c["id"])) for c in doc.get("categories", [])}
    except (KeyError, TypeError, ValueError) as e:
        raise DataError(f"{p}: an image or category entry lacks {e} (id, file_name): fix the file") from None
    cat_ids = sorted(categories) or sorted({int(a.get("category_id", -1)) for a in doc["annotations"]})
    to_class = {c: i for i, c in enumerate(cat_ids)} if contiguous else {c: c for c in cat_ids}
    boxes: dict[int, list] = {i: [] for i in images}
    classes: dict[int, list] = {i: [] for i in images}
    crowd = 0
    for n, a in enumerate(doc["annotations"]):
        try:
            image_id, cat, (x, y, w, h) = int(a["image_id"]), int(a["category_id"]), map(float, a["bbox"])
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{p}: annotation {n} lacks image_id, category_id or a 4-number bbox: "
                            "fix the file") from None
        if image_id not in images:
            raise DataError(f"{p}: annotation {n} names image {image_id}, which is not in 'images': fix the file")
        if cat not in to_class:
            raise DataError(f"{p}: annotation {n} names category {cat}, which is not in 'categories': fix the file")
        if w < 0 or h < 0:
            raise DataError(f"{p}: annotation {n} has a negative bbox size {w} x {h}: give [x, y, width, height]")
        if a.get("iscrowd", 0):
            crowd += 1
            continue
        boxes[image_id].append((x, y, x + w, y + h))
        classes[image_id].append(to_class[cat])
    out = []
    for name in names:
        i = _lookup(by_name, name)
        if i is None:
            raise DataError(f"image {name!r} has no entry in {p}: annotate it or leave it out of the image set")
        im = images[i]
        try:
            size = (int(im["height"]), int(im["width"]))
        except (KeyError, TypeError, ValueError):
            raise DataError(f"{p}: image {im.get('file_name')!r} lacks its width and height: fix the file") from None
        out.append(GroundTruth(np.asarray(boxes[i], np.float64), np.asarray(classes[i], np.int64), size))
    names_out = {to_class[c]: categories.get(c, str(c)) for c in cat_ids}
    return Labels(out, names_out, crowd)


def _yolo_line(values: list[float], where: str) -> tuple[int, tuple[float, float, float, float]]:
    """(class id, (x1, y1, x2, y2) as fractions) of one YOLO label line."""
    cls = values[0]
    if cls != int(cls) or cls < 0:
        raise DataError(f"{where}: class {cls:g} is not an integer >= 0: start each line with the class index")
    coords = values[1:]
    if len(coords) == 4:
        cx, cy, w, h = coords
        if w < 0 or h < 0:
            raise DataError(f"{where}: negative width or height: write 'class cx cy w h' as fractions")
        box = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    elif len(coords) >= 6 and len(coords) % 2 == 0:
        xs, ys = coords[0::2], coords[1::2]
        box = (min(xs), min(ys), max(xs), max(ys))
    else:
        raise DataError(f"{where}: {len(values)} numbers: write 'class cx cy w h' (or a polygon "
                        "'class x1 y1 x2 y2 ...')")
    if min(box) < -0.01 or max(box) > 1.01:
        raise DataError(f"{where}: coordinates outside [0, 1]: YOLO labels are fractions of the image size, "
                        "not pixels")
    return int(cls), box


def read_yolo_folder(folder: str | Path, names: Sequence[str], image_sizes: Sequence[tuple[int, int]]) -> Labels:
    """Ground truth of the images ``names`` from a folder of YOLO txt files.

    Args:
        folder: the folder holding ``NAME.txt`` for each sample name (a name with a
            sub-folder, "a/b", is read from ``folder/a/b.txt``, else ``folder/b.txt``).
        names: the samples' names (an image set's names).
        image_sizes: (height, width) in pixels of each image, to turn fractions into
            pixels.

    Returns:
        :class:`Labels`; class ids are the file's class indices, names from
        ``classes.txt`` when it exists.

    Raises:
        DataError: the folder is missing, no sample has a label file (a wrong folder),
            sizes and names differ in count, or a line is malformed.
    """
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"YOLO label folder not found: {root}: pass the folder of NAME.txt files")
    if len(image_sizes) != len(names):
        raise DataError(f"{len(image_sizes)} image sizes for {len(names)} names: give one (height, width) per image")
    out, found = [], 0
    for name, (h, w) in zip(names, image_sizes):
        key = _key(name)
        path = next((q for q in (root / f"{key}.txt", root / f"{PurePosixPath(key).name}.txt") if q.is_file()), None)
        boxes, classes = [], []
        if path is not None:
            found += 1
            text = read_user_text(path, what="YOLO label file", error=DataError, fix="write 'class cx cy w h' lines")
            for n, line in enumerate(text.splitlines(), 1):
                if not line.strip():
                    continue
                try:
                    values = [float(v) for v in line.split()]
                except ValueError:
                    raise DataError(f"{path}:{n}: {line.strip()!r} is not numbers: write 'class cx cy w h'") from None
                cls, (x1, y1, x2, y2) = _yolo_line(values, f"{path}:{n}")
                boxes.append((x1 * w, y1 * h, x2 * w, y2 * h))
                classes.append(cls)
        out.append(GroundTruth(np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0, [w, h, w, h]),
                               np.asarray(classes, np.int64), (h, w)))
    if names and not found:
        raise DataError(f"{root} holds no label file of any of the {len(names)} images (e.g. {_key(names[0])}.txt): "
                        "pass the folder of the YOLO labels")
    class_file = root / "classes.txt"
    classes_named = {}
    if class_file.is_file():
        text = read_user_text(class_file, what="YOLO class list", error=DataError, fix="write one class name a line")
        classes_named = {i: s.strip() for i, s in enumerate(text.splitlines()) if s.strip()}
    return Labels(out, classes_named)
