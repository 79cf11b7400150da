"""Atomic writes: a file or a folder of outputs appears whole or not at all.

Every output edgeopt writes goes to a temporary file in the target's own folder (same
file system) and is moved into place with ``os.replace``, so an error or a full disk half
way leaves no half-written output and never a damaged input.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file and ``os.replace`` (never half-written)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_staged(out: str | os.PathLike, write: Callable[[Path], dict[str, Path]]) -> dict[str, Path]:
    """Call ``write(staging_dir)``, then move each file it wrote into ``out``.

    ``write`` returns {kind: path inside the staging folder}. The staging folder lives
    inside ``out`` (same file system, so ``os.replace`` is atomic per file) and is
    removed afterwards, also on error.

    Returns:
        {kind: final path}.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        files = write(staging)
        final = {}
        for kind, path in files.items():
            target = out / path.name
            os.replace(path, target)
            final[kind] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
