"""Measured resident memory of the process timing a cell: its baseline before the session
is prepared and its peak until the timed runs end.

The peak is Linux's high-water mark ``VmHWM`` in ``/proc/self/status``, reset to the current
RSS by writing ``5`` to ``/proc/self/clear_refs`` before the cell (proc(5): "5 (since Linux
4.0): reset the peak resident set size ('high water mark') to the process's current
resident set size"). So in a worker process that times many cells, each cell's peak is its
own (scope "cell"). Where the reset is refused, the peak is the process's since it started
(``getrusage`` ``ru_maxrss``, scope "process"): an upper bound of the cell's. This is what
``/usr/bin/time -v`` reports as "Maximum resident set size" and TFLite's benchmark_model
as "Peak memory footprint".
"""

from __future__ import annotations

import ctypes
import resource
import sys
from dataclasses import dataclass
from pathlib import Path

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@dataclass(frozen=True)
class RssMark:
    """Resident memory when a cell starts.

    Attributes:
        baseline_bytes: resident set size before the session is prepared, bytes (None
            where the platform does not tell).
        scope: "cell" when the peak was reset here, "process" when it could not be (the
            later peak then covers everything the process did before).
    """

    baseline_bytes: int | None
    scope: str


def _status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (VmRSS, VmHWM) in bytes, None when absent."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _trim_heap() -> None:
    """Give the heap's free pages back to the system (glibc ``malloc_trim(0)``), so what an
    earlier cell freed in this process is not in the next cell's baseline."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the baseline keeps what the allocator holds
        pass


def start_cell() -> RssMark:
    """Reset the peak to the current resident set size (where Linux allows it) and read
    that size: call before the session is prepared. Freed heap memory is first returned
    to the system (:func:`_trim_heap`): a worker process that timed an earlier cell keeps
    that cell's freed arena otherwise, and the next cell's increment would be understated."""
    _trim_heap()
    try:
        _CLEAR_REFS.write_text("5")
        scope = "cell"
    except OSError:  # not Linux >= 4.0, or /proc read-only: the peak is the process's
        scope = "process"
    return RssMark(_status_bytes("VmRSS"), scope)


def peak_bytes() -> int | None:
    """The peak resident set size, bytes: ``VmHWM`` since the last :func:`start_cell`, else
    the process's ``ru_maxrss`` (KiB on Linux, bytes on macOS); None when neither is known."""
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if maxrss <= 0:
        return None
    return int(maxrss) if sys.platform == "darwin" else int(maxrss) * 1024
