"""One wall-time deadline that every budgeted command asks before each step.

A budget holds by construction only if a step that would overrun it is never started:
a check after the step ("out of time?") lets the last step run over by its whole
length, which is how a 45 s search ran 56 s. So every step of a budgeted loop asks
:meth:`Deadline.fits` with the kind of step it is about to take ("cell", "trial",
"epoch", ...) and skips it, with the reason :meth:`Deadline.why_not` gives, when the
running estimate for that kind exceeds the time left. Long steps get
:meth:`Deadline.cap` (the time left) as their own cap, so a step whose estimate was
too low still ends at the deadline.

The estimate of a kind is the largest of its last :data:`WINDOW` measured durations
times a safety margin (default 1.2): the maximum, not the mean, because on a loaded
machine step times are right-skewed and one under-estimate is an overrun, while one
over-estimate only skips a step that would have fitted. Before the first step of a
kind is measured, the caller's prior is used (or 0: the first step always runs, then
is measured).

The clock is injected (``clock=``, seconds, monotonic) so every budget behaviour is
tested without depending on how busy the machine is.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import defaultdict, deque
from typing import Callable, Iterator

from ..errors import EdgeoptError

WINDOW = 8
"""How many recent durations of one kind the estimate looks at."""

DEFAULT_MARGIN = 1.2
"""Safety factor on the largest recent duration of a kind (20% head-room)."""


class Deadline:
    """A wall-time budget with per-kind step estimates learned from measured steps.

    Args:
        budget_s: the budget in seconds (> 0), or None for no deadline (every step fits).
        clock: monotonic clock in seconds (default :func:`time.perf_counter`); the
            deadline starts at construction.
        margin: safety factor (>= 1) on the largest recent duration of a kind.
        reserve_s: seconds (>= 0) kept back at the end for the command's own
            finishing work (writing results); :meth:`remaining` excludes them.
        start: when the budget started, on ``clock`` (default: now).

    Raises:
        EdgeoptError: a non-positive or non-finite budget, a margin below 1, or a
            negative reserve.
    """

    def __init__(self, budget_s: float | None, *, clock: Callable[[], float] = time.perf_counter,
                 margin: float = DEFAULT_MARGIN, reserve_s: float = 0.0, start: float | None = None) -> None:
        if budget_s is not None and not (math.isfinite(budget_s) and budget_s > 0):
            raise EdgeoptError(f"budget {budget_s!r} s is invalid: pass a positive number of seconds")
        if not margin >= 1:
            raise EdgeoptError(f"margin {margin!r} is invalid: pass a factor of at least 1")
        if not reserve_s >= 0:
            raise EdgeoptError(f"reserve {reserve_s!r} s is invalid: pass 0 or more seconds")
        self.budget_s, self.clock, self.margin, self.reserve_s = budget_s, clock, margin, reserve_s
        self.start = clock() if start is None else start
        self._seen: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=WINDOW))

    def elapsed(self) -> float:
        """Seconds since the deadline started."""
        return self.clock() - self.start

    def remaining(self) -> float:
        """Seconds left before the deadline, less the reserve (never below 0; inf without a budget)."""
        if self.budget_s is None:
            return math.inf
        return max(self.budget_s - self.reserve_s - self.elapsed(), 0.0)

    def expired(self) -> bool:
        """True when no time is left (never without a budget)."""
        return self.remaining() <= 0

    def allows(self, estimate_s: float) -> bool:
        """Whether a step of ``estimate_s`` seconds ends before the deadline.

        A zero estimate fits while any time is left; nothing fits once the deadline passed.
        """
        left = self.remaining()
        return left > 0 and estimate_s <= left

    def record(self, kind: str, seconds: float) -> None:
        """Learn that one step of ``kind`` took ``seconds`` (measured, >= 0)."""
        self._seen[kind].append(max(float(seconds), 0.0))

    def estimate(self, kind: str, prior_s: float = 0.0) -> float:
        """Seconds a step of ``kind`` is expected to need: the largest of its last
        :data:`WINDOW` durations times the margin, or ``prior_s`` before any was measured."""
        seen = self._seen.get(kind)
        return max(seen) * self.margin if seen else prior_s

    def fits(self, kind: str, prior_s: float = 0.0) -> bool:
        """Whether the next step of ``kind`` fits in the time left (:meth:`estimate`)."""
        return self.allows(self.estimate(kind, prior_s))

    def why_not(self, kind: str, prior_s: float = 0.0, *, need_s: float | None = None) -> str:
        """The reason a step of ``kind`` is skipped, for the record (seconds, 1 decimal);
        ``need_s`` overrides the estimate when the caller composed its own."""
        left = self.remaining()
        if left <= 0:
            return f"skipped: the budget of {self.budget_s:g} s was spent before this {kind}"
        need = self.estimate(kind, prior_s) if need_s is None else need_s
        return f"skipped: a {kind} needs ~{need:.1f} s and {left:.1f} s of the budget are left"

    def cap(self, ceiling_s: float = math.inf) -> float:
        """The time a step may take: what is left, at most ``ceiling_s`` seconds."""
        return min(self.remaining(), ceiling_s)

    @contextlib.contextmanager
    def step(self, kind: str) -> Iterator[None]:
        """Time the enclosed step with the clock and :meth:`record` it as ``kind``
        (also when it raises: a failed step took its time too)."""
        t0 = self.clock()
        try:
            yield
        finally:
            self.record(kind, self.clock() - t0)


class FakeClock:
    """A clock for tests: time moves only when :meth:`advance` is called (seconds)."""

    def __init__(self, now: float = 0.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds``."""
        self.now += seconds


