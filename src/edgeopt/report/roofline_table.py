"""Terminal rendering of a per-layer roofline (``edgeopt roofline``): the layer table
(intensity, attainable and achieved GFLOP/s, % of roof, bound; with cache-aware roofs the
level columns), the roofs, the whole-model totals and the memory-bound summary."""

from __future__ import annotations

from ..bench.environment import machine_info
from ..bench.machine.roofline import Roofline
from .console_table import Cell, ConsoleTable, Styled, columns


def roofline_table(roof: Roofline) -> ConsoleTable:
    """The per-layer table, then as notes the roofs, the whole-model totals and the
    memory-bound summary."""
    cache_aware = bool(roof.memory_roofs_gbs)
    specs: list = [("layer", "name"), ("op", "name"), "MMACs", "AI F/B", "roof GF/s", "ms", "GF/s", "% roof",
                   ("bound", "name")]
    if cache_aware:
        specs += [("level", "name"), "% level roof", ("level bound", "name")]
    table = ConsoleTable(f"{roof.model} on {roof.device.name} ({roof.device.source}), {roof.backend}, "
                         f"{roof.threads} threads, batch {roof.batch}, median of {roof.runs} runs", columns(*specs))
    for r in roof.rows:
        timed = r.status in ("timed", "runtime-only")
        cells = [
            r.name, r.op_type, f"{r.macs / 1e6:.2f}" if r.macs else "-",
            f"{r.intensity:.1f}" if r.macs else "-", f"{r.attainable_gflops:.1f}" if r.macs else "-",
            f"{r.ms:.3f}" if timed else Styled(r.status.split(' into ')[0], "dim"),
            f"{r.achieved_gflops:.1f}" if r.achieved_gflops is not None else "-",
            f"{r.roof_pct:.0f}" if r.roof_pct is not None else "-", _bound(r.bound),
        ]
        if cache_aware:
            cells += [r.level, f"{r.level_roof_pct:.0f}" if r.level_roof_pct is not None else "-",
                      _bound(r.level_bound)]
        table.add_row(*cells)
    table.notes += _roofline_notes(roof)
    return table


def _roofline_notes(roof: Roofline) -> list:
    cache_aware = bool(roof.memory_roofs_gbs)
    notes: list = []
    if roof.device.source != "measured":
        here = machine_info().get("cpu_model") or "this machine"
        notes.append((Styled("estimated roofs", "bold"), f": {roof.device.name}'s {roof.device.source} peaks, not "
                      f"measured; the layer times were measured here ({here}), so % roof sets this machine's speed "
                      f"against that board's roof (time on the board with `edgeopt bench --device KIND`)"))
    if roof.note:
        notes.append((Styled("note", "bold red"), f": {roof.note}"))
    notes.append(f"roofs: peak {roof.peak_gflops:.1f} GFLOP/s ({roof.precision}, {roof.threads} threads), bandwidth "
                 f"{roof.bandwidth_gbs:.1f} GB/s, ridge {roof.ridge:.1f} FLOPs/byte")
    if not cache_aware and roof.device.source == "measured":
        notes.append("no cache-aware (L2/L3/DRAM) roofs in this device profile: re-run `edgeopt machine` to add them")
    if cache_aware:
        notes.append("cache-aware roofs (a layer's level: the smallest that holds its weights + activations): " +
                     ", ".join(f"{k} {v:.1f} GB/s (ridge {roof.peak_gflops / v:.1f})"
                               for k, v in roof.memory_roofs_gbs.items()))
    notes.append(f"whole model: {roof.flops / 1e9:.3f} GFLOPs in {roof.model_ms:.3f} ms per run (wall, profiling on; "
                 f"layers sum {roof.kernel_ms:.3f} ms) = {roof.achieved_gflops:.1f} GFLOP/s, "
                 f"{roof.pct_of_peak:.1f}% of peak")
    memory = [r for r in roof.rows if r.bound == "memory"]
    with_macs = [r for r in roof.rows if r.macs]
    notes.append(f"memory-bound (AI < ridge): {len(memory)} of {len(with_macs)} layers with MACs, "
                 f"{100 * roof.share_ms('memory'):.0f}% of layer time; compute-bound "
                 f"{100 * roof.share_ms('compute'):.0f}%; layers without MACs and runtime-only kernels "
                 f"{100 * roof.share_ms('-'):.0f}%")
    if memory:
        slowest = sorted(memory, key=lambda r: r.ms, reverse=True)[:8]
        notes.append("memory-bound, slowest first: " + ", ".join(f"{r.name} ({r.ms:.3f} ms)" for r in slowest))
    if cache_aware:
        levels = {k: sum(1 for r in with_macs if r.level == k) for k in roof.memory_roofs_gbs}
        level_memory = [r for r in roof.rows if r.level_bound == "memory"]
        notes.append("cache-aware: working sets in " + ", ".join(f"{k} {n}" for k, n in levels.items()) +
                     f"; memory-bound under their level's roof: {len(level_memory)} of {len(with_macs)} layers, "
                     f"{100 * roof.share_ms('memory', cache_aware=True):.0f}% of layer time")
    return notes




def _bound(bound: str) -> Cell:
    return Styled("memory", "yellow") if bound == "memory" else bound
