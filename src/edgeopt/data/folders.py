"""The layout of a folder of samples (not images): which files are samples, their class
sub-folders, and the label files beside them. Shared by the ``.npy``/``.npz`` reader
(:mod:`edgeopt.data.sample_folder`) and the audio reader (:mod:`edgeopt.data.audio`).

Layout rule (one level deep; hidden files and folders are ignored), as for image folders
(:func:`edgeopt.data.images.load_image_folder`):

- sample files directly in the folder: an unlabeled set, unless a label file gives labels;
- one sub-folder per class (``DIR/CLASS/*.npy``) and no sample file directly in the
  folder: class indices. With the model's class names, a sub-folder's index is its
  position among them; without, the sub-folder names in natural order ("2" < "10").
- label files, for labels that are not classes (a regressor's targets, a sequence's text),
  directly in the folder and never with class sub-folders:
  ``labels.json``: {sample name: label} (any JSON value: an index, a list of numbers, a
  string), every sample named; or ``labels.npy``: one row per sample, in the samples'
  order (natural order of their names).

A sample's name is its path relative to the folder without the extension ("dog/003").
"""

from __future__ import annotations

import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import DataError
from .._util.errorline import error_line
from .._util.userfile import read_user_text

LABEL_FILES = ("labels.json", "labels.npy")
FIXED_FILE = "fixed.npz"
"""The file of inputs fed with every batch (a recurrent state), beside the samples."""
_RESERVED = (*LABEL_FILES, FIXED_FILE)


def natural_key(name: str) -> list:
    """Sort key that puts "90" before "180", unlike a plain string sort."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t.lower())
            for t in re.split(r"(\d+)", name) if t]


@dataclass
class Layout:
    """The sample files of a folder and their class labels.

    Attributes:
        root: the folder.
        files: sample files in order (natural order of their names, class by class).
        labels: a class index per file, or None when the folder has no class sub-folders.
        classes: class names the indices point into, or None.
        ignored: other files (not samples, not label or fixed files), for a warning.
    """

    root: Path
    files: list[Path]
    labels: list[int] | None
    classes: list[str] | None
    ignored: int

    def names(self) -> list[str]:
        """Each file's sample name (relative path without the extension)."""
        return [f.relative_to(self.root).with_suffix("").as_posix() for f in self.files]


def _files(folder: Path, extensions: Sequence[str], top: bool) -> tuple[list[Path], int]:
    """(files with one of ``extensions`` in natural order, count of other files) directly in
    ``folder``; hidden files, and at the top the label and fixed files, are not counted."""
    entries = [p for p in sorted(folder.iterdir(), key=lambda q: natural_key(q.name))
               if p.is_file() and not p.name.startswith(".") and not (top and p.name in _RESERVED)]
    files = [p for p in entries if p.suffix.lower() in extensions]
    return files, len(entries) - len(files)


def folder_layout(path: str | Path, extensions: Sequence[str], kind: str, *,
                  class_names: Sequence[str] | None = None) -> Layout:
    """The sample files of ``path`` with their class labels (see the module docstring).

    Args:
        path: the folder.
        extensions: the sample files' extensions, lower case with the dot (".npy").
        kind: how messages name the files ("sample", "audio").
        class_names: the model's class names, which sub-folder names must be among.

    Raises:
        DataError: the folder is missing or a file; holds samples next to class
            sub-folders; a sub-folder is not one of ``class_names``; or holds no sample.
    """
    root = Path(path)
    if not root.exists():
        raise DataError(f"{kind} folder not found: {root}: check the path")
    if not root.is_dir():
        raise DataError(f"{root} is a file, not a folder: pass the folder that holds the {kind} files")
    top, ignored = _files(root, extensions, top=True)
    subdirs = [p for p in sorted(root.iterdir(), key=lambda q: natural_key(q.name))
               if p.is_dir() and not p.name.startswith(".")]
    per_class = {d.name: _files(d, extensions, top=False) for d in subdirs}
    per_class = {k: v for k, v in per_class.items() if v[0]}
    exts = " ".join(extensions)
    if top and per_class:
        raise DataError(f"{root} holds {len(top)} {kind} files next to class sub-folders "
                        f"{', '.join(per_class)}: move those files into a class sub-folder")
    if not top and not per_class:
        raise DataError(f"no {kind} file ({exts}) in {root} or its sub-folders: put the files there, "
                        f"or one sub-folder per class")
    if not per_class:
        return Layout(root, top, None, None, ignored)
    classes = [str(c) for c in class_names] if class_names else list(per_class)
    unknown = [k for k in per_class if k not in classes]
    if unknown:
        raise DataError(f"sub-folder(s) {', '.join(unknown)} of {root} are not model labels "
                        f"({', '.join(classes)}): rename them to one of those labels")
    files, labels = [], []
    for name, (found, other) in per_class.items():
        files.extend(found)
        labels.extend([classes.index(name)] * len(found))
        ignored += other
    return Layout(root, files, labels, classes, ignored)


