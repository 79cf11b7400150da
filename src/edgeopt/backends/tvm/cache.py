"""The disk cache of compiled TVM executables: one shared library per model, target,
input shapes and tuning budget.

Each compiled executable is a shared library under ``<cache>/tvm/`` keyed by (model
sha256, target, input shapes, tuning trials and settings, TVM, tvm-ffi and onnxslim
versions); ``<cache>`` is ``$EDGEOPT_CACHE``, else ``$XDG_CACHE_HOME/edgeopt``, else
``~/.cache/edgeopt`` (:func:`edgeopt._util.cache.cache_root`). Writes are atomic (temp
file + rename), with a JSON of provenance beside each library. Linking the library needs
a C compiler (TVM calls ``g++``); without one the session still runs, uncached.

A library is machine code that loading runs, so it is loaded only when its sha256 matches
the manifest written with it (:func:`edgeopt._util.cache.verify_artifact`): one changed
since is refused, one without a manifest (an older edgeopt's) is compiled again.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from importlib import metadata
from pathlib import Path
from typing import Any

from ..._util.atomic import atomic_write_bytes
from ..._util.cache import cache_root, file_sha256, private_dir, record_artifact, verify_artifact
from .compile import reason
from .tune import TuneSettings

# Bump when the build recipe changes, so old cached libraries are not reused.
CACHE_FORMAT = 1

Shapes = tuple[tuple[int, ...], ...]


def cache_dir() -> Path:
    """Folder of compiled executables: ``$EDGEOPT_CACHE/tvm`` (default ``~/.cache/edgeopt/tvm``)."""
    return cache_root() / "tvm"


def versions() -> dict[str, str]:
    """{distribution: installed version, "" when missing} of what a compiled library
    depends on: apache-tvm, apache-tvm-ffi, onnxslim."""
    out = {}
    for dist in ("apache-tvm", "apache-tvm-ffi", "onnxslim"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    return out


def cache_key(model_sha: str, target: str, shapes: Shapes, trials: int,
              settings: TuneSettings) -> str:
    """sha256 hex of everything the compiled library depends on.

    Args:
        model_sha: sha256 of the model's ONNX bytes.
        target: the TVM target as TVM prints it (JSON).
        shapes: the input shapes, in graph input order.
        trials: the tuning budget (0 = untuned: ``settings`` then does not enter the key).
        settings: the MetaSchedule search settings.
    """
    payload = {
        "format": CACHE_FORMAT,
        "model": model_sha,
        "target": target,
        "shapes": [list(s) for s in shapes],
        "trials": trials,
        "tuning": ({"cost_model": settings.cost_model,
                    "evolutionary_from": settings.evolutionary_from,
                    "seed": settings.seed} if trials > 0 else None),
        "versions": versions(),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def cache_path(folder: Path, model_sha: str, shapes: Shapes, trials: int, key: str) -> Path:
    """``<folder>/<sha[:12]>-b<batch>-t<trials>-<key[:16]>.so``: readable, unique by ``key``."""
    batch = shapes[0][0] if shapes and shapes[0] else 0
    return folder / f"{model_sha[:12]}-b{batch}-t{trials}-{key[:16]}.so"


def load(path: Path | None) -> Any | None:
    """The executable cached at ``path``; None when there is none, it has no manifest, or
    it cannot be read (e.g. truncated): the caller compiles and overwrites it.

    Raises:
        ArtifactTampered: the library changed after edgeopt wrote it (not loaded).
    """
    if path is None or not path.exists() or not verify_artifact(path):
        return None
    try:
        import tvm

        return tvm.runtime.load_module(str(path))
    except Exception:  # noqa: BLE001 - unreadable (e.g. truncated): rebuild it
        return None


def save(executable: Any, path: Path | None, meta: dict[str, Any]) -> Path | None:
    """Write the library atomically, then its sha256 manifest, and ``meta`` plus
    :func:`versions` as JSON beside it; a new folder is mode 0700.

    Returns:
        ``path``; None (and a RuntimeWarning) when it cannot be written, e.g. no C
        compiler to link it.
    """
    if path is None:
        return None
    try:
        private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".so")
        os.close(fd)
        try:
            executable.export_library(tmp)
            digest = file_sha256(Path(tmp))  # what was written, before the name makes it visible
            os.replace(tmp, path)
        finally:
            Path(tmp).unlink(missing_ok=True)
        record_artifact(path, digest)
        atomic_write_bytes(path.with_suffix(".json"),
                           json.dumps({**meta, "versions": versions()}, indent=1).encode())
    except Exception as e:  # noqa: BLE001 - caching is an optimization
        warnings.warn(f"TVM library not cached ({reason(e)}): every prepare() of this "
                      f"model will compile again", RuntimeWarning, stacklevel=2)
        return None
    return path
