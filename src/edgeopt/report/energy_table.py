"""Terminal rendering of ``edgeopt energy``: the per-layer energy table of one model, ops
per weight byte beside the TPU paper's, the seed's claims, the variants compared; and the
JSON document ``--out`` writes. Energies in µJ, sizes in KiB (the model:
:mod:`edgeopt.analysis.energy`)."""

from __future__ import annotations

from ..analysis.energy import (
    SEED_COMPUTE_TO_WEIGHT_DRAM,
    TPU_OPS_PER_WEIGHT_BYTE,
    EnergyComparison,
    EnergyReport,
    EnergyTable,
    compute_to_weight_dram_ratio,
)
from .console_table import ConsoleTable, Styled, columns


def _kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def _uj(pj: float) -> str:
    return f"{pj / 1e6:,.3f}"


def _bits(bits: int | None) -> str:
    return "-" if bits is None else str(bits)


def energy_layers_table(report: EnergyReport) -> ConsoleTable:
    """The per-layer table of one model and its totals (energies in µJ, sizes in KiB).

    "prec" is what a layer's MACs compute in; "W bits" the bits per element its largest
    weight is counted at (:mod:`edgeopt.analysis.bitwidth`). A note says so when a layer
    holds weights below 8 bits but computes in float (weight-only low-bit)."""
    cap_name, cap = report.capacity
    levels = ", ".join(f"{k} {_kib(v)} KiB" for k, v in report.levels.items())
    t = ConsoleTable(f"energy ({report.table.source})",
                     columns(("layer", "name"), ("op", "name"), ("prec", "name"), "W bits", "MACs", "weights KiB",
                             "acts KiB", ("fits in", "name"), "DRAM KiB", "compute µJ", "memory µJ", "total µJ",
                             "share"),
                     before=[f"{report.model} batch {report.batch}; device {report.device or '-'}; levels: {levels}; "
                             f"traffic model on {cap_name} ({_kib(cap)} KiB); weights "
                             f"{'resident on chip' if report.weights_resident else 'read from DRAM every inference'}"])
    for layer in report.layers:
        t.add_row(layer.name, layer.op_type, layer.precision, _bits(layer.weight_bits), f"{layer.macs:,}",
                  _kib(layer.weight_bytes), _kib(layer.input_bytes + layer.output_bytes), layer.fits,
                  _kib(layer.dram_bytes), _uj(layer.compute_pj), _uj(layer.memory_pj), _uj(layer.total_pj),
                  (f"{report.share(layer):.1%}", Styled(" DRAM" if layer.dram_dominated else "", "red")))
    t.add_row("total", "", "", "", f"{report.macs:,}", _kib(report.weight_bytes), "", "", _kib(report.dram_bytes),
              _uj(report.compute_pj), _uj(report.onchip_pj + report.dram_pj), _uj(report.total_pj), "100%")
    dominated = [layer.name for layer in report.layers if layer.dram_dominated]
    t.notes.append(f"total {_uj(report.total_pj)} µJ per batch, {_uj(report.total_pj / report.batch)} µJ per "
                   f"image: compute {report.compute_pj / report.total_pj:.0%}, on-chip "
                   f"{report.onchip_pj / report.total_pj:.0%}, DRAM {report.dram_pj / report.total_pj:.0%} "
                   f"(weights {_uj(report.dram_weight_pj)} µJ); {len(dominated)} of {len(report.layers)} "
                   f"layers DRAM-dominated")
    low = [layer for layer in report.layers if layer.weight_bits and layer.weight_bits < 8 and layer.macs
           and layer.precision in ("fp32", "fp16")]
    if low:
        t.notes.append(f"{len(low)} layers hold weights below 8 bits (W bits) but compute in "
                       f"{'/'.join(sorted({layer.precision for layer in low}))} (prec): the runtime dequantizes "
                       f"weight-only low-bit weights before the MACs, so they save weight bytes (on-chip and "
                       f"DRAM energy), not compute energy")
    if report.unsized:
        t.notes.append(Styled(f"sizes unknown (counted as 0 bytes): {', '.join(report.unsized)}", "yellow"))
    return t


