"""Keep stdout for the one JSON document of a ``--json`` command.

While the command works, libraries may write to stdout behind its back: NNCF's logger
has a handler on stdout ("WARNING:nncf:Dataset contains only 18 samples ..." came first
in ``optimize --json``), OpenVINO and TVM print from C++. :func:`json_stdout` points file
descriptor 1 (and ``sys.stdout``) at stderr for the duration, and :func:`emit` holds the
document until the real stdout is back, so that ``edgeopt CMD --json | jq`` reads exactly
one document.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from typing import Iterator

STDOUT_FD = 1
_held: list[str] | None = None  # the documents emitted while stdout points at stderr


@contextmanager
def json_stdout(enabled: bool = True) -> Iterator[None]:
    """Within the block, whatever is written to stdout (Python or C) goes to stderr; the
    text given to :func:`emit` is written to the real stdout when the block ends (also
    after an error, so that what was complete is not lost). A no-op when not ``enabled``
    or inside another such block."""
    global _held
    if not enabled or _held is not None:
        yield
        return
    real, saved = sys.stdout, None
    real.flush()
    try:  # descriptor 1 itself, whatever sys.stdout is: C code writes there
        err_fd = sys.__stderr__.fileno()
        saved = os.dup(STDOUT_FD)
    except (AttributeError, OSError, ValueError):  # no descriptors (an embedding): Python's stdout only
        saved = None
    else:
        os.dup2(err_fd, STDOUT_FD)
    sys.stdout, _held = sys.stderr, []
    try:
        yield
    finally:
        held, _held = _held, None
        sys.stdout = real
        if saved is not None:
            sys.stderr.flush()
            os.dup2(saved, STDOUT_FD)
            os.close(saved)
        for text in held:
            real.write(text)
        real.flush()


def emit(text: str) -> None:
    """Write ``text`` to stdout, or hold it until :func:`json_stdout`'s block ends."""
    if _held is not None:
        _held.append(text)
    else:
        sys.stdout.write(text)
        sys.stdout.flush()
