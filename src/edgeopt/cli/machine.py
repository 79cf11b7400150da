"""``edgeopt machine``: measure this machine's roofs and save them as a device profile."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from .._util.options import csv_ints
from .._util.outputs import check_outputs
from ..errors import EdgeoptError
from ..report.console_table import Printer
from .options import JsonOpt, json_command


@json_command
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
    as_json: bool = JsonOpt,
) -> None:
    """Measure this CPU: peak fp32/int8 GEMM per thread count, STREAM bandwidth, L2/L3/DRAM roofs, caches."""
    from ..analysis.device import save_profile
    from ..bench.machine import measure as machine_model
    from ..report.device_table import device_table

    printer = Printer(Console(), as_json=as_json, command="machine")
    if show is not None:
        if out is not None or threads is not None or quick:
            raise EdgeoptError("--show prints a saved profile and measures nothing: drop --out, --threads "
                               "and --quick, or drop --show to measure")
        printer.table(device_table(machine_model.resolve_device(show)))
        printer.close()
        return
    counts = csv_ints(threads, "--threads") if threads is not None else None
    path = out if out is not None else machine_model.default_path()
    check_outputs(files=[("--out" if out is not None else "the device profile", path)])
    profile = machine_model.measure_device(threads=counts, quick=quick, progress=True)
    printer.table(device_table(profile))
    save_profile(profile, path)
    printer.line(f"saved {path}")
    printer.close()