def read_label_file(layout: Layout) -> list[Any] | None:
    """The labels of ``labels.json`` or ``labels.npy`` in the folder, one per sample in
    ``layout.files`` order, or None when there is neither.

    Returns:
        a list: JSON values (lists of numbers become float arrays), or the rows of the
        .npy array (int class indices stay ints).

    Raises:
        DataError: both files, a label file next to class sub-folders, an unreadable file,
            a sample without a label, or a row count that is not the sample count.
    """
    found = [layout.root / f for f in LABEL_FILES if (layout.root / f).is_file()]
    if not found:
        return None
    if len(found) > 1:
        raise DataError(f"{layout.root} holds both labels.json and labels.npy: keep one")
    if layout.labels is not None:
        raise DataError(f"{found[0]} sits beside class sub-folders, which already label the samples: "
                        f"remove one of the two")
    names = layout.names()
    if found[0].suffix == ".json":
        try:
            table = json.loads(read_user_text(found[0], what="labels file", error=DataError))
        except ValueError as e:
            why = error_line(e, limit=120, with_type=False)
            raise DataError(f"{found[0]} is not readable JSON ({why}): write {{sample name: label}}") from None
        if not isinstance(table, dict):
            raise DataError(f"{found[0]} holds a {type(table).__name__}, not an object: write "
                            f"{{sample name: label}}, e.g. {{\"{names[0]}\": 3}}")
        missing = [n for n in names if n not in table]
        if missing:
            raise DataError(f"{found[0]} has no label for {len(missing)} sample(s), e.g. {missing[0]!r}: "
                            f"give every sample (name = path without extension) a label")
        return [np.asarray(v, dtype=np.float32) if isinstance(v, list) else v for v in (table[n] for n in names)]
    arr = load_arrays(found[0])
    if arr.ndim == 0 or len(arr) != len(names):
        raise DataError(f"{found[0]} holds {0 if arr.ndim == 0 else len(arr)} rows for {len(names)} samples: "
                        f"give one row per sample, in the order of their names")
    return [int(v) for v in arr] if arr.ndim == 1 and np.issubdtype(arr.dtype, np.integer) else list(arr)


def read_fixed(root: Path) -> dict[str, np.ndarray]:
    """The inputs of ``fixed.npz`` in the folder ({input name: array}), or {}.

    Raises:
        DataError: the file is not a readable .npz archive.
    """
    path = Path(root) / FIXED_FILE
    return load_arrays(path) if path.is_file() else {}


def load_arrays(path: Path) -> "np.ndarray | dict[str, np.ndarray]":
    """The array of a ``.npy`` file, or {name: array} of a ``.npz`` archive (read whole,
    the file closed), without pickles.

    Raises:
        DataError: the file is not a readable .npy/.npz file (one line naming it).
    """
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return loaded
        with loaded:
            return {k: loaded[k] for k in loaded.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        why = error_line(e, limit=120, with_type=False)
        raise DataError(f"{path} is not a readable {path.suffix} file ({why}): save it with "
                        f"numpy.{'save' if path.suffix == '.npy' else 'savez'}") from None
