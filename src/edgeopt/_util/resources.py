"""What this machine can give a run: CPUs for threads, memory for tensors.

A thread count far above the cores only time-shares them (and 100000 ONNX Runtime threads
take minutes and gigabytes to start); a batch or shape far above the memory ends in a
MemoryError deep inside numpy or a runtime. These checks refuse both before the work
starts, with one line that says what fits.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from ..errors import EdgeoptError

# Oversubscription is a legitimate experiment (threads vs cores); beyond this many
# threads per usable CPU nothing more is learned.
THREADS_PER_CPU = 4
_CGROUP = Path("/sys/fs/cgroup")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def max_threads() -> int:
    """The largest thread count accepted: :data:`THREADS_PER_CPU` x :func:`usable_cpus`."""
    return THREADS_PER_CPU * usable_cpus()


def check_threads(counts: int | Iterable[int], what: str = "--threads", *, cpus: int | None = None,
                  where: str = "this process may use") -> None:
    """Refuse a thread count above :data:`THREADS_PER_CPU` x the CPUs.

    Args:
        counts: one thread count or several (each already known to be a positive int).
        what: the option named in the message.
        cpus: the CPUs of the machine that runs them (default: :func:`usable_cpus` here;
            a board's own for a ``--device`` run); ``where`` names them in the message.

    Raises:
        EdgeoptError: a count is above the cap.
    """
    values = [counts] if isinstance(counts, int) else list(counts)
    cpus = usable_cpus() if cpus is None else cpus
    cap = THREADS_PER_CPU * cpus
    over = [n for n in values if n > cap]
    if over:
        raise EdgeoptError(f"{what} {max(over)} is more than {cap} ({THREADS_PER_CPU}x the {cpus} CPUs {where}): "
                           f"pass at most {cap}; more threads only time-share the cores")


def available_memory() -> int | None:
    """Bytes of memory a new allocation can get without swapping: the system's available
    memory (psutil, else /proc/meminfo's MemAvailable), lowered to what the cgroup
    (container) limit leaves; None when neither can be read."""
    avail = None
    try:
        import psutil

        avail = int(psutil.virtual_memory().available)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported here: fall back to /proc
        try:
            for line in Path("/proc/meminfo").read_text().splitlines():
                if line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) * 1024
        except (OSError, ValueError, IndexError):
            pass
    try:
        limit = (_CGROUP / "memory.max").read_text().strip()
        if limit != "max":
            left = int(limit) - int((_CGROUP / "memory.current").read_text())
            avail = left if avail is None else min(avail, left)
    except (OSError, ValueError):
        pass
    return avail


def human_bytes(n: float) -> str:
    """``n`` bytes for a message: "1.5 GiB", "300 MiB", "12 KiB"."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} bytes"
