"""Terminal rendering of a ModelProfile."""

from __future__ import annotations

from ..analysis.profile import ModelProfile
from .console_table import ConsoleTable, Styled, columns


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def profile_table(prof: ModelProfile) -> ConsoleTable:
    """Per-layer table (layers with MACs or params; data movement rows are in --json),
    then as notes the totals and the ops that could not be counted."""
    table = ConsoleTable(f"{prof.model} at batch {prof.batch}",
                         columns(("layer", "name"), ("op", "name"), ("output", "name"), "params", "MACs",
                                 "weight B", "act B", "MACs/B"))
    for layer in prof.layers:
        if not (layer.macs or layer.params):
            continue
        table.add_row(layer.name, layer.op_type, "x".join(map(str, layer.output_shape or ())),
                      f"{layer.params:,}", f"{layer.macs:,}", f"{layer.weight_bytes:,}",
                      f"{layer.activation_bytes:,}", f"{layer.intensity:.1f}")
    table.notes += [
        f"params {prof.params:,} | MACs {prof.macs:,} | GOPs {prof.gops:.3f} (1 MAC = 2 OPs) | "
        f"layers with MACs {prof.num_layers}",
        f"size fp32 {_mb(prof.size_fp32_bytes)} | fp16 {_mb(prof.size_fp16_bytes)} | "
        f"int8 {_mb(prof.size_int8_bytes)} | file {_mb(prof.file_bytes)} | "
        f"peak activations {_mb(prof.peak_activation_bytes)}",
        Styled(f"not counted: {', '.join(prof.uncounted)}", "yellow") if prof.uncounted else "every op was counted"]
    return table
