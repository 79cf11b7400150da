"""Where edgeopt keeps what it computed once and reuses: trained zoo weights, compiled TVM
libraries, LiteRT conversions, this machine's device profile.

The root is ``$EDGEOPT_CACHE``, else ``$XDG_CACHE_HOME/edgeopt`` (the XDG base directory
specification), else ``~/.cache/edgeopt``. Folders edgeopt creates there are mode 0700:
some cached files are loaded as code (a TVM library is ``dlopen``-ed), so no other user
may write them.

Artifacts loaded as code also carry a manifest beside them, ``<file>.sha256`` (the
``sha256sum`` format), written when edgeopt writes the artifact: :func:`verify_artifact`
refuses one that changed since, and calls one without a manifest (an older edgeopt's, or a
write cut short) a miss, so it is rebuilt rather than trusted.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import ArtifactTampered
from .atomic import atomic_write_bytes

MANIFEST_SUFFIX = ".sha256"


def cache_root() -> Path:
    """The cache root (not created here)."""
    root = os.environ.get("EDGEOPT_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeopt")
    return Path(root).expanduser()


def private_dir(path: Path) -> Path:
    """Create ``path`` and its missing parents, each new one mode 0700 (existing folders
    are left as they are); returns ``path``."""
    path = Path(path)
    missing = []
    p = path
    while not p.exists() and p != p.parent:
        missing.append(p)
        p = p.parent
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)  # the umask can only take bits away from 0700
        except FileExistsError:  # another process made it meanwhile
            pass
    return path


def manifest_path(path: Path) -> Path:
    """The manifest of artifact ``path``: ``<path>.sha256``."""
    return path.with_name(path.name + MANIFEST_SUFFIX)


def file_sha256(path: Path) -> str:
    """sha256 hex of the file at ``path``, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def record_artifact(path: Path, digest: str) -> None:
    """Write the manifest of ``path`` (whose bytes hash to ``digest``), atomically; call it
    after the artifact itself is in place."""
    atomic_write_bytes(manifest_path(path), f"{digest}  {path.name}\n".encode())


def write_artifact(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` (its folder created 0700) and then its manifest, both atomically.

    Raises:
        OSError, OutputError: the cache cannot be written (folder creation, then the
            atomic write).
    """
    private_dir(path.parent)
    atomic_write_bytes(path, data)
    record_artifact(path, hashlib.sha256(data).hexdigest())


def verify_artifact(path: Path, data: bytes | None = None) -> bool:
    """Whether the artifact at ``path`` may be loaded.

    Args:
        path: the artifact.
        data: its bytes when the caller already read them (hashed instead of the file, so
            what is checked is what gets loaded).

    Returns:
        True when its sha256 matches its manifest; False when it has no manifest (rebuild it).

    Raises:
        ArtifactTampered: the manifest is unreadable or names another sha256: the file
            changed after edgeopt wrote it (one line naming the file and the fix).
    """
    manifest = manifest_path(path)
    if not manifest.exists():
        return False
    try:
        recorded = manifest.read_text().split()[0]
        actual = hashlib.sha256(data).hexdigest() if data is not None else file_sha256(path)
    except (OSError, UnicodeDecodeError, IndexError):
        recorded, actual = "unreadable", ""
    if recorded != actual:
        raise ArtifactTampered(f"cached file {path} does not match the sha256 edgeopt recorded in {manifest.name} "
                           f"when it wrote it (changed since), so it is not loaded: delete the folder "
                           f"{path.parent} to rebuild it")
    return True
