"""``edgeopt roofline MODEL``: per-layer roofline with measured times."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

import edgeopt

from .._util.outputs import check_outputs
from .._util.resources import check_threads
from ..analysis.memory import check_fits
from ..report.console_table import Printer
from .options import JsonOpt, ModelArg, in_range, json_command

console = Console()
WARMUP = 5


@json_command
def command(
    model: str = ModelArg,
    backend: str = typer.Option("ort", help="ort (ONNX Runtime profiling) or openvino (performance counters, best effort)."),
    device: Optional[str] = typer.Option(None, help="Device profile: a JSON file from `edgeopt machine --out`, or a builtin (raspberry-pi-4, jetson-nano-cpu, ...); default: this machine's (measured quickly on first use)."),
    threads: int = typer.Option(2, callback=in_range(ge=1), help="Intra-op threads; the compute roof is the peak at this thread count."),
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size the layers are counted and timed at."),
    runs: int = typer.Option(20, callback=in_range(ge=1), help=f"Profiled runs after {WARMUP} warm-up runs; per-layer times are their median."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for roofline.json, roofline.png and report.html (the table and the plot in one page; none: print only)."),
    as_json: bool = JsonOpt,
) -> None:
    """Roofline per layer: arithmetic intensity, attainable and measured GFLOP/s, % of roof, memory-bound layers."""
    from ..bench.machine.roofline import roofline
    from ..bench.machine.measure import resolve_device
    from ..report.roofline_plot import ROOFLINE_FILES, write_roofline
    from ..report.roofline_table import roofline_table

    check_outputs(inputs=(model, device), folders=[("--out", out, ROOFLINE_FILES)])
    # None: this machine's saved profile (measured quickly on first use); else a builtin
    # name ("raspberry-pi-4") or a JSON file.
    check_threads(threads)
    m = edgeopt.load_model(model)
    if batch >= 1:  # roofline() refuses the others in its own words
        check_fits(m, batch, fix="use a smaller --batch")
    dev = resolve_device(device)
    roof = roofline(m, dev, backend=backend, threads=threads, batch=batch, runs=runs, warmup=WARMUP)
    printer = Printer(console, as_json=as_json, command="roofline")
    printer.table(roofline_table(roof))
    if out is not None:
        printer.line("wrote " + ", ".join(str(p) for p in write_roofline(roof, out)))
    printer.close()
