"""Silence what native libraries print straight to the file descriptors.

Converters and profilers (litert-torch's MLIR converter and absl logging, the XNNPACK
delegate banner, torch's kineto profiler "USDT ... profiler_start" lines) write to fds 1
and 2 from C++, past Python's ``sys.stdout``; a CLI whose output is a table should not
interleave them. Errors still surface as exceptions.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_fds() -> Iterator[None]:
    """Point fds 1 and 2 at a temp file (and ignore Python warnings) inside the block."""
    saved: list[tuple[int, int]] = []
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stream, fd in ((sys.stdout, 1), (sys.stderr, 2)):
            with contextlib.suppress(Exception):
                stream.flush()
            try:
                saved.append((fd, os.dup(fd)))
                os.dup2(sink.fileno(), fd)
            except OSError:  # no such descriptor (embedded interpreters): nothing to hide
                pass
        try:
            yield
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(Exception):
                    stream.flush()
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