def ops_per_weight_byte_table(ops: dict[str, float], table: EnergyTable | None) -> ConsoleTable:
    """Ops per weight byte of the model beside the TPU paper's (Jouppi et al. 2017, Table 1),
    with the compute : weight-DRAM energy ratio each implies and the seed's ratio."""
    def ratio(value: float, ops_per_mac: float) -> str:
        return f"{compute_to_weight_dram_ratio(value, table, ops_per_mac=ops_per_mac):.2f} : 1"

    t = ConsoleTable("ops per weight byte (2 x MACs / params at 1 byte each)",
                     columns(("workload", "name"), "ops / weight byte (int8)",
                             "compute : weight-DRAM, int8, 2 ops/MAC", "same, 1 op = 1 MAC", "seed says"))
    for name, value in ops.items():
        t.add_row(f"this model, {name.replace('_', ' ')}", f"{value:,.0f}", ratio(value, 2), ratio(value, 1), "")
    for name, value in TPU_OPS_PER_WEIGHT_BYTE.items():
        t.add_row(f"TPU paper {name} (server batch)", f"{value:,}", ratio(value, 2), ratio(value, 1),
                  f"{SEED_COMPUTE_TO_WEIGHT_DRAM[name]:.2f} : 1")
    return t


def energy_comparison_table(comparison: EnergyComparison) -> ConsoleTable:
    """Per-layer total energy of each variant (µJ) and its ratio to the baseline; the
    totals, and the DRAM energy of the weight reads alone (0 when they stay resident)."""
    variants = list(comparison.reports)
    base = variants[0]
    matched = ", ".join(f"{v} by {how}" for v, how in comparison.matched_by.items() if v != base)
    t = ConsoleTable(f"variants; MAC layers matched: {matched}",
                     columns(("layer", "name"), *[f"{v} µJ" for v in variants], *[f"{v}/{base}" for v in variants[1:]]))
    for label, row in comparison.rows:
        cells = [_uj(row[v].total_pj) if row[v] else "-" for v in variants]
        ratios = [f"{row[v].total_pj / row[base].total_pj:.2f}" if row[v] and row[base] and row[base].total_pj
                  else "-" for v in variants[1:]]
        t.add_row(label, *cells, *ratios)
    for label, value in (("total (all layers)", lambda r: r.total_pj),
                         ("weight DRAM (all layers)", lambda r: r.dram_weight_pj)):
        totals = {v: value(r) for v, r in comparison.reports.items()}
        t.add_row(label, *[_uj(totals[v]) for v in variants],
                  *[f"{totals[v] / totals[base]:.2f}" if totals[base] else "-" for v in variants[1:]])
    t.notes.append("weights KiB: " + ", ".join(f"{v} {_kib(r.weight_bytes)}" for v, r in comparison.reports.items())
                   + " (each stored tensor at its declared or packed bit width)")
    return t


def seed_claims_line(claims: dict[str, dict[str, float]]) -> str:
    """The seed's DRAM cost ratios beside the table's (:func:`edgeopt.analysis.energy.seed_claims`)."""
    return (f"seed claims: one DRAM access = {claims['dram_per_fp32_mac']['table']:.0f} fp32 MACs by the table "
            f"(seed: {claims['dram_per_fp32_mac']['seed']:.0f}), = {claims['dram_per_sram_read']['table']:.0f} "
            f"SRAM reads (seed: {claims['dram_per_sram_read']['seed']:.0f})")




def energy_json(comparison: EnergyComparison, ops: dict[str, float], claims: dict[str, dict[str, float]]) -> dict:
    """The ``edgeopt energy --out`` document: the original's report, ops per weight byte,
    the seed claims, and with variants the comparison and each variant's report."""
    reports = list(comparison.reports.items())
    compared = len(reports) > 1
    return {"report": reports[0][1].to_dict(), "ops_per_weight_byte": ops, "seed_claims": claims,
            "comparison": comparison.to_dict() if compared else None,
            "variants": {v: r.to_dict() for v, r in reports[1:]}}
