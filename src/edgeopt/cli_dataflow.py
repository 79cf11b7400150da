"""``edgeopt dataflow MODEL --buffer 256KiB``: per conv layer, the best tiling and off-chip
traffic of the input-, output- and weight-reuse loop orders, the winner, and its latency
and energy estimates (model: :mod:`edgeopt.analysis.dataflow`).

The lead registers it in cli.py with ``app.command("dataflow")(command)``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

import edgeopt

from .analysis.dataflow import (
    DEFAULT_BANDWIDTH_GBS,
    DEFAULT_MAC_RATE_GMACS,
    ORDERS,
    Hardware,
    ModelPlan,
    plan_model,
)
from ._util.options import parse_size
from .errors import EdgeoptError
from ._util.atomic import atomic_write_bytes


def _device_defaults(spec: str, bytes_per_word: int) -> tuple[float, float, str]:
    """(bandwidth GB/s, MAC rate GMAC/s, note) from the device profile ``spec``.

    Raises:
        EdgeoptError: the profile cannot be resolved.
    """
    try:
        from .bench.machine.measure import resolve_device
    except ImportError as e:
        raise EdgeoptError(f"--device needs edgeopt.bench.machine.measure ({e}): "
                           "pass --bandwidth and --mac-rate instead") from None
    dev = resolve_device(spec)
    precision = "int8" if bytes_per_word == 1 else "fp32"
    note = ""
    if precision not in dev.peak_gflops:
        note = f"{dev.name} has no {precision} peak: using its fp32 peak"
        precision = "fp32"
    # 1 MAC = 2 FLOPs: the profile's peaks are GFLOP/s (GOP/s for int8).
    return dev.bandwidth, dev.peak(precision) / 2, note or f"{dev.name} ({dev.source}), {precision} peak"


def print_plan(plan: ModelPlan, console: Console) -> None:
    """One row per conv: shape, MACs, each order's off-chip MB and best tiling, the winner
    with its buffer use, latency, bound and energy; then totals, wins and notes."""
    hw = plan.hardware
    table = Table("layer", "M x N x R x C k s (g)", "MMACs", "floor MB",
                  *(f"{o} MB (Tm,Tn,Tr,Tc)" for o in ORDERS), "best", "buf KiB", "ms", "bound", "uJ",
                  title=f"{plan.model}: dataflow for a {hw.buffer_bytes / 1024:g} KiB buffer, "
                        f"{hw.bandwidth_gbs:g} GB/s, {hw.mac_rate_gmacs:g} GMAC/s, {hw.bytes_per_word} B/word")
    for p in plan.layers:
        best = p.best
        table.add_row(p.layer.name[-32:], p.layer.describe(), f"{p.layer.macs / 1e6:.2f}", f"{p.floor_bytes / 1e6:.3f}",
                      *(f"{p.orders[o].offchip_bytes / 1e6:.3f} {p.orders[o].choice.tiling}" for o in ORDERS),
                      "=".join(p.tied), f"{best.buffer_bytes / 1024:.1f}", f"{best.latency_ms:.3f}", best.bound,
                      f"{best.energy_uj:.1f}")
    table.add_row("total", f"{len(plan.layers)} convs", f"{sum(p.layer.macs for p in plan.layers) / 1e6:.2f}",
                  f"{sum(p.floor_bytes for p in plan.layers) / 1e6:.3f}",
                  *(f"{plan.total_bytes(o) / 1e6:.3f}" for o in ORDERS),
                  f"{plan.total_bytes() / 1e6:.3f}", "", f"{plan.latency_ms:.3f}", "", f"{plan.energy_uj:.1f}")
    console.print(table)
    wins = {o: sum(1 for p in plan.layers if p.tied == [o]) for o in ORDERS}
    ties = sum(1 for p in plan.layers if len(p.tied) > 1)
    console.print("wins: " + ", ".join(f"{o} {n}" for o, n in wins.items()) + f", ties {ties} (A=B: same traffic)"
                  + f"; at the floor (each word moved once): {sum(1 for p in plan.layers if p.best.offchip_bytes == p.floor_bytes)}"
                  f"/{len(plan.layers)}; memory-bound winners: {sum(1 for p in plan.layers if p.best.bound == 'memory')}"
                  f"/{len(plan.layers)}; 'best' total = each layer's winner")
    console.print("MB = 1e6 bytes off chip (reads + writes, partial sums included); tiles are per group; "
                  "grouped/depthwise convs run as `groups` independent convs (depthwise: N = M = 1 per group); "
                  f"energy: Horowitz ISSCC 2014, DRAM {hw.dram_pj:g} pJ and SRAM {hw.sram_pj:g} pJ per 32-bit "
                  f"word, {hw.mac_energy_pj:g} pJ per MAC")
    for line in plan.skipped:
        console.print(f"[yellow]not modelled: {escape(line)}[/yellow]")


def command(
    model: str = typer.Argument(..., help="ONNX file, or zoo:NAME (see `edgeopt zoo`)."),
    shape: Optional[List[str]] = typer.Option(None, "--shape", help="Fix an input shape: NAME=1x3x224x224 (repeatable)."),
    buffer: str = typer.Option("256KiB", "--buffer", help="On-chip buffer for the input, weight and output tiles, e.g. 256KiB, 2MB."),
    bandwidth: Optional[float] = typer.Option(None, "--bandwidth", help=f"Off-chip bandwidth in GB/s [default: the device's, else {DEFAULT_BANDWIDTH_GBS:g}]."),
    mac_rate: Optional[float] = typer.Option(None, "--mac-rate", help=f"MAC throughput in GMAC/s [default: half the device's peak GFLOP/s, else {DEFAULT_MAC_RATE_GMACS:g}]."),
    bytes_per_word: int = typer.Option(4, "--bytes-per-word", help="Bytes per word: 4 fp32, 2 fp16, 1 int8."),
    device: Optional[str] = typer.Option(None, "--device", help="Device profile (file or name) for the bandwidth and MAC-rate defaults."),
    json_out: Optional[Path] = typer.Option(None, "--out", help="Also write every order's tiling, traffic and estimates to this JSON file."),
) -> None:
    """Off-chip traffic of the IR, OR and WR loop orders per conv layer, best tilings, latency and energy."""
    console = Console()
    size = parse_size(buffer)
    for what, value in (("--bandwidth", bandwidth), ("--mac-rate", mac_rate)):
        if value is not None and not value > 0:
            raise EdgeoptError(f"{what} {value} must be positive")
    note = "nominal defaults, not measured: pass --device or --bandwidth/--mac-rate"
    default_bw, default_rate = DEFAULT_BANDWIDTH_GBS, DEFAULT_MAC_RATE_GMACS
    if device is not None:
        default_bw, default_rate, note = _device_defaults(device, bytes_per_word)
    if bandwidth is not None and mac_rate is not None:
        note = "as given"
    hw = Hardware(buffer_bytes=size, bandwidth_gbs=bandwidth if bandwidth is not None else default_bw,
                  mac_rate_gmacs=mac_rate if mac_rate is not None else default_rate, bytes_per_word=bytes_per_word)
    plan = plan_model(edgeopt.load_model(model, shape=shape), hw)
    if not plan.layers:
        raise EdgeoptError(f"{plan.model} has no 2-D convolution the dataflow model covers"
                           + (f" ({'; '.join(plan.skipped)})" if plan.skipped else "") + ": pass a CNN")
    print_plan(plan, console)
    console.print(f"bandwidth and MAC rate: {note}")
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(json_out, json.dumps(plan.to_dict(), indent=2).encode())
        console.print(f"wrote {json_out}")
