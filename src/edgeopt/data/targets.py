"""Ground truth for tasks other than classification, read from a file or folder and matched
to the samples by name: what ``optimize --targets PATH`` attaches to the inputs.

Forms, by what ``PATH`` is:

- a COCO annotation file (JSON with "images" and "annotations"): boxes per image
  (:func:`edgeopt.data.detections.read_coco_json`), for the ``detect`` task;
- a folder of YOLO ``NAME.txt`` files: boxes per image
  (:func:`edgeopt.data.detections.read_yolo_folder`), for ``detect``;
- a text file of ``NAME<TAB>TEXT`` lines (PaddleOCR's recognition label list): the true
  string of each sample, for ``sequence``;
- any other JSON object ``{NAME: value}``: the value of each sample (a string, a number, a
  list of numbers as an array: landmark or regression targets), for ``regress`` and the
  others.

A sample's name is its file path relative to the input folder without the extension; a
file name in the ground truth matches it on the whole path, else on the stem when unique.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any, Sequence

import numpy as np

from .._util.errorline import error_line
from .._util.userfile import read_user_text
from ..errors import DataError
from .detections import read_coco_json, read_yolo_folder
from .images import ImageSet


def _key(name: str) -> str:
    p = PurePosixPath(str(name).replace("\\", "/"))
    return str(p.with_suffix("")) if p.suffix else str(p)


def _match(table: dict[str, Any], names: Sequence[str], source: Path) -> list[Any]:
    by_key = {_key(k): v for k, v in table.items()}
    by_stem: dict[str, list[Any]] = {}
    for k, v in by_key.items():
        by_stem.setdefault(PurePosixPath(k).name, []).append(v)
    out, missing = [], []
    for name in names:
        key = _key(name)
        if key in by_key:
            out.append(by_key[key])
        elif len(by_stem.get(PurePosixPath(key).name, [])) == 1:
            out.append(by_stem[PurePosixPath(key).name][0])
        else:
            missing.append(name)
    if missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        raise DataError(f"{source} has no ground truth for {len(missing)} of {len(names)} samples ({shown}): "
                        f"name each sample as its file is named (path without extension)")
    return out


def _text_lines(path: Path, names: Sequence[str]) -> list[str]:
    table = {}
    text = read_user_text(path, what="--targets file", error=DataError, fix="write NAME<TAB>TEXT lines in UTF-8")
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, text = line.partition("\t")
        if not sep:
            raise DataError(f"{path} line {i} has no tab: give NAME<TAB>TEXT lines (PaddleOCR's label list)")
        table[name] = text
    return _match(table, names, path)


def _value(v: Any) -> Any:
    if isinstance(v, list) and all(isinstance(x, (int, float)) or isinstance(x, list) for x in v):
        return np.asarray(v, dtype=np.float64)
    return v


def load_targets(path: str | Path, data: Any) -> list[Any]:
    """The ground truth in ``path`` for every sample of ``data`` (an ImageSet or a
    SampleSet), in the samples' order (see the module docstring for the forms).

    Raises:
        DataError: the path is missing or of no known form, or a sample has no ground
            truth in it.
    """
    p = Path(path)
    names = list(data.names)
    if p.is_dir():
        if not isinstance(data, ImageSet):
            raise DataError(f"{p} is a folder of YOLO boxes, but the inputs are not images: pass images")
        sizes = [img.shape[:2] for img in data.images]
        return list(read_yolo_folder(p, names, sizes).per_sample)
    if not p.exists():
        raise DataError(f"ground truth not found: {p}: pass a COCO JSON file, a YOLO label folder, a "
                        f"NAME<TAB>TEXT file or a {{name: value}} JSON file")
    if p.suffix.lower() in (".txt", ".tsv"):
        return _text_lines(p, names)
    text = read_user_text(p, what="--targets file", error=DataError, fix="save it as UTF-8 JSON")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise DataError(f"{p} is not readable JSON ({error_line(e, limit=120)}): pass a COCO JSON file, a "
                        f"YOLO label folder, a NAME<TAB>TEXT file or a {{name: value}} JSON file") from None
    if isinstance(doc, dict) and "images" in doc and "annotations" in doc:
        return list(read_coco_json(p, names).per_sample)
    if not isinstance(doc, dict):
        raise DataError(f"{p} holds a JSON {type(doc).__name__}, not an object: give {{sample name: value}}")
    return [_value(v) for v in _match(doc, names, p)]


def with_targets(data: Any, targets: list[Any]) -> Any:
    """``data`` with ``targets`` attached: an ImageSet's ``targets``, a SampleSet's
    ``labels`` (a sample set's labels are in the task's form already)."""
    import dataclasses

    if isinstance(data, ImageSet):
        return dataclasses.replace(data, targets=targets)
    return dataclasses.replace(data, labels=targets)
