"""Reading a file a user names: regular files only, and never more than a size cap.

A path on the command line can name anything: a FIFO (``read()`` blocks forever), a
character device (``/dev/zero`` reads until memory runs out), a socket, a folder, or a
file larger than the reader can hold. :func:`read_user_file` refuses all of these with a
one-line error before reading a byte; :func:`check_regular_file` does the same checks for
readers that hand the path to a library (PIL, numpy, soundfile).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ..errors import EdgeoptError

GIB = 1 << 30
# JSON, text and dictionary files a user passes: far above any real one (COCO's largest
# annotation file is ~450 MB), far below what would exhaust a small board's memory.
MAX_TEXT_BYTES = 1 * GIB

_KINDS = ((stat.S_ISFIFO, "FIFO (named pipe)"), (stat.S_ISCHR, "character device"),
          (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "special file")


def _describe_oserror(e: OSError, what: str, path: Path, error: type[EdgeoptError]) -> EdgeoptError:
    if e.errno == errno.ENOENT:
        return error(f"{what} not found: {path}: check the path")
    if e.errno in (errno.EACCES, errno.EPERM):
        return error(f"cannot read {what} {path} (permission denied): check its permissions or pass a copy")
    if e.errno == errno.ELOOP:
        return error(f"{what} {path} is a symbolic link loop: point it at a real file")
    return error(f"cannot read {what} {path} ({e.strerror or type(e).__name__}): check the path")


def _check_mode(st: os.stat_result, what: str, path: Path, max_bytes: int | None, too_large: str,
                error: type[EdgeoptError]) -> None:
    if stat.S_ISDIR(st.st_mode):
        raise error(f"{what} {path} is a folder, not a file: pass the file itself")
    if not stat.S_ISREG(st.st_mode):
        raise error(f"{what} {path} is a {_kind(st.st_mode)}, not a regular file: pass a regular file "
                    f"(copy the data into one first)")
    if max_bytes is not None and st.st_size > max_bytes:
        raise error(f"{what} {path} is {st.st_size:,} bytes, over the {_size(max_bytes)} limit: {too_large}")


def _size(n: int) -> str:
    return f"{n / GIB:g} GiB" if n >= GIB else f"{n:,} bytes"


def check_regular_file(path: str | os.PathLike, *, what: str, max_bytes: int | None = None,
                       too_large: str = "pass a smaller file",
                       error: type[EdgeoptError] = EdgeoptError) -> os.stat_result:
    """The ``stat`` of ``path`` (symbolic links followed) after checking it is a regular file.

    Args:
        path: the file a user named.
        what: the noun for messages, e.g. "model", "device profile", "--targets file".
        max_bytes: refuse a larger file; None: no cap.
        too_large: the fix named when the file is over ``max_bytes``.
        error: the EdgeoptError subclass raised (ModelLoadError, DataError, ...).

    Raises:
        ``error``: the path is missing, unreadable, a folder, a FIFO, device or socket,
            a symbolic-link loop, or larger than ``max_bytes``.
    """
    p = Path(path)
    try:
        st = os.stat(p)
    except OSError as e:
        raise _describe_oserror(e, what, p, error) from None
    _check_mode(st, what, p, max_bytes, too_large, error)
    return st


def read_user_file(path: str | os.PathLike, *, what: str, max_bytes: int = MAX_TEXT_BYTES,
                   too_large: str = "pass a smaller file",
                   error: type[EdgeoptError] = EdgeoptError) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``.

    The path is checked with ``stat`` before it is opened, and the open file again with
    ``fstat``: a path swapped for a FIFO in between is opened non-blocking and refused,
    and a file that grows while being read is refused too.

    Args:
        path, what, too_large, error: as in :func:`check_regular_file`.
        max_bytes: the largest file read, in bytes.

    Raises:
        ``error``: see :func:`check_regular_file`; also a read error (EIO, ...).
    """
    p = Path(path)
    check_regular_file(p, what=what, max_bytes=max_bytes, too_large=too_large, error=error)
    try:
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise _describe_oserror(e, what, p, error) from None
    try:
        st = os.fstat(fd)
        _check_mode(st, what, p, max_bytes, too_large, error)
        # One byte more than the size tells a file that grew since the fstat. os.read
        # allocates what it is asked for and returns at most ~2 GiB per call.
        want, parts, total = st.st_size + 1, [], 0
        while total < want:
            chunk = os.read(fd, want - total)
            if not chunk:
                break
            parts.append(chunk)
            total += len(chunk)
    except OSError as e:
        raise _describe_oserror(e, what, p, error) from None
    finally:
        os.close(fd)
    if total > st.st_size:
        raise error(f"{what} {p} changed while being read: pass a file nothing is writing to")
    return parts[0] if len(parts) == 1 else b"".join(parts)


def read_user_text(path: str | os.PathLike, *, what: str, max_bytes: int = MAX_TEXT_BYTES,
                   error: type[EdgeoptError] = EdgeoptError, fix: str = "save it as UTF-8") -> str:
    """The UTF-8 text of a regular file (see :func:`read_user_file`).

    Args:
        fix: the fix named when the bytes are not UTF-8.

    Raises:
        ``error``: see :func:`read_user_file`, or the file is not UTF-8.
    """
    data = read_user_file(path, what=what, max_bytes=max_bytes, error=error)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(f"{what} {path} is not UTF-8 text: {fix}") from None
