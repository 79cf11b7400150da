"""One reader for every input folder (``--inputs DIR``): images, ``.npy``/``.npz`` samples
or audio files, told apart by the files' extensions (in the folder and its class
sub-folders).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import DataError
from .audio import AUDIO_EXTENSIONS, load_audio_folder
from .folders import FIXED_FILE, LABEL_FILES
from .images import IMAGE_EXTENSIONS, load_image_folder
from .sample_folder import SAMPLE_EXTENSIONS, load_sample_folder

if TYPE_CHECKING:
    from ..model import Model
    from .images import ImageSet
    from .samples import SampleSet

_RESERVED = (*LABEL_FILES, FIXED_FILE)
KINDS = {"images": IMAGE_EXTENSIONS, "samples": SAMPLE_EXTENSIONS, "audio": AUDIO_EXTENSIONS}


def folder_kind(path: str | Path) -> str:
    """Which kind of files a folder holds: "images", "samples" (.npy/.npz) or "audio".

    Raises:
        DataError: the folder is missing, holds files of more than one kind, or none.
    """
    root = Path(path)
    if not root.is_dir():
        raise DataError(f"input folder not found: {root}: check the path" if not root.exists()
                        else f"{root} is a file, not a folder: pass the folder that holds the inputs")
    children = [p for p in root.iterdir() if not p.name.startswith(".")]
    files = [p for p in children if p.is_file() and p.name not in _RESERVED] + [
        q for d in children if d.is_dir() for q in d.iterdir() if q.is_file() and not q.name.startswith(".")]
    found = {kind for kind, exts in KINDS.items() for p in files if p.suffix.lower() in exts}
    if len(found) > 1:
        raise DataError(f"{root} mixes {' and '.join(sorted(found))} files: keep one kind of input per folder")
    if not found:
        exts = " ".join(e for group in KINDS.values() for e in group)
        raise DataError(f"no input file in {root} or its sub-folders (reads {exts}): put the inputs there")
    return found.pop()


def load_inputs(path: str | Path, model: "Model", *, sample_rate: int | None = None) -> "ImageSet | SampleSet":
    """The inputs in a folder, read for ``model`` by their kind (:func:`folder_kind`):
    images (:func:`edgeopt.data.images.load_image_folder`, fed through the model's
    preprocess), samples (:func:`edgeopt.data.sample_folder.load_sample_folder`) or audio
    (:func:`edgeopt.data.audio.load_audio_folder`, at ``sample_rate`` Hz over the model's).

    Raises:
        DataError: one line naming the bad folder or file.
    """
    kind = folder_kind(path)
    if kind == "images":
        return load_image_folder(path, labels=model.labels)
    if kind == "samples":
        return load_sample_folder(path, model)
    return load_audio_folder(path, model, sample_rate=sample_rate)
