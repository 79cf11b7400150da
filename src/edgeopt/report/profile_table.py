"""Terminal rendering of a ModelProfile."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ..analysis.profile import ModelProfile


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def print_profile(prof: ModelProfile, console: Console) -> None:
    """Per-layer table (layers with MACs or params; data movement rows are in --json),
    then totals and the ops that could not be counted."""
    table = Table("layer", "op", "output", "params", "MACs", "weight B", "act B", "MACs/B",
                  title=f"{prof.model} at batch {prof.batch}")
    for layer in prof.layers:
        if not (layer.macs or layer.params):
            continue
        table.add_row(layer.name[:28], layer.op_type, "x".join(map(str, layer.output_shape or ())),
                      f"{layer.params:,}", f"{layer.macs:,}", f"{layer.weight_bytes:,}",
                      f"{layer.activation_bytes:,}", f"{layer.intensity:.1f}")
    console.print(table)
    console.print(
        f"params {prof.params:,} | MACs {prof.macs:,} | GOPs {prof.gops:.3f} (1 MAC = 2 OPs) | "
        f"layers with MACs {prof.num_layers}"
    )
    console.print(
        f"size fp32 {_mb(prof.size_fp32_bytes)} | fp16 {_mb(prof.size_fp16_bytes)} | "
        f"int8 {_mb(prof.size_int8_bytes)} | file {_mb(prof.file_bytes)} | "
        f"peak activations {_mb(prof.peak_activation_bytes)}"
    )
    if prof.uncounted:
        console.print(f"[yellow]not counted: {', '.join(prof.uncounted)}[/yellow]")
    else:
        console.print("every op was counted")
