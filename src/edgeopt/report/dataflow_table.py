"""Terminal rendering of a dataflow plan (``edgeopt dataflow``): per conv layer the
off-chip traffic and best tiling of each loop order, the winner's buffer use, latency,
bound and energy; totals, wins and notes (the model: :mod:`edgeopt.analysis.dataflow`)."""

from __future__ import annotations

from ..analysis.dataflow import ORDERS, ModelPlan
from .console_table import ConsoleTable, Styled, columns


def plan_table(plan: ModelPlan) -> ConsoleTable:
    """One row per conv: shape, MACs, each order's off-chip MB and best tiling, the winner
    with its buffer use, latency, bound and energy; a total row; then as notes the wins,
    the units and what was not modelled."""
    hw = plan.hardware
    table = ConsoleTable(f"{plan.model}: dataflow for a {hw.buffer_bytes / 1024:g} KiB buffer, "
                         f"{hw.bandwidth_gbs:g} GB/s, {hw.mac_rate_gmacs:g} GMAC/s, {hw.bytes_per_word} B/word",
                         columns(("layer", "name"), ("M x N x R x C k s (g)", "name"), "MMACs", "floor MB",
                                 *(f"{o} MB (Tm,Tn,Tr,Tc)" for o in ORDERS), ("best", "name"), "buf KiB", "ms",
                                 ("bound", "name"), "uJ"))
    for p in plan.layers:
        best = p.best
        table.add_row(p.layer.name, p.layer.describe(), f"{p.layer.macs / 1e6:.2f}", f"{p.floor_bytes / 1e6:.3f}",
                      *(f"{p.orders[o].offchip_bytes / 1e6:.3f} {p.orders[o].choice.tiling}" for o in ORDERS),
                      "=".join(p.tied), f"{best.buffer_bytes / 1024:.1f}", f"{best.latency_ms:.3f}", best.bound,
                      f"{best.energy_uj:.1f}")
    table.add_row("total", f"{len(plan.layers)} convs", f"{sum(p.layer.macs for p in plan.layers) / 1e6:.2f}",
                  f"{sum(p.floor_bytes for p in plan.layers) / 1e6:.3f}",
                  *(f"{plan.total_bytes(o) / 1e6:.3f}" for o in ORDERS),
                  f"{plan.total_bytes() / 1e6:.3f}", "", f"{plan.latency_ms:.3f}", "", f"{plan.energy_uj:.1f}")
    wins = {o: sum(1 for p in plan.layers if p.tied == [o]) for o in ORDERS}
    ties = sum(1 for p in plan.layers if len(p.tied) > 1)
    table.notes.append(
        "wins: " + ", ".join(f"{o} {n}" for o, n in wins.items()) + f", ties {ties} (A=B: same traffic)"
        + f"; at the floor (each word moved once): {sum(1 for p in plan.layers if p.best.offchip_bytes == p.floor_bytes)}"
        f"/{len(plan.layers)}; memory-bound winners: {sum(1 for p in plan.layers if p.best.bound == 'memory')}"
        f"/{len(plan.layers)}; 'best' total = each layer's winner")
    table.notes.append(
        "MB = 1e6 bytes off chip (reads + writes, partial sums included); tiles are per group; "
        "grouped/depthwise convs run as `groups` independent convs (depthwise: N = M = 1 per group); "
        f"energy: Horowitz ISSCC 2014, DRAM {hw.dram_pj:g} pJ and SRAM {hw.sram_pj:g} pJ per 32-bit "
        f"word, {hw.mac_energy_pj:g} pJ per MAC")
    table.notes += [Styled(f"not modelled: {line}", "yellow") for line in plan.skipped]
    return table
