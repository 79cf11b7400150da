"""``edgeopt dataflow MODEL --buffer 256KiB``: per conv layer, the best tiling and off-chip
traffic of the input-, output- and weight-reuse loop orders, the winner, and its latency
and energy estimates (model: :mod:`edgeopt.analysis.dataflow`)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.options import parse_size
from .._util.outputs import check_outputs
from ..analysis.dataflow import DEFAULT_BANDWIDTH_GBS, DEFAULT_MAC_RATE_GMACS, plan_model
from ..analysis.dataflow_hardware import dataflow_hardware
from ..errors import EdgeoptError
from ..report.console_table import Printer
from .options import JsonOpt, ModelArg, ShapeOpt, in_range, json_command


@json_command
def command(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    buffer: str = typer.Option("256KiB", "--buffer", help="On-chip buffer for the input, weight and output tiles, e.g. 256KiB, 2MB."),
    bandwidth: Optional[float] = typer.Option(None, "--bandwidth", callback=in_range(gt=0, example=DEFAULT_BANDWIDTH_GBS), help=f"Off-chip bandwidth in GB/s [default: the device's, else {DEFAULT_BANDWIDTH_GBS:g}]."),
    mac_rate: Optional[float] = typer.Option(None, "--mac-rate", callback=in_range(gt=0, example=DEFAULT_MAC_RATE_GMACS), help=f"MAC throughput in GMAC/s [default: half the device's peak GFLOP/s, else {DEFAULT_MAC_RATE_GMACS:g}]."),
    bytes_per_word: int = typer.Option(4, "--bytes-per-word", help="Bytes per word: 4 fp32, 2 fp16, 1 int8."),
    device: Optional[str] = typer.Option(None, "--device", help="Device profile (file or name) for the bandwidth and MAC-rate defaults."),
    json_out: Optional[Path] = typer.Option(None, "--out", help="Also write every order's tiling, traffic and estimates to this JSON file."),
    as_json: bool = JsonOpt,
) -> None:
    """Off-chip traffic of the IR, OR and WR loop orders per conv layer, best tilings, latency and energy."""
    from ..bench.machine.measure import resolve_device
    from ..report.dataflow_table import plan_table
    from ..report.json_file import write_json

    console = Console()
    if device is not None and bandwidth is not None and mac_rate is not None:
        raise EdgeoptError("--device gives the defaults of --bandwidth and --mac-rate, and both are given: "
                           "drop --device or one of them")
    check_outputs(inputs=(model, device), files=[("--out", json_out)])
    size = parse_size(buffer)
    hw, note = dataflow_hardware(size, bandwidth_gbs=bandwidth, mac_rate_gmacs=mac_rate, bytes_per_word=bytes_per_word,
                                 device=resolve_device(device) if device is not None else None)
    plan = plan_model(edgeopt.load_model(model, shape=shape), hw)
    if not plan.layers:
        raise EdgeoptError(f"{plan.model} has no 2-D convolution the dataflow model covers"
                           + (f" ({'; '.join(plan.skipped)})" if plan.skipped else "") + ": pass a CNN")
    printer = Printer(console, as_json=as_json, command="dataflow")
    printer.table(plan_table(plan))
    printer.line(f"bandwidth and MAC rate: {note}")
    if json_out is not None:
        write_json(json_out, plan.to_dict())
        printer.line(f"wrote {json_out}")
    printer.close()
