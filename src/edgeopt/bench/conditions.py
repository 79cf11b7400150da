"""The conditions a benchmark cell was measured under: what else ran, how hot, how fast.

A latency measured while other programs used the CPU, or while the CPU was throttled,
is a different number from one measured on a quiet machine. Each cell records one
compact dict (numbers, never process lists), from a snapshot at its start and its end:

- ``load1_start``/``load1_end``: the 1-minute load average (``os.getloadavg``);
- ``other_cpu_pct``: the share of all CPUs that OTHER processes kept busy during the
  cell, in % of ``wall_s * cpus``: system-wide busy CPU time (``/proc/stat`` through
  ``psutil.cpu_times``: total minus idle, iowait and steal) minus this process's own CPU
  time (``/proc/self/stat`` through ``psutil.Process.cpu_times``: user + system, every
  thread of the runtime included), clipped to [0, 100];
- ``steal_pct``: CPU time the hypervisor gave to other guests, same unit;
- ``governor``, ``freq_mhz_start``/``freq_mhz_end``/``freq_mhz_min``/``freq_mhz_max``:
  the cpufreq governor(s) (``/sys/devices/system/cpu/cpu*/cpufreq/scaling_governor``)
  and the frequency (``psutil.cpu_freq``: the current one, and the policy's
  ``scaling_min_freq``/``scaling_max_freq``, which thermal cooling lowers), None where
  the platform does not say;
- ``temp_c_start``/``temp_c_end``: the hottest thermal zone (``/sys/class/thermal``,
  else ``psutil.sensors_temperatures``), in degrees C;
- ``throttled``: a Raspberry Pi's ``vcgencmd get_throttled`` says it is under-voltage,
  capped, throttled or at its soft temperature limit now (bits 0-3 of the value, as the
  Raspberry Pi documentation defines them), ``throttled_raw`` the value (None elsewhere);
- ``pinned``: whether the cell's threads were pinned to cores; ``cooldown_s``: the
  seconds waited before it for the machine to settle (:mod:`edgeopt.bench.cooldown`).

Every reader is injectable (:class:`Readers`), so the arithmetic is tested on fake
``/proc`` readings rather than on the machine the tests happen to run on.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

_THERMAL = Path("/sys/class/thermal")
_CPUFREQ_GLOB = "cpu[0-9]*/cpufreq/scaling_governor"
_CPU_DIR = Path("/sys/devices/system/cpu")
THROTTLE_NOW_BITS = 0xF
"""vcgencmd get_throttled bits 0-3: under-voltage, ARM frequency capped, throttled, soft
temperature limit, each *now* (bits 16-19 say the same happened since boot)."""


@dataclass(frozen=True)
class CpuTimes:
    """System-wide CPU seconds summed over all CPUs: ``busy`` (not idle, iowait or steal)
    and ``steal`` (taken by the hypervisor for other guests)."""

    busy: float
    steal: float


@dataclass(frozen=True)
class Snapshot:
    """What the readers said at one instant (see :class:`Readers` for each unit)."""

    clock_s: float
    cpu: CpuTimes | None
    self_cpu_s: float | None
    load1: float | None
    freq_mhz: tuple[float | None, float | None, float | None] | None
    governor: str | None
    temp_c: float | None
    throttled: int | None


def _psutil_cpu() -> CpuTimes | None:
    import psutil

    t = psutil.cpu_times()
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)  # guest is in user already
    idle = t.idle + getattr(t, "iowait", 0.0)
    steal = getattr(t, "steal", 0.0)
    return CpuTimes(busy=total - idle - steal, steal=steal)


def _psutil_self_cpu() -> float | None:
    import psutil

    t = psutil.Process().cpu_times()
    return t.user + t.system


def _loadavg() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def _psutil_freq() -> tuple[float | None, float | None, float | None] | None:
    import psutil

    try:
        f = psutil.cpu_freq()
    except (NotImplementedError, OSError, FileNotFoundError):
        return None
    if f is None:
        return None
    # psutil reports 0 for a bound the platform does not expose (VMs, containers)
    return tuple(float(x) if x else None for x in (f.current, f.min, f.max))  # type: ignore[return-value]


def read_governor(cpu_dir: Path = _CPU_DIR) -> str | None:
    """The cpufreq governor(s) in use, sorted and joined by "," when CPUs differ; None
    without cpufreq (VMs, containers, macOS)."""
    names = set()
    for path in cpu_dir.glob(_CPUFREQ_GLOB):
        try:
            names.add(path.read_text().strip())
        except OSError:
            continue
    return ",".join(sorted(n for n in names if n)) or None


def read_hw_max_freq(cpu_dir: Path = _CPU_DIR) -> float | None:
    """The hardware's highest frequency in MHz (the lowest ``cpuinfo_max_freq`` over the
    CPUs, in kHz in sysfs), None without cpufreq."""
    values = []
    for path in cpu_dir.glob("cpu[0-9]*/cpufreq/cpuinfo_max_freq"):
        try:
            values.append(int(path.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    return min(values) if values else None


def read_temperature(thermal_dir: Path = _THERMAL) -> float | None:
    """The hottest thermal zone in degrees C (sysfs reports millidegrees), else psutil's
    hottest sensor, else None."""
    temps = []
    for path in thermal_dir.glob("thermal_zone*/temp"):
        try:
            temps.append(int(path.read_text().strip()) / 1000.0)
        except (OSError, ValueError):
            continue
    if temps:
        return max(temps)
    try:
        import psutil

        sensors = psutil.sensors_temperatures() if hasattr(psutil, "sensors_temperatures") else {}
    except (OSError, RuntimeError):
        return None
    values = [s.current for group in sensors.values() for s in group if s.current is not None]
    return max(values) if values else None


def parse_throttled(text: str) -> int | None:
    """The value of ``vcgencmd get_throttled`` output ("throttled=0x50005"), None if absent."""
    m = re.search(r"throttled=(0x[0-9a-fA-F]+|\d+)", text)
    return int(m.group(1), 0) if m else None


def read_throttled() -> int | None:
    """``vcgencmd get_throttled`` on a Raspberry Pi (None where vcgencmd is not on PATH or
    fails)."""
    exe = shutil.which("vcgencmd")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "get_throttled"], capture_output=True, text=True, timeout=2.0)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_throttled(out.stdout)


@dataclass(frozen=True)
class Readers:
    """Where each reading comes from; every one may return None (not reported here).

    Attributes:
        clock: monotonic seconds.
        cpu: system-wide :class:`CpuTimes` in CPU seconds.
        self_cpu: this process's user + system CPU seconds (all its threads).
        load1: 1-minute load average.
        freq: (current, min, max) frequency in MHz.
        governor: cpufreq governor name(s).
        temperature: hottest zone, degrees C.
        throttled: Raspberry Pi ``get_throttled`` value.
        hw_max_freq: the hardware's highest frequency, MHz (the cooldown's reference).
        cpus: CPUs the shares are taken over (the machine's logical CPUs).
    """

    clock: Callable[[], float] = time.monotonic
    cpu: Callable[[], CpuTimes | None] = _psutil_cpu
    self_cpu: Callable[[], float | None] = _psutil_self_cpu
    load1: Callable[[], float | None] = _loadavg
    freq: Callable[[], Any] = _psutil_freq
    governor: Callable[[], str | None] = read_governor
    temperature: Callable[[], float | None] = read_temperature
    throttled: Callable[[], int | None] = read_throttled
    hw_max_freq: Callable[[], float | None] = read_hw_max_freq
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)


def _safe(read: Callable[[], Any]) -> Any:
    # a reading the platform refuses is "not reported", never a failed benchmark
    try:
        return read()
    except Exception:
        return None


def snapshot(readers: Readers | None = None) -> Snapshot:
    """One reading of every source (None for a source that fails or is absent)."""
    r = readers or Readers()
    return Snapshot(clock_s=r.clock(), cpu=_safe(r.cpu), self_cpu_s=_safe(r.self_cpu), load1=_safe(r.load1),
                    freq_mhz=_safe(r.freq), governor=_safe(r.governor), temp_c=_safe(r.temperature),
                    throttled=_safe(r.throttled))


def _pct(part: float, whole: float) -> float:
    return round(min(100.0, max(0.0, 100.0 * part / whole)), 1)


def summarize(start: Snapshot, end: Snapshot, cpus: int, *, pinned: bool | None = None) -> dict[str, Any]:
    """The compact record of a cell measured between two snapshots (keys in the module
    docstring; shares in % of ``wall_s * cpus``, None when a reading is missing or no
    time passed)."""
    wall = end.clock_s - start.clock_s
    capacity = wall * max(1, cpus)
    other = steal = None
    if start.cpu is not None and end.cpu is not None and capacity > 0:
        steal = _pct(end.cpu.steal - start.cpu.steal, capacity)
        if start.self_cpu_s is not None and end.self_cpu_s is not None:
            own = end.self_cpu_s - start.self_cpu_s
            other = _pct((end.cpu.busy - start.cpu.busy) - own, capacity)
    f0, f1 = start.freq_mhz or (None, None, None), end.freq_mhz or (None, None, None)
    throttled = [t for t in (start.throttled, end.throttled) if t is not None]
    return {
        "wall_s": round(wall, 3), "cpus": cpus,
        "load1_start": start.load1, "load1_end": end.load1,
        "other_cpu_pct": other, "steal_pct": steal,
        "governor": end.governor or start.governor,
        "freq_mhz_start": f0[0], "freq_mhz_end": f1[0], "freq_mhz_min": f1[1] or f0[1],
        "freq_mhz_max": f1[2] or f0[2],
        "temp_c_start": start.temp_c, "temp_c_end": end.temp_c,
        "throttled": any(t & THROTTLE_NOW_BITS for t in throttled) if throttled else None,
        "throttled_raw": hex(throttled[-1]) if throttled else None,
        "pinned": pinned,
    }


@contextmanager
def recording(*, pinned: bool | None = None, readers: Readers | None = None) -> Iterator[dict[str, Any]]:
    """Record the conditions of the code inside the block.

    Yields an empty dict that is filled, when the block ends (normally or by an
    exception), with :func:`summarize` of the snapshots at its start and end; the
    caller may add keys (``pinned``, ``cooldown_s``) to it.
    """
    r = readers or Readers()
    record: dict[str, Any] = {}
    start = snapshot(r)
    try:
        yield record
    finally:
        extra = dict(record)
        record.update(summarize(start, snapshot(r), r.cpus, pinned=pinned))
        record.update(extra)


OTHER_CPU_MATERIAL_PCT = 20.0
"""Difference in ``other_cpu_pct`` (percentage points of the machine) past which two cells
did not run under the same interference: on the 2-core boards edgeopt targets, 20 points
is ~0.4 of a core taken by other programs, enough to move a p50 by more than the 5%
compare calls real (:data:`edgeopt.bench.compare.MIN_EFFECT`)."""
STEAL_MATERIAL_PCT = 10.0
"""Difference in ``steal_pct`` (percentage points) past which two cells did not run on
the same share of the host."""


def merge_records(records: list[dict[str, Any]]) -> dict[str, Any]:
    """One conditions record for a cell timed in several sessions, one record each: the
    worst interference (the largest other-CPU share and steal, throttled if any was),
    the boards lost mid-session summed (``board_lost``), ``*_start`` readings from the
    first, everything else from the last."""
    if not records:
        return {}
    out = {**records[0], **{k: v for k, v in records[-1].items() if not k.endswith("_start")}}
    for key in ("other_cpu_pct", "steal_pct"):
        seen = [r[key] for r in records if r.get(key) is not None]
        if seen:
            out[key] = max(seen)
    throttled = [r.get("throttled") for r in records if r.get("throttled") is not None]
    if throttled:
        out["throttled"] = any(throttled)
    if any("wall_s" in r for r in records):
        out["wall_s"] = sum(r.get("wall_s") or 0.0 for r in records)
    if any(r.get("board_lost") for r in records):  # sessions measured again after a board died
        out["board_lost"] = sum(r.get("board_lost") or 0 for r in records)
    return out


def interference_difference(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str | None:
    """Why cells measured under conditions ``a`` and ``b`` are not comparable, or None.

    Material differences: other processes' CPU share by more than
    :data:`OTHER_CPU_MATERIAL_PCT` points, steal by more than :data:`STEAL_MATERIAL_PCT`
    points, or one throttled while the other was not. A reading missing on either side
    (an older result, a platform that does not report it) is not a difference.
    """
    if not a or not b:
        return None
    why = []
    for key, limit, what in (("other_cpu_pct", OTHER_CPU_MATERIAL_PCT, "other processes used"),
                             ("steal_pct", STEAL_MATERIAL_PCT, "steal was")):
        x, y = a.get(key), b.get(key)
        if x is not None and y is not None and abs(x - y) > limit:
            why.append(f"{what} {x:.0f}% of the CPU in A, {y:.0f}% in B")
    ta, tb = a.get("throttled"), b.get("throttled")
    if ta is not None and tb is not None and ta != tb:
        why.append(f"the CPU was throttled in {'A' if ta else 'B'} only")
    return "; ".join(why) or None


OTHER_CPU_NOISY_PCT = 25.0
"""Other processes' share of the machine (%) past which a cell's latency is marked as
measured under interference: a quarter of the CPUs busy with other work (half a core on
a 2-core board) competes with the runtime's threads for cores, caches and memory."""
STEAL_NOISY_PCT = 10.0
"""Steal (%) past which the host took enough of the CPUs to move a latency."""


def interference(record: dict[str, Any] | None) -> str | None:
    """What interfered with a cell, in words ("other processes used 62% of the CPU;
    throttled"), or None when its record shows nothing past :data:`OTHER_CPU_NOISY_PCT`,
    :data:`STEAL_NOISY_PCT` or throttling (or it has no record)."""
    if not record:
        return None
    why = []
    other, steal = record.get("other_cpu_pct"), record.get("steal_pct")
    if other is not None and other > OTHER_CPU_NOISY_PCT:
        why.append(f"other processes used {other:.0f}% of the CPU")
    if steal is not None and steal > STEAL_NOISY_PCT:
        why.append(f"steal {steal:.0f}%")
    if record.get("throttled"):
        why.append(f"throttled ({record.get('throttled_raw')})")
    return "; ".join(why) or None
