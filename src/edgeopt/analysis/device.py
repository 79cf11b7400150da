"""Device profiles: what a CPU can do, measured here or written from a datasheet.

The roofline (Williams, Waterman & Patterson, "Roofline: an insightful visual performance
model for multicore architectures", CACM 2009) needs two numbers per machine: peak
arithmetic throughput and memory bandwidth; the energy and dataflow models also need the
cache / on-chip buffer sizes. ``edgeopt machine`` measures them on this machine and saves
a profile (JSON); boards we cannot run here (Raspberry Pi, Jetson Nano) ship as profiles
written from their datasheets, with ``source="datasheet"`` so no report mistakes them for
a measurement.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgeoptError
from .._util.atomic import atomic_write_bytes
from .._util.cache import cache_root
from .._util.userfile import read_user_text

SCHEMA = "edgeopt.device/1"


@dataclass(frozen=True)
class DeviceProfile:
    """One CPU.

    Attributes:
        name: display name ("this machine: AMD EPYC", "Raspberry Pi 4 (BCM2711)").
        source: "measured" (``edgeopt machine``) or "datasheet" (written by hand; the
            numbers are vendor peaks, not measurements).
        cores: physical cores (threads the runtimes use).
        peak_gflops: {"fp32": {threads: GFLOP/s}, "int8": {threads: GOP/s}}; 1 MAC = 2 FLOPs.
            Keys are thread counts as strings in JSON, ints here.
        bandwidth_gbs: sustained DRAM bandwidth in GB/s (1e9 bytes/s), by kernel: "copy",
            "triad" (STREAM's names, McCalpin 1995); the roofline uses the largest.
        caches: {"L1d": bytes, "L2": bytes, "L3": bytes} per core or shared as the OS
            reports them (the last level is shared on most CPUs).
        notes: where each number came from (method, datasheet URL), free text.
        memory_roofs_gbs: the cache-aware roofs, {"L2" | "L3" | "DRAM": {threads: GB/s}}
            (:mod:`edgeopt.bench.machine.cache_bandwidth`); empty for a datasheet profile or
            one measured before they existed.
    """

    name: str
    source: str
    cores: int
    peak_gflops: dict[str, dict[int, float]]
    bandwidth_gbs: dict[str, float]
    caches: dict[str, int] = field(default_factory=dict)
    notes: str = ""
    memory_roofs_gbs: dict[str, dict[int, float]] = field(default_factory=dict)

    def peak(self, precision: str = "fp32", threads: int | None = None) -> float:
        """Peak GFLOP/s (GOP/s for int8) at ``threads`` (default: the most measured).

        Raises:
            EdgeoptError: no figure for this precision (the message lists what there is).
        """
        table = self.peak_gflops.get(precision)
        if not table:
            raise EdgeoptError(f"device profile {self.name!r} has no {precision} peak (it has "
                               f"{', '.join(self.peak_gflops) or 'none'}): re-run `edgeopt machine` or pick fp32")
        return _at_threads(table, threads)

    def memory_roofs(self, threads: int | None = None) -> dict[str, float]:
        """The cache-aware memory roofs at ``threads``: {"L2" | "L3" | "DRAM": GB/s} (the
        nearest measured thread count not above; empty when none were measured)."""
        return {level: _at_threads(table, threads) for level, table in self.memory_roofs_gbs.items() if table}

    @property
    def bandwidth(self) -> float:
        """The roofline's memory roof: the best sustained bandwidth, GB/s."""
        return max(self.bandwidth_gbs.values())

    @property
    def ridge_point(self) -> float:
        """Arithmetic intensity (FLOPs per byte) where the fp32 roofs meet, at full threads."""
        return self.peak("fp32") / self.bandwidth

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (thread keys as strings)."""
        d = asdict(self)
        d["peak_gflops"] = {p: {str(t): v for t, v in tbl.items()} for p, tbl in self.peak_gflops.items()}
        d["memory_roofs_gbs"] = {k: {str(t): v for t, v in tbl.items()} for k, tbl in self.memory_roofs_gbs.items()}
        return {"schema": SCHEMA, **d}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "DeviceProfile":
        """Inverse of :meth:`to_dict`.

        Raises:
            EdgeoptError: not an edgeopt device profile.
        """
        if not isinstance(d, dict) or d.get("schema") != SCHEMA:
            raise EdgeoptError(f"not an {SCHEMA} device profile: write one with `edgeopt machine --out FILE`")
        try:
            return cls(name=d["name"], source=d["source"], cores=int(d["cores"]),
                       peak_gflops={p: {int(t): float(v) for t, v in tbl.items()}
                                    for p, tbl in d["peak_gflops"].items()},
                       bandwidth_gbs={k: float(v) for k, v in d["bandwidth_gbs"].items()},
                       caches={k: int(v) for k, v in d.get("caches", {}).items()}, notes=d.get("notes", ""),
                       memory_roofs_gbs={k: {int(t): float(v) for t, v in tbl.items()}
                                         for k, tbl in d.get("memory_roofs_gbs", {}).items()})
        except (KeyError, TypeError, ValueError) as e:
            raise EdgeoptError(f"device profile is missing or mangles {e}: write one with `edgeopt machine`") from e


def _at_threads(table: dict[int, float], threads: int | None) -> float:
    """``table[threads]``, else the nearest measured count not above it (a roof at more
    threads than the runtime uses would overstate it); the most threads for None."""
    if threads is None:
        return table[max(table)]
    below = [t for t in table if t <= threads]
    return table[max(below) if below else min(table)]


def save_profile(profile: DeviceProfile, path: str | os.PathLike) -> Path:
    """Write ``profile`` as JSON (atomically). Returns the path."""
    path = Path(path)
    atomic_write_bytes(path, json.dumps(profile.to_dict(), indent=2).encode())
    return path


def load_profile(path: str | os.PathLike) -> DeviceProfile:
    """Read a profile written by :func:`save_profile` (or by hand in that form).

    Raises:
        EdgeoptError: unreadable or not a device profile.
    """
    text = read_user_text(path, what="device profile")
    try:
        data = json.loads(text)
    except ValueError as e:
        raise EdgeoptError(f"cannot read device profile {path}: {e}: pass a file from `edgeopt machine --out`") from e
    return DeviceProfile.from_dict(data)


_BUILTIN_DIR = Path(__file__).with_name("devices")


def default_path() -> Path:
    """The profile ``edgeopt machine`` saves and other commands read:
    ``$EDGEOPT_CACHE/device.json``, else ``$XDG_CACHE_HOME/edgeopt/device.json``, else
    ``~/.cache/edgeopt/device.json`` (the cache convention of :mod:`edgeopt.zoo.digits`)."""
    return cache_root() / "device.json"


def builtin_names() -> list[str]:
    """Names of the datasheet profiles shipped with edgeopt, e.g. "raspberry-pi-4"."""
    return sorted(p.stem for p in _BUILTIN_DIR.glob("*.json"))


def builtin_device(name: str) -> DeviceProfile:
    """The datasheet profile ``name`` (see :func:`builtin_names`); ``source="datasheet"``.

    Raises:
        EdgeoptError: no such builtin (the message lists them).
    """
    if name not in builtin_names():
        raise EdgeoptError(f"no builtin device {name!r}: choose one of {', '.join(builtin_names())}")
    return load_profile(_BUILTIN_DIR / f"{name}.json")
