"""Output paths checked before the work starts, and the one line for a write that failed.

Every command that writes names its inputs and its outputs (files, and folders with the
names of the files it writes into them); :func:`check_outputs` refuses, before any work:

- a target that exists and is not a regular file (a device, FIFO, socket, or a folder
  where a file goes), or for an output folder not a folder: the temp file renamed into
  place (:mod:`edgeopt._util.atomic`) would replace it;
- a target that is the same file as an input (same device and inode: the same path, a
  symlink or a hard link to it), and two outputs on one file;
- a path below a file (a parent that is not a folder), and a file system that refuses a
  write there (full, read-only, permission denied), found by writing one byte to an
  unnamed temp file.

Missing folders are not an error: the writers create them, and remove the ones they
created when the write fails.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import OutputError

PathLike = str | os.PathLike

# The errors of a write the user can fix (disk, limits, permissions, paths in the way).
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                          errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP})

_PROBLEMS = {
    errno.ENOSPC: ("no space left on its file system (disk full)", "free some space or choose another disk"),
    errno.EDQUOT: ("disk quota exceeded", "free some space or choose another disk"),
    errno.EFBIG: ("file size limit reached (ulimit -f)", "raise the limit (ulimit -f unlimited) or write less"),
    errno.EROFS: ("read-only file system", "choose a path on a writable file system"),
    errno.EACCES: ("permission denied", "choose a folder you may write to"),
    errno.EPERM: ("operation not permitted", "choose a folder you may write to (not an immutable one)"),
    errno.EISDIR: ("a folder is in the way", "give a file path"),
    errno.ENOTDIR: ("a parent folder is a file", "give a path inside a folder"),
    errno.EEXIST: ("a file is in the way of a folder", "remove it or choose another path"),
    errno.ENAMETOOLONG: ("the name is too long", "choose a shorter path"),
    errno.ELOOP: ("too many levels of symbolic links", "resolve the symlink loop or choose another path"),
}


def write_error(e: OSError, path: PathLike, option: str | None = None, *, verb: str = "write") -> OutputError:
    """The one-line error for an OSError met writing ``path``.

    Args:
        e: the error (its errno picks the problem and the fix).
        path: the output path the user gave (not a temp file).
        option: the command-line option that named it (e.g. "--out"), if any.
        verb: what was done ("write"; "use" when it may have been a read).

    Returns:
        an OutputError "cannot write --out PATH: PROBLEM: FIX", with ``e`` as its ``os_error``.
    """
    target = f"{option} {path}" if option else str(path)
    problem, fix = _PROBLEMS.get(e.errno, ((e.strerror or type(e).__name__).lower(), "choose another path"))
    error = OutputError(f"cannot {verb} {target}: {problem}: {fix}")
    error.os_error = e
    return error


def kind(mode: int) -> str:
    """What a file of ``st_mode`` is, with its article: "a folder", "a FIFO", ..."""
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISREG, "a regular file"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symlink")):
        if test(mode):
            return name
    return "a special file"


def check_outputs(*, inputs: Iterable[PathLike | None] = (),
                  files: Iterable[tuple[str, PathLike | None]] = (),
                  folders: Iterable[tuple[str, PathLike | None, Sequence[str]]] = ()) -> None:
    """Refuse, before the work, output paths that cannot take their output (module docstring).

    Args:
        inputs: what the command reads: files, folders (every file below counts) and
            references that are not paths (``zoo:NAME``, skipped); None entries skipped.
        files: (option, path) of each output file; None paths skipped.
        folders: (option, folder, names of the files written into it) of each output folder.

    Raises:
        OutputError: the first path that cannot be written, naming its option, the
            problem and the fix.
    """
    ids = _identities(inputs)
    claimed: dict[str, tuple[str, Path]] = {}
    for option, path in files:
        if path is not None:
            _check_file(Path(path), option, ids, claimed)
            _check_writable(Path(path).parent, option, Path(path))
    for option, folder, names in folders:
        if folder is None:
            continue
        folder = Path(folder)
        st = _stat(folder, option)
        if st is not None and not stat.S_ISDIR(st.st_mode):
            what = f" for {', '.join(names)}" if names else ""
            raise OutputError(f"{option} {folder} is {kind(st.st_mode)}, not a folder: give a folder{what}")
        for name in names:
            _check_file(folder / name, option, ids, claimed)
        _check_writable(folder, option, folder)


def _identities(inputs: Iterable[PathLike | None]) -> dict[tuple[int, int], Path]:
    """{(st_dev, st_ino): path} of every input file (the files below an input folder too)."""
    ids: dict[tuple[int, int], Path] = {}

    def add(p: Path) -> None:
        try:
            st = os.stat(p)
        except OSError:  # not a path (zoo:NAME), or unreadable: its reader says so
            return
        if stat.S_ISREG(st.st_mode):
            ids.setdefault((st.st_dev, st.st_ino), p)

    for p in inputs:
        if p is None:
            continue
        p = Path(p)
        if p.is_dir():
            for dirpath, _, names in os.walk(p):
                for name in names:
                    add(Path(dirpath) / name)
        else:
            add(p)
    return ids


def _stat(path: Path, option: str) -> os.stat_result | None:
    """``os.stat`` (symlinks followed), None when nothing is there to replace."""
    try:
        return os.stat(path)
    except (FileNotFoundError, NotADirectoryError):  # a parent that is a file: _check_writable says so
        return None
    except OSError as e:
        raise write_error(e, path, option) from None


def _check_file(path: Path, option: str, ids: dict[tuple[int, int], Path],
                claimed: dict[str, tuple[str, Path]]) -> None:
    st = _stat(path, option)
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            raise OutputError(f"{option} {path} is a folder, not a file: give a file path")
        if not stat.S_ISREG(st.st_mode):
            raise OutputError(f"{option} {path} is {kind(st.st_mode)}, not a regular file: give a file path "
                              f"(edgeopt replaces the file it writes)")
        source = ids.get((st.st_dev, st.st_ino))
        if source is not None:
            how = "" if os.path.realpath(path) == os.path.realpath(source) else " (a link to it)"
            raise OutputError(f"{option} {path} is the input {source}{how}: choose another path "
                              f"(inputs are never overwritten)")
    key = os.path.realpath(path)
    if key in claimed:
        other_option, other = claimed[key]
        raise OutputError(f"{option} {path} and {other_option} {other} are the same file: "
                          f"give each output its own path")
    claimed[key] = (option, path)


def _check_writable(folder: Path, option: str, path: Path) -> None:
    """The nearest existing folder at or above ``folder`` is a folder whose file system
    takes a write (the missing ones below it are created by the writer)."""
    here = folder
    while True:
        try:
            st = os.stat(here)
            break
        except (FileNotFoundError, NotADirectoryError):
            if here.parent == here:
                return
            here = here.parent
        except OSError as e:
            raise write_error(e, path, option) from None
    if not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{option} {path}: {here} is {kind(st.st_mode)}, not a folder: "
                          f"give a path inside a folder")
    try:
        probe(here)
    except OSError as e:
        raise write_error(e, path, option) from None


def probe(folder: PathLike) -> None:
    """Write one byte to an unnamed temp file in ``folder`` (O_TMPFILE where the file
    system has it: nothing appears in the folder).

    Raises:
        OSError: the folder's file system refuses (ENOSPC, EROFS, EACCES, ...).
    """
    with tempfile.TemporaryFile(dir=folder, buffering=0) as f:
        f.write(b"\0")
