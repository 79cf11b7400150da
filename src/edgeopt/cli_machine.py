"""``edgeopt machine``: measure this machine's roofs and save them as a device profile.

Registered by cli.py as ``app.command("machine")(command)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from .analysis.device import DeviceProfile
from ._util.options import csv_ints
from .errors import EdgeoptError


def print_device(profile: DeviceProfile, console: Console) -> None:
    """A device profile as a Rich table (threads -> fp32 GFLOP/s, int8 GOP/s) followed by
    the bandwidth (GB/s), caches (KiB/MiB), fp32 ridge point (FLOPs/byte) and notes."""
    kind = "measured here" if profile.source == "measured" else f"{profile.source}: vendor peaks, not measured"
    precisions = list(profile.peak_gflops)
    units = {"fp32": "fp32 GFLOP/s", "int8": "int8 GOP/s"}
    table = Table("threads", *(units.get(p, f"{p} GOP/s") for p in precisions),
                  title=f"{profile.name} ({kind}), {profile.cores} cores")
    for t in sorted({t for tbl in profile.peak_gflops.values() for t in tbl}):
        table.add_row(str(t), *(f"{profile.peak_gflops[p][t]:.1f}" if t in profile.peak_gflops[p] else "-"
                                for p in precisions))
    console.print(table)
    console.print("bandwidth: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in profile.bandwidth_gbs.items()))
    if profile.memory_roofs_gbs:
        console.print("cache-aware memory roofs (STREAM scale, GB/s): " + "; ".join(
            f"{level} " + ", ".join(f"{v:.1f} at {t} thread{'s' * (t > 1)}" for t, v in sorted(tbl.items()))
            for level, tbl in profile.memory_roofs_gbs.items()))
    console.print("caches: " + (", ".join(f"{k} {_size(v)}" for k, v in profile.caches.items()) or "unknown"))
    console.print(f"ridge point (fp32 peak / bandwidth): {profile.ridge_point:.1f} FLOPs/byte; layers below it "
                  f"are memory-bound on this device")
    console.print(f"notes: {profile.notes}", markup=False)  # notes quote sources that contain brackets


def _size(n: int) -> str:
    return f"{n / 1024 ** 2:g} MiB" if n >= 1024 ** 2 else f"{n / 1024:g} KiB"


def command(
    out: Optional[Path] = typer.Option(None, "--out", help="Where to save the profile (JSON); default: the "
                                       "cache file other commands read (~/.cache/edgeopt/device.json)."),
    threads: Optional[str] = typer.Option(None, "--threads", help="Thread counts to measure, comma-separated "
                                          "(default: 1 up to the CPUs this process may use)."),
    quick: bool = typer.Option(False, "--quick", help="Smaller GEMMs and arrays, fewer runs: seconds instead "
                               "of up to ~30 s, noisier."),
    show: Optional[str] = typer.Option(None, "--show", help="Print a profile instead of measuring: a builtin "
                                       "(raspberry-pi-3, raspberry-pi-4, raspberry-pi-5, jetson-nano-cpu) or a "
                                       "JSON file."),
) -> None:
    """Measure this CPU: peak fp32/int8 GEMM per thread count, STREAM bandwidth, L2/L3/DRAM roofs, caches."""
    from .bench.machine import measure as machine_model
    from .analysis.device import save_profile

    console = Console()
    if show is not None:
        if out is not None or threads is not None or quick:
            raise EdgeoptError("--show prints a saved profile and measures nothing: drop --out, --threads "
                               "and --quick, or drop --show to measure")
        print_device(machine_model.resolve_device(show), console)
        return
    counts = None
    if threads is not None:
        counts = csv_ints(threads, "--threads")
    profile = machine_model.measure_device(threads=counts, quick=quick, progress=True)
    print_device(profile, console)
    path = save_profile(profile, out if out is not None else machine_model.default_path())
    console.print(f"saved {path}")
