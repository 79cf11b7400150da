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
before a cell, poll what heat changes until each signal the platform reports has settled
over the last ``window`` readings, or until the cap:

- the hottest temperature has stopped falling (spread <= ``temp_tol_c``);
- the frequency cap (``scaling_max_freq``, as ``psutil.cpu_freq().max`` reads it, which
  the kernel's thermal cpufreq cooling lowers on a hot CPU) is back within ``freq_tol``
  of the hardware maximum (``cpuinfo_max_freq``), or, where that is unknown, has stopped
  moving. A cap the user lowered on purpose therefore waits the whole cap. The *current*
  frequency is not a signal: an idle CPU under the ondemand, schedutil or powersave
  governor clocks down whatever its temperature;
- a Raspberry Pi no longer reports throttling now (``vcgencmd get_throttled`` bits 0-3).

Without any of them (VMs, containers) it does not wait: a blind sleep adds time without
evidence.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator

from ..errors import EdgeoptError
from .conditions import THROTTLE_NOW_BITS, Readers

POLL_S = 1.0
WINDOW = 3
TEMP_TOL_C = 0.5
FREQ_TOL = 0.01


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


def _settled(history: list[float], window: int, tol: float) -> bool:
    return len(history) >= window and max(history[-window:]) - min(history[-window:]) <= tol


def cool_down(cap_s: float, *, readers: Readers | None = None, sleep: Callable[[float], None] = time.sleep,
              poll_s: float = POLL_S, window: int = WINDOW, temp_tol_c: float = TEMP_TOL_C,
              freq_tol: float = FREQ_TOL) -> Cooldown:
    """Wait until temperature, frequency cap and throttling settle, at most ``cap_s``
    seconds (see the module docstring for the rule).

    Args:
        cap_s: longest wait in seconds (>= 0).
        readers: the clock, temperature, frequency and throttling readers (:class:`Readers`).
        sleep: waits the given seconds between polls.
        poll_s: seconds between readings; window: readings that must agree;
        temp_tol_c: degrees C the last ``window`` temperatures may spread;
        freq_tol: fraction of the hardware maximum the cap may stay below (or, without
            it, of the cap its last ``window`` readings may spread).

    Raises:
        EdgeoptError: a negative or non-finite cap.
    """
    if not (cap_s >= 0 and cap_s != float("inf")):
        raise EdgeoptError(f"cooldown={cap_s!r} is invalid: pass a number of seconds >= 0")
    r = readers or Readers()
    start = r.clock()
    temps: list[float] = []
    caps: list[float] = []
    while True:
        temp, freq, throttled = r.temperature(), r.freq(), r.throttled()
        cap = freq[2] if freq else None
        hw_max = r.hw_max_freq() if cap is not None else None
        if temp is None and cap is None and throttled is None:
            return Cooldown(round(r.clock() - start, 3), None)
        temps += [] if temp is None else [temp]
        caps += [] if cap is None else [cap]
        if ((temp is None or _settled(temps, window, temp_tol_c))
                and (cap is None or (cap >= (1 - freq_tol) * hw_max if hw_max
                                     else _settled(caps, window, freq_tol * cap)))
                and not (throttled or 0) & THROTTLE_NOW_BITS):
            return Cooldown(round(r.clock() - start, 3), True)
        left = cap_s - (r.clock() - start)
        if left <= 0:
            return Cooldown(round(r.clock() - start, 3), False)
        sleep(min(poll_s, left))


@dataclass(frozen=True)
class CellControl:
    """What a command controls around each cell, and how the cell's record says so.

    Attributes:
        pin: pin each cell's threads (prepare included) to the first cores (:func:`pinned`).
        cooldown_s: before each cell, wait at most this many seconds for the machine to
            settle (:func:`cool_down`; 0: no wait), never more than half the cell's share.

    Raises:
        EdgeoptError: a negative or non-finite cooldown.
    """

    pin: bool = False
    cooldown_s: float = 0.0

    def __post_init__(self) -> None:
        if not (self.cooldown_s >= 0 and self.cooldown_s != float("inf")):
            raise EdgeoptError(f"cooldown={self.cooldown_s!r} is invalid: pass a number of seconds >= 0")

    def pinning(self, threads: int) -> ContextManager[list[int] | None]:
        """:func:`pinned` to ``threads`` CPUs when ``pin``, else a block that yields None."""
        return pinned(threads) if self.pin else nullcontext(None)

    def settle(self, share_s: float | None = None) -> Cooldown | None:
        """The cooldown before a cell with ``share_s`` seconds of budget (None: no budget):
        at most ``cooldown_s`` and half the share; None when there is none to wait."""
        cap = self.cooldown_s if share_s is None else min(self.cooldown_s, share_s / 2)
        return cool_down(cap) if cap > 0 else None

    @staticmethod
    def record(cpus: list[int] | None, waited: Cooldown | None) -> dict[str, Any]:
        """The control fields of a cell's ``conditions`` record: pinned, pinned_cpus,
        cooldown_s (seconds waited) and cooldown_settled (None where not waited)."""
        return {"pinned": cpus is not None, "pinned_cpus": cpus,
                "cooldown_s": None if waited is None else waited.waited_s,
                "cooldown_settled": None if waited is None else waited.settled}
