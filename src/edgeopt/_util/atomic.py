"""Atomic writes: a file or a folder of outputs appears whole or not at all.

Every output edgeopt writes goes to a temporary file in the target's own folder (same
file system) and is moved into place with ``os.replace``, so an error or a full disk half
way leaves no half-written output and never a damaged input. Around that:

- missing folders above the target are created, and removed again when the write fails;
- a target that is a folder, device, FIFO or socket is refused, never renamed over;
- the file gets the mode the user's umask gives a new file (``mkstemp`` alone makes 0600);
- an OSError becomes one :class:`~edgeopt.errors.OutputError` line naming the target and
  the problem (:func:`edgeopt._util.outputs.write_error`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Callable, Iterator, Mapping

from ..errors import OutputError
from .outputs import WRITE_ERRNOS, kind, write_error


def umask() -> int:
    """The process's umask, read without changing it (``/proc``; elsewhere set and reset,
    which another thread creating a file at that instant would see)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new output file: 0666 less the umask (0644 with the usual 022)."""
    return 0o666 & ~umask()


def folder_mode() -> int:
    """Mode of a new output folder: 0777 less the umask (0755 with the usual 022)."""
    return 0o777 & ~umask()


class NewFolders:
    """Create ``folder`` and its missing parents; :meth:`remove` deletes the ones created
    here (with whatever was put in them), for an output that failed.

    Raises:
        OutputError: a parent is a file, or the file system refuses the folder.
    """

    def __init__(self, folder: str | os.PathLike, target: str | os.PathLike | None = None) -> None:
        folder = Path(folder)
        self.top: Path | None = None  # the highest folder created here
        p = folder
        while not os.path.lexists(p) and p.parent != p:
            self.top = p
            p = p.parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.remove()
            raise write_error(e, target if target is not None else folder) from None

    def remove(self) -> None:
        """Delete the folders created here, and what is in them."""
        if self.top is not None:
            shutil.rmtree(self.top, ignore_errors=True)
            self.top = None

    def keep(self) -> None:
        """The output is in place: :meth:`remove` no longer deletes anything."""
        self.top = None


@contextlib.contextmanager
def new_folders(folder: str | os.PathLike, target: str | os.PathLike | None = None) -> Iterator[NewFolders]:
    """:class:`NewFolders` for a block: the folders created are removed if it raises."""
    made = NewFolders(folder, target)
    try:
        yield made
    except BaseException:
        made.remove()
        raise


def temp_file(target: Path) -> Path:
    """A new empty temp file beside ``target`` (hidden, same suffix), mode from the umask.

    Raises:
        OSError: the folder's file system refuses it.
    """
    # The target's suffix last: ffmpeg picks the container by it.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}")
    try:
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    return Path(tmp)


def check_replaceable(target: Path) -> None:
    """Refuse a target a rename would wrongly replace: a folder, device, FIFO or socket
    (a symlink is replaced itself, not what it points to).

    Raises:
        OutputError: naming the target and what it is.
    """
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return
    if stat.S_ISDIR(mode):
        raise OutputError(f"{target} is a folder, not a file: give a file path")
    if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
        raise OutputError(f"{target} is {kind(mode)}, not a regular file: give a file path "
                          f"(edgeopt replaces the file it writes)")


def atomic_write_files(files: Mapping[str | os.PathLike, bytes]) -> list[Path]:
    """Write each ``{path: data}`` to a temp file beside it, then move them all into place.

    All or nothing: a failure before the moves leaves no file and no folder made here.

    Returns:
        the paths written.

    Raises:
        OutputError: a target that is not a regular file, or the file system refused
            (full, read-only, file size limit, permission), naming the target.
    """
    targets = [Path(p) for p in files]
    for t in targets:
        check_replaceable(t)
    temps: list[Path] = []
    current = targets[0] if targets else Path()
    with contextlib.ExitStack() as stack:
        for t in targets:
            stack.enter_context(new_folders(t.parent, t))
        try:
            for current, data in zip(targets, files.values()):
                temps.append(temp_file(current))
                with open(temps[-1], "wb") as f:
                    f.write(data)
            for current, tmp in zip(targets, temps):
                os.replace(tmp, current)
        except BaseException as e:
            for tmp in temps:
                tmp.unlink(missing_ok=True)
            if isinstance(e, OSError):
                raise write_error(e, current) from None
            raise
    return targets


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file and ``os.replace`` (never half-written;
    missing folders created). Raises OutputError as :func:`atomic_write_files`."""
    atomic_write_files({path: data})


def write_staged(out: str | os.PathLike, write: Callable[[Path], dict[str, Path]], *,
                 label: str | os.PathLike | None = None) -> dict[str, Path]:
    """Call ``write(staging_dir)``, then move each file it wrote into ``out``.

    ``write`` returns {kind: path inside the staging folder}. The staging folder lives
    inside ``out`` (same file system, so ``os.replace`` is atomic per file) and is
    removed afterwards, also on error; so is ``out`` (and its parents) when created here
    and the write fails.

    Args:
        label: what error messages call the output (default ``out``).

    Returns:
        {kind: final path}.

    Raises:
        OutputError: ``out`` or a file in it cannot be written (full, read-only, a folder
            in the way, ...), naming ``label``; whatever else ``write`` raises.
    """
    out = Path(out)
    label = out if label is None else label
    with new_folders(out, label):
        try:
            staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
        except OSError as e:
            raise write_error(e, label) from None
        try:
            files = write(staging)
            for path in files.values():
                check_replaceable(out / path.name)
            mode = file_mode()
            final = {}
            for key, path in files.items():
                os.chmod(path, folder_mode() if path.is_dir() else mode)  # a folder keeps its x bits
                target = out / path.name
                os.replace(path, target)
                final[key] = target
            return final
        except OutputError as e:  # from a writer inside the staging folder: name the output instead
            if e.os_error is None:
                raise
            raise write_error(e.os_error, label) from None
        except OSError as e:
            if e.errno not in WRITE_ERRNOS:
                raise
            raise write_error(e, label) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
