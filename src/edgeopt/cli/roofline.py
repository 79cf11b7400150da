"""``edgeopt roofline MODEL``: per-layer roofline with measured times."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

import edgeopt

from .._util.resources import check_threads
from ..analysis.memory import check_fits
from ..errors import EdgeoptError
from .options import ModelArg

console = Console()
WARMUP = 5


def command(
    model: str = ModelArg,
    backend: str = typer.Option("ort", help="ort (ONNX Runtime profiling) or openvino (performance counters, best effort)."),
    device: Optional[str] = typer.Option(None, help="Device profile: a JSON file from `edgeopt machine --out`, or a builtin (raspberry-pi-4, jetson-nano-cpu, ...); default: this machine's (measured quickly on first use)."),
    threads: int = typer.Option(2, help="Intra-op threads; the compute roof is the peak at this thread count."),
    batch: int = typer.Option(1, help="Batch size the layers are counted and timed at."),
    runs: int = typer.Option(20, help=f"Profiled runs after {WARMUP} warm-up runs; per-layer times are their median."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for roofline.json and roofline.png (none: print only)."),
) -> None:
    """Roofline per layer: arithmetic intensity, attainable and measured GFLOP/s, % of roof, memory-bound layers."""
    from ..bench.machine.roofline import roofline
    from ..bench.machine.measure import resolve_device
    from ..report.json_file import write_json
    from ..report.roofline_plot import plot_roofline
    from ..report.roofline_table import print_roofline

    if out is not None and out.exists() and not out.is_dir():
        raise EdgeoptError(f"--out {out} is a file: give a folder for roofline.json and roofline.png")
    # None: this machine's saved profile (measured quickly on first use); else a builtin
    # name ("raspberry-pi-4") or a JSON file.
    check_threads(threads)
    m = edgeopt.load_model(model)
    if batch >= 1:  # roofline() refuses the others in its own words
        check_fits(m, batch, fix="use a smaller --batch")
    dev = resolve_device(device)
    roof = roofline(m, dev, backend=backend, threads=threads, batch=batch, runs=runs, warmup=WARMUP)
    print_roofline(roof, console)
    if out is not None:
        write_json(out / "roofline.json", roof.to_dict())
        plot_roofline(roof, out / "roofline.png")
        console.print(f"wrote {out / 'roofline.json'}, {out / 'roofline.png'}")
