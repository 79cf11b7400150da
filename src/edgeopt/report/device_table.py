"""Terminal rendering of a device profile (``edgeopt machine``): peaks per thread count,
bandwidth, cache-aware memory roofs, caches, ridge point and notes."""

from __future__ import annotations

from ..analysis.device import DeviceProfile
from .console_table import ConsoleTable, columns


def device_table(profile: DeviceProfile) -> ConsoleTable:
    """A device profile as a table (threads -> fp32 GFLOP/s, int8 GOP/s) with notes: the
    bandwidth (GB/s), caches (KiB/MiB), fp32 ridge point (FLOPs/byte) and the profile's notes."""
    kind = "measured here" if profile.source == "measured" else f"{profile.source}: vendor peaks, not measured"
    precisions = list(profile.peak_gflops)
    units = {"fp32": "fp32 GFLOP/s", "int8": "int8 GOP/s"}
    table = ConsoleTable(f"{profile.name} ({kind}), {profile.cores} cores",
                         columns("threads", *(units.get(p, f"{p} GOP/s") for p in precisions)))
    for t in sorted({t for tbl in profile.peak_gflops.values() for t in tbl}):
        table.add_row(str(t), *(f"{profile.peak_gflops[p][t]:.1f}" if t in profile.peak_gflops[p] else "-"
                                for p in precisions))
    table.notes.append("bandwidth: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in profile.bandwidth_gbs.items()))
    if profile.memory_roofs_gbs:
        table.notes.append("cache-aware memory roofs (STREAM scale, GB/s): " + "; ".join(
            f"{level} " + ", ".join(f"{v:.1f} at {t} thread{'s' * (t > 1)}" for t, v in sorted(tbl.items()))
            for level, tbl in profile.memory_roofs_gbs.items()))
    table.notes += [
        "caches: " + (", ".join(f"{k} {_size(v)}" for k, v in profile.caches.items()) or "unknown"),
        f"ridge point (fp32 peak / bandwidth): {profile.ridge_point:.1f} FLOPs/byte; layers below it "
        f"are memory-bound on this device",
        f"notes: {profile.notes}"]
    return table




def _size(n: int) -> str:
    return f"{n / 1024 ** 2:g} MiB" if n >= 1024 ** 2 else f"{n / 1024:g} KiB"