def process_elapsed_s() -> float:
    """Seconds since this process started (interpreter start-up and imports included), so
    a command's budget can count from when the user ran it; 0.0 where it cannot be read.

    From psutil's process creation time when installed, else Linux's /proc/self/stat
    start time (clock ticks since boot) against /proc/uptime.
    """
    try:
        import psutil

        return max(time.time() - psutil.Process().create_time(), 0.0)
    except Exception:  # noqa: BLE001 - psutil missing or unsupported: try /proc
        pass
    try:
        import os

        with open("/proc/self/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return max(uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"), 0.0)
    except (OSError, ValueError, IndexError):
        return 0.0


_command_start: float | None = None


def mark_command_start(*, process_start: bool = False) -> None:
    """Note that a command starts (the CLI's entry point calls it): its budget counts from
    now, loading included, or with ``process_start`` from when the process started (the
    interpreter's start-up and imports too: seconds on a loaded small board)."""
    global _command_start
    _command_start = time.perf_counter() - (process_elapsed_s() if process_start else 0.0)


def command_elapsed_s() -> float:
    """Seconds since :func:`mark_command_start`, or since the process started when no
    command was marked (:func:`process_elapsed_s`)."""
    if _command_start is None:
        return process_elapsed_s()
    return time.perf_counter() - _command_start


WRITE_RESERVE_S = 5.0
"""Seconds a command keeps for writing its results (matplotlib's import and two plots take
about this long on a loaded 2-core machine), between 10% and 30% of its budget."""


def command_budget(budget_s: float) -> float:
    """The part of a command's ``budget_s`` (seconds) its main loop may spend: less the time
    the command already took (:func:`command_elapsed_s`: start-up, loading) and a reserve
    for writing the results afterwards (:data:`WRITE_RESERVE_S`, at least 10% and at most
    30% of the budget); never below 5% of the budget, so a budget that loading alone
    spent still measures a first step (and overruns by it) rather than failing after the wait.
    """
    reserve = min(max(0.1 * budget_s, WRITE_RESERVE_S), 0.3 * budget_s)
    return max(budget_s - reserve - command_elapsed_s(), 0.05 * budget_s)
