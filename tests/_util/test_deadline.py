"""The deadline object: every behaviour on an injected clock (no real time passes)."""

import math

import pytest

from edgeopt._util.deadline import Deadline, FakeClock
from edgeopt.errors import EdgeoptError


def test_remaining_expired_and_reserve():
    clock = FakeClock(100.0)
    d = Deadline(10.0, clock=clock, reserve_s=1.0)
    assert d.remaining() == 9.0 and not d.expired()
    clock.advance(4.5)
    assert d.elapsed() == 4.5 and d.remaining() == 4.5
    clock.advance(5.0)
    assert d.remaining() == 0.0 and d.expired() and not d.allows(0.0)


def test_estimate_is_the_largest_recent_step_with_margin():
    clock = FakeClock()
    d = Deadline(100.0, clock=clock, margin=1.5)
    assert d.estimate("cell") == 0.0 and d.estimate("cell", prior_s=3.0) == 3.0
    for seconds in (2.0, 4.0, 3.0):
        with d.step("cell"):
            clock.advance(seconds)
    assert d.estimate("cell") == 6.0  # 4 s * 1.5, not the mean
    assert d.estimate("trial", prior_s=7.0) == 7.0  # kinds are separate
    for _ in range(8):  # the 4 s step leaves the window of 8
        d.record("cell", 1.0)
    assert d.estimate("cell") == 1.5


def test_fits_refuses_a_step_longer_than_the_time_left():
    clock = FakeClock()
    d = Deadline(10.0, clock=clock, margin=1.0)
    with d.step("trial"):
        clock.advance(3.0)
    assert d.fits("trial")  # 7 s left, 3 s needed
    clock.advance(4.5)
    assert not d.fits("trial") and d.allows(2.5)
    assert d.why_not("trial") == "skipped: a trial needs ~3.0 s and 2.5 s of the budget are left"
    clock.advance(5)
    assert d.why_not("trial") == "skipped: the budget of 10 s was spent before this trial"
    assert d.cap() == 0.0


def test_a_failed_step_is_measured_too():
    clock = FakeClock()
    d = Deadline(10.0, clock=clock, margin=1.0)
    with pytest.raises(RuntimeError), d.step("epoch"):
        clock.advance(2.0)
        raise RuntimeError("boom")
    assert d.estimate("epoch") == 2.0


def test_no_budget_fits_everything_and_caps_at_the_ceiling():
    d = Deadline(None, clock=FakeClock())
    d.record("cell", 1e9)
    assert d.remaining() == math.inf and d.fits("cell") and not d.expired()
    assert d.cap(5.0) == 5.0


@pytest.mark.parametrize("bad", [dict(budget_s=0), dict(budget_s=-1), dict(budget_s=math.nan),
                                 dict(budget_s=1, margin=0.5), dict(budget_s=1, reserve_s=-1)])
def test_bad_settings(bad):
    with pytest.raises(EdgeoptError, match="invalid: pass"):
        Deadline(**bad)


def test_process_elapsed_from_psutil_or_proc(monkeypatch):
    import sys
    import time

    from edgeopt._util import deadline

    first = deadline.process_elapsed_s()
    monkeypatch.setitem(sys.modules, "psutil", None)  # the /proc fallback
    second = deadline.process_elapsed_s()
    assert 0 < first and abs(second - first) < 1.0  # the same start, to a clock tick or two
    monkeypatch.setattr(deadline, "command_elapsed_s", lambda: 3.0)
    assert deadline.command_budget(20.0) == pytest.approx(20.0 - 5.0 - 3.0)  # 5 s to write
    assert deadline.command_budget(100.0) == pytest.approx(100.0 - 10.0 - 3.0)  # 10%
    assert deadline.command_budget(10.0) == pytest.approx(10.0 - 3.0 - 3.0)  # at most 30%
    assert deadline.command_budget(3.0) == pytest.approx(0.15)  # spent by loading: 5% still measures a step


def test_a_marked_command_counts_from_its_start(monkeypatch):
    from edgeopt._util import deadline

    monkeypatch.setattr(deadline, "_command_start", None)
    monkeypatch.setattr(deadline, "process_elapsed_s", lambda: 42.0)
    assert deadline.command_elapsed_s() == 42.0
    clock = FakeClock(10.0)
    monkeypatch.setattr(deadline.time, "perf_counter", clock)
    deadline.mark_command_start()
    clock.advance(2.5)
    assert deadline.command_elapsed_s() == 2.5
    deadline.mark_command_start(process_start=True)  # the interpreter's start-up counts too
    assert deadline.command_elapsed_s() == 42.0
