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


def _readers(clock: FakeClock, temps=None, freqs=None, throttled=None, hw_max=None) -> Readers:
    """Readers whose temperature/frequency/throttling follow a function of the fake time."""
    def of(f):
        return (lambda: f(clock.now)) if f else (lambda: None)

    return Readers(clock=clock, temperature=of(temps), freq=of(freqs), throttled=of(throttled),
                   hw_max_freq=lambda: hw_max)


def test_cooldown_waits_until_the_temperature_stops_falling():
    clock = FakeClock()
    # falls 2 C a second from 70 C to 60 C at t=5, then flat
    cd = cool_down(60, readers=_readers(clock, temps=lambda t: max(60.0, 70.0 - 2 * t)), sleep=clock.sleep)
    # readings 70,68,66,64,62,60,60,60: the window of 3 agrees at t=7
    assert cd == Cooldown(7.0, True)
    assert clock.sleeps == [1.0] * 7


def test_cooldown_follows_the_frequency_cap_not_the_idle_clock():
    clock = FakeClock()
    # thermal cooling lifts the cap from 1200 to the hardware's 1800 MHz at t=4; the idle clock stays at 600
    lifting = lambda t: (600.0, 600.0, 1200.0 if t < 4 else 1800.0)  # noqa: E731
    cd = cool_down(60, readers=_readers(clock, freqs=lifting, hw_max=1800.0), sleep=clock.sleep)
    assert cd == Cooldown(4.0, True)
    clock = FakeClock()
    idle = lambda t: (600.0, 600.0, 1800.0)  # noqa: E731  (a cool CPU at rest: settled at once)
    assert cool_down(60, readers=_readers(clock, freqs=idle, hw_max=1800.0), sleep=clock.sleep) == Cooldown(0.0, True)
    clock = FakeClock()
    # without the hardware maximum: settled once the cap stops moving (3 equal readings)
    assert cool_down(60, readers=_readers(clock, freqs=lifting), sleep=clock.sleep) == Cooldown(2.0, True)


def test_cooldown_waits_out_raspberry_pi_throttling_and_stops_at_the_cap():
    clock = FakeClock()
    pi = lambda t: 0x50004 if t < 3 else 0x50000  # noqa: E731  (throttled now until t=3; past bits stay)
    assert cool_down(60, readers=_readers(clock, throttled=pi), sleep=clock.sleep) == Cooldown(3.0, True)
    clock = FakeClock()
    rising = lambda t: 50.0 + t  # noqa: E731  (never settles)
    cd = cool_down(2.5, readers=_readers(clock, temps=rising), sleep=clock.sleep)
    assert cd == Cooldown(2.5, False) and clock.sleeps == [1.0, 1.0, 0.5]


def test_cooldown_without_readings_does_not_sleep():
    clock = FakeClock()
    no_cap = lambda t: (2600.0, None, None)  # noqa: E731  (a VM: no policy cap reported)
    assert cool_down(30, readers=_readers(clock, freqs=no_cap), sleep=clock.sleep) == Cooldown(0.0, None)
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
