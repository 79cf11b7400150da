"""Terminal tables of ``edgeopt compress-size`` (Deep Compression, Han et al. 2016): the
bytes after each stage, and per layer the sparsity, codebook bits and bytes at each stage."""

from __future__ import annotations

from typing import Any

from ..passes.deep_compression import SPEED_NOTE
from .console_table import ConsoleTable, columns


def stages_table(report: Any) -> ConsoleTable:
    """Bytes after each stage of a :class:`~edgeopt.passes.deep_compression.CompressionReport`
    and the ratio to the original."""
    table = ConsoleTable(f"Deep Compression of {report.model_name}", columns(("stage", "name"), "bytes", "ratio"))
    for stage, n in report.stages():
        table.add_row(stage, f"{n:,}", f"{report.original_bytes / n:.1f}x")
    return table


def layers_table(report: Any) -> ConsoleTable:
    """Per compressed weight: params, sparsity, codebook bits, index bits and its bytes
    dense (fp32), pruned (sparse), shared (codebook) and Huffman-coded; then the weights
    left dense and the speed note."""
    table = ConsoleTable("per weight (bytes)", columns(("layer", "name"), "params", "sparsity", "bits", "idx",
                                                       "fp32 B", "pruned B", "shared B", "huffman B"))
    for lay in report.layers:
        table.add_row(lay.name, f"{lay.params:,}", f"{lay.sparsity:.1%}", str(lay.bits), str(lay.index_bits),
                      f"{lay.dense_bytes:,}", f"{lay.pruned_bytes:,}", f"{lay.shared_bytes:,}",
                      f"{lay.huffman_bytes:,}")
    if report.skipped:
        table.notes.append(f"left dense (< {report.config.min_params} params): {len(report.skipped)} weights")
    table.notes.append(SPEED_NOTE)
    return table
