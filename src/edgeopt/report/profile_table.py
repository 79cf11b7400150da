"""Terminal rendering of a ModelProfile."""

from __future__ import annotations

from ..analysis.profile import ModelProfile
from .console_table import ConsoleTable, Styled, columns


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def profile_table(prof: ModelProfile) -> ConsoleTable:
    """Per-layer table (layers with MACs or params; data movement rows are in --json),
    then as notes the totals and the ops that could not be counted. "W bits" is the bits
    per element a layer's largest weight is counted at (declared or stored:
    :mod:`edgeopt.analysis.bitwidth`); a note names the layers below 8 bits."""
    table = ConsoleTable(f"{prof.model} at batch {prof.batch}",
                         columns(("layer", "name"), ("op", "name"), ("output", "name"), "params", "W bits", "MACs",
                                 "weight B", "act B", "MACs/B"))
    for layer in prof.layers:
        if not (layer.macs or layer.params):
            continue
        table.add_row(layer.name, layer.op_type, "x".join(map(str, layer.output_shape or ())),
                      f"{layer.params:,}", "-" if layer.weight_bits is None else str(layer.weight_bits),
                      f"{layer.macs:,}", f"{layer.weight_bytes:,}", f"{layer.activation_bytes:,}",
                      f"{layer.intensity:.1f}")
    table.notes += [
        f"params {prof.params:,} | MACs {prof.macs:,} | GOPs {prof.gops:.3f} (1 MAC = 2 OPs) | "
        f"layers with MACs {prof.num_layers}",
        f"weights {_mb(prof.weight_bytes)} as stored | if fp32 {_mb(prof.size_fp32_bytes)} | "
        f"fp16 {_mb(prof.size_fp16_bytes)} | int8 {_mb(prof.size_int8_bytes)} | file {_mb(prof.file_bytes)} | "
        f"peak activations {_mb(prof.peak_activation_bytes)}"]
    low = [layer for layer in prof.layers if layer.weight_bits and layer.weight_bits < 8]
    if low:
        widths = ", ".join(f"{b}-bit x{sum(1 for x in low if x.weight_bits == b)}"
                           for b in sorted({x.weight_bits for x in low}))
        table.notes.append(f"weights below 8 bits in {len(low)} layers ({widths}), counted at that width: "
                           f"weight-only low-bit storage, activations stay float")
    table.notes.append(Styled(f"not counted: {', '.join(prof.uncounted)}", "yellow") if prof.uncounted
                       else "every op was counted")
    return table
