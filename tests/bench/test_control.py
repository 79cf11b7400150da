"""Pinning and cooldown with fake affinity calls, a fake clock and fake readers."""

from __future__ import annotations

import pytest

from edgeopt.bench.conditions import Readers
from edgeopt.bench.control import Cooldown, cool_down, pinned
from edgeopt.errors import EdgeoptError


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _readers(clock: FakeClock, temps=None, freqs=None) -> Readers:
    """Readers whose temperature/frequency follow a function of the fake time."""
    return Readers(clock=clock, temperature=(lambda: temps(clock.now)) if temps else (lambda: None),
                   freq=(lambda: freqs(clock.now)) if freqs else (lambda: None))


def test_cooldown_waits_until_the_temperature_stops_falling():
    clock = FakeClock()
    # falls 2 C a second from 70 C to 60 C at t=5, then flat
    cd = cool_down(60, readers=_readers(clock, temps=lambda t: max(60.0, 70.0 - 2 * t)), sleep=clock.sleep)
    # readings 70,68,66,64,62,60,60,60: the window of 3 agrees at t=7
    assert cd == Cooldown(7.0, True)
    assert clock.sleeps == [1.0] * 7


def test_cooldown_waits_for_the_frequency_and_stops_at_the_cap():
    clock = FakeClock()
    low_until_4 = lambda t: (1200.0 if t < 4 else 1790.0, 600.0, 1800.0)  # noqa: E731
    assert cool_down(60, readers=_readers(clock, freqs=low_until_4), sleep=clock.sleep) == Cooldown(4.0, True)
    clock = FakeClock()
    rising = lambda t: 50.0 + t  # noqa: E731  (never settles)
    cd = cool_down(2.5, readers=_readers(clock, temps=rising), sleep=clock.sleep)
    assert cd == Cooldown(2.5, False) and clock.sleeps == [1.0, 1.0, 0.5]


def test_cooldown_without_readings_does_not_sleep():
    clock = FakeClock()
    no_max = lambda t: (2600.0, None, None)  # noqa: E731  (a VM: no maximum to recover to)
    assert cool_down(30, readers=_readers(clock, freqs=no_max), sleep=clock.sleep) == Cooldown(0.0, None)
    assert clock.sleeps == []
    with pytest.raises(EdgeoptError, match="cooldown=-1"):
        cool_down(-1)


def test_pinned_sets_and_restores_the_affinity():
    mask = {0, 1, 2, 3}
    calls = []

    def setaff(pid, cpus):
        calls.append(set(cpus))
        mask.clear()
        mask.update(cpus)

    with pinned(2, getaffinity=lambda pid: set(mask), setaffinity=setaff) as cpus:
        assert cpus == [0, 1] and mask == {0, 1}
    assert mask == {0, 1, 2, 3} and calls == [{0, 1}, {0, 1, 2, 3}]
    with pinned(2, getaffinity=None, setaffinity=None) as cpus:
        assert cpus is None

    def refuse(pid, cpus):
        raise OSError("EPERM")

    with pinned(1, getaffinity=lambda pid: {0, 1}, setaffinity=refuse) as cpus:
        assert cpus is None
