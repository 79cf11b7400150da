"""What edgeopt controls of the machine around a benchmark cell: thread pinning and a
measured cooldown.

Pinning: the threads a runtime creates inherit the CPU affinity of the thread that
creates them (Linux ``sched_setaffinity(2)``: a new thread copies its creator's mask), so
setting the calling thread's affinity to ``threads`` CPUs before the session is prepared
pins the runtime's intra-op pool and the timing thread alike, for any runtime, and the
previous mask is restored after the cell. OpenVINO ``benchmark_app`` pins by default; here
it is an option (``--pin``), off by default, because on a shared machine a fixed core may
be the one another program is busy on, and the cell then waits behind it.

Cooldown (benchncnn's "cooling_down" between models, measured instead of a fixed sleep):
before a cell, poll the hottest temperature and the CPU frequency until the temperature
has stopped falling (its last ``window`` readings within ``temp_tol_c``) and the frequency
is back at ``freq_share`` of its maximum, or until the cap. Without either reading (VMs,
containers) it does not wait: a blind sleep would add time without evidence.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from ..errors import EdgeoptError
from .conditions import Readers

POLL_S = 1.0
WINDOW = 3
TEMP_TOL_C = 0.5
FREQ_SHARE = 0.95


@contextmanager
def pinned(threads: int, *, getaffinity: Callable = getattr(os, "sched_getaffinity", None),
           setaffinity: Callable = getattr(os, "sched_setaffinity", None)) -> Iterator[list[int] | None]:
    """Pin the calling thread (and the threads it creates) to ``threads`` CPUs for the block.

    The CPUs are the lowest-numbered ``threads`` of those this process may use; the
    previous affinity is restored when the block ends.

    Yields:
        the CPU numbers pinned to, or None where the platform has no affinity call
        (macOS, Windows) or refuses it; the block runs either way.
    """
    if getaffinity is None or setaffinity is None:
        yield None
        return
    try:
        before = set(getaffinity(0))
        cpus = sorted(before)[:max(1, threads)]
        setaffinity(0, set(cpus))
    except OSError:
        yield None
        return
    try:
        yield cpus
    finally:
        setaffinity(0, before)


@dataclass(frozen=True)
class Cooldown:
    """The wait before a cell: ``waited_s`` seconds; ``settled`` False when the cap ended
    it (None: nothing to measure, not waited)."""

    waited_s: float
    settled: bool | None


def _freq_ok(freq, share: float) -> bool | None:
    if not freq or freq[0] is None or freq[2] is None:
        return None  # no maximum to compare with: the frequency says nothing
    return freq[0] >= share * freq[2]


def cool_down(cap_s: float, *, readers: Readers | None = None, sleep: Callable[[float], None] = time.sleep,
              poll_s: float = POLL_S, window: int = WINDOW, temp_tol_c: float = TEMP_TOL_C,
              freq_share: float = FREQ_SHARE) -> Cooldown:
    """Wait until the temperature and frequency settle, at most ``cap_s`` seconds (see the
    module docstring for the rule).

    Args:
        cap_s: longest wait in seconds (>= 0; 0 returns at once).
        readers: the clock, temperature and frequency readers (:class:`Readers`).
        sleep: waits the given seconds between polls.
        poll_s: seconds between readings; window: readings that must agree;
        temp_tol_c: degrees C the last ``window`` readings may spread;
        freq_share: fraction of the maximum frequency that counts as recovered.

    Raises:
        EdgeoptError: a negative or non-finite cap.
    """
    if not (cap_s >= 0 and cap_s != float("inf")):
        raise EdgeoptError(f"cooldown={cap_s!r} is invalid: pass a number of seconds >= 0")
    r = readers or Readers()
    start = r.clock()
    temps: list[float] = []
    while True:
        temp, freq_ok = r.temperature(), _freq_ok(r.freq(), freq_share)
        if temp is None and freq_ok is None:
            return Cooldown(round(r.clock() - start, 3), None)
        if temp is not None:
            temps = (temps + [temp])[-window:]
        temp_ok = None if temp is None else len(temps) == window and max(temps) - min(temps) <= temp_tol_c
        if temp_ok is not False and freq_ok is not False:
            return Cooldown(round(r.clock() - start, 3), True)
        left = cap_s - (r.clock() - start)
        if left <= 0:
            return Cooldown(round(r.clock() - start, 3), False)
        sleep(min(poll_s, left))
