"""``edgeopt energy MODEL``: per-layer memory traffic and energy, variants compared.

The lead registers :func:`command` with ``app.command("energy")(command)``. The model is
:mod:`edgeopt.analysis.energy`; this module parses options, builds the variants asked
for with ``--compare`` (int8 static quantization, fp16, channel pruning) and prints.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.table import Table

from .errors import EdgeoptError

if TYPE_CHECKING:
    from .analysis.energy import EnergyComparison, EnergyReport, EnergyTable

console = Console()


def command(
    model: str = typer.Argument(..., help="ONNX file, or zoo:NAME (see `edgeopt zoo`)."),
    device: Optional[str] = typer.Option(
        None, "--device", help="Device profile: a builtin name (e.g. raspberry-pi-4) or a JSON file from "
                               "`edgeopt machine --out`; default: this machine (unless --sram is given alone)."),
    sram: Optional[str] = typer.Option(
        None, "--sram", help="On-chip SRAM size, e.g. 256KiB; the traffic model then uses it instead of "
                             "the last-level cache."),
    compare: str = typer.Option(
        "", "--compare", help="Variants to compare per layer, comma-separated: int8 (static QDQ), fp16, "
                              "prunedNN (NN% of the MACs removed), e.g. int8,pruned50."),
    batch: int = typer.Option(1, help="Batch size (MACs and activations scale with it, weights do not)."),
    table: Optional[Path] = typer.Option(
        None, "--table", help="JSON file overriding energy-table entries in pJ, e.g. {\"dram_read_pj\": 1300}."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the report as JSON to this file."),
) -> None:
    """Per-layer bytes, on-chip fit, DRAM traffic and energy (Horowitz 45 nm table); ops per weight byte."""
    import edgeopt

    from .analysis.energy import (
        EnergyTable,
        load_table,
        ops_per_weight_byte,
        seed_claims,
    )
    from ._util.options import parse_size
    from .optimizer.energy_variants import build_variants, parse_variant_names

    if batch < 1:
        raise EdgeoptError(f"--batch {batch} is not a positive integer: pass 1 or more")
    names = parse_variant_names(compare)
    energy_table = load_table(table) if table else EnergyTable()
    sram_bytes = parse_size(sram) if sram else None
    dev = None
    if device is not None or sram_bytes is None:
        # With --sram alone the SRAM is the hierarchy: this machine is not profiled.
        from .bench.machine.measure import resolve_device

        dev = resolve_device(device)
    base = edgeopt.load_model(model)
    variants = build_variants(base, names)

    from .analysis.energy import compare_energy

    comparison = compare_energy(variants, dev, sram=sram_bytes, batch=batch, table=energy_table)
    report = next(iter(comparison.reports.values()))
    print_report(report)
    ops = {"batch_1": ops_per_weight_byte(base, 1)}
    if batch != 1:
        ops[f"batch_{batch}"] = ops_per_weight_byte(base, batch)
    print_ops(ops, energy_table)
    claims = seed_claims(energy_table)
    console.print(
        f"seed claims: one DRAM access = {claims['dram_per_fp32_mac']['table']:.0f} fp32 MACs by the table "
        f"(seed: {claims['dram_per_fp32_mac']['seed']:.0f}), = {claims['dram_per_sram_read']['table']:.0f} "
        f"SRAM reads (seed: {claims['dram_per_sram_read']['seed']:.0f})")
    if len(variants) > 1:
        print_comparison(comparison)
    if out:
        from ._util.atomic import atomic_write_bytes

        data = {"report": report.to_dict(), "ops_per_weight_byte": ops, "seed_claims": claims,
                "comparison": comparison.to_dict() if len(variants) > 1 else None,
                "variants": {v: r.to_dict() for v, r in list(comparison.reports.items())[1:]}}
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, json.dumps(data, indent=2).encode())
        console.print(f"wrote {out}")


# -- output ---------------------------------------------------------------------------------------
def _kib(n: float) -> str:
    return f"{n / 1024:,.1f}"


def _uj(pj: float) -> str:
    return f"{pj / 1e6:,.3f}"


def print_report(report: "EnergyReport") -> None:
    """The per-layer table of one model and its totals (energies in µJ, sizes in KiB)."""
    cap_name, cap = report.capacity
    levels = ", ".join(f"{k} {_kib(v)} KiB" for k, v in report.levels.items())
    console.print(f"[bold]{report.model}[/bold] batch {report.batch}; device {report.device or '-'}; "
                  f"levels: {levels}; traffic model on {cap_name} ({_kib(cap)} KiB); weights "
                  f"{'resident on chip' if report.weights_resident else 'read from DRAM every inference'}")
    t = Table("layer", "op", "prec", "MACs", "weights KiB", "acts KiB", "fits in", "DRAM KiB",
              "compute µJ", "memory µJ", "total µJ", "share", title=f"energy ({report.table.source})")
    for layer in report.layers:
        mark = " [red]DRAM[/red]" if layer.dram_dominated else ""
        t.add_row(layer.name, layer.op_type, layer.precision, f"{layer.macs:,}", _kib(layer.weight_bytes),
                  _kib(layer.input_bytes + layer.output_bytes), layer.fits, _kib(layer.dram_bytes),
                  _uj(layer.compute_pj), _uj(layer.memory_pj), _uj(layer.total_pj),
                  f"{report.share(layer):.1%}{mark}")
    t.add_row("total", "", "", f"{report.macs:,}", "", "", "", _kib(report.dram_bytes), _uj(report.compute_pj),
              _uj(report.onchip_pj + report.dram_pj), _uj(report.total_pj), "100%")
    console.print(t)
    dominated = [layer.name for layer in report.layers if layer.dram_dominated]
    console.print(f"total {_uj(report.total_pj)} µJ per batch, {_uj(report.total_pj / report.batch)} µJ per "
                  f"image: compute {report.compute_pj / report.total_pj:.0%}, on-chip "
                  f"{report.onchip_pj / report.total_pj:.0%}, DRAM {report.dram_pj / report.total_pj:.0%}; "
                  f"{len(dominated)} of {len(report.layers)} layers DRAM-dominated")
    if report.unsized:
        console.print(f"[yellow]sizes unknown (counted as 0 bytes): {', '.join(report.unsized)}[/yellow]")


def print_ops(ops: dict[str, float], table: "EnergyTable | None" = None) -> None:
    """Ops per weight byte of the model beside the TPU paper's (Jouppi et al. 2017, Table 1),
    with the compute : weight-DRAM energy ratio each implies and the seed's ratio."""
    from .analysis.energy import (
        SEED_COMPUTE_TO_WEIGHT_DRAM,
        TPU_OPS_PER_WEIGHT_BYTE,
        compute_to_weight_dram_ratio,
    )

    def ratio(value: float, ops_per_mac: float) -> str:
        return f"{compute_to_weight_dram_ratio(value, table, ops_per_mac=ops_per_mac):.2f} : 1"

    t = Table("workload", "ops / weight byte (int8)", "compute : weight-DRAM, int8, 2 ops/MAC",
              "same, 1 op = 1 MAC", "seed says", title="ops per weight byte (2 x MACs / params at 1 byte each)")
    for name, value in ops.items():
        t.add_row(f"this model, {name.replace('_', ' ')}", f"{value:,.0f}", ratio(value, 2), ratio(value, 1), "")
    for name, value in TPU_OPS_PER_WEIGHT_BYTE.items():
        t.add_row(f"TPU paper {name} (server batch)", f"{value:,}", ratio(value, 2), ratio(value, 1),
                  f"{SEED_COMPUTE_TO_WEIGHT_DRAM[name]:.2f} : 1")
    console.print(t)


def print_comparison(comparison: "EnergyComparison") -> None:
    """Per-layer total energy of each variant (µJ) and its ratio to the baseline."""
    variants = list(comparison.reports)
    base = variants[0]
    matched = ", ".join(f"{v} by {how}" for v, how in comparison.matched_by.items() if v != base)
    t = Table("layer", *[f"{v} µJ" for v in variants], *[f"{v}/{base}" for v in variants[1:]],
              title=f"variants; MAC layers matched: {matched}")
    for label, row in comparison.rows:
        cells = [_uj(row[v].total_pj) if row[v] else "-" for v in variants]
        ratios = [f"{row[v].total_pj / row[base].total_pj:.2f}" if row[v] and row[base] and row[base].total_pj
                  else "-" for v in variants[1:]]
        t.add_row(label, *cells, *ratios)
    totals = {v: r.total_pj for v, r in comparison.reports.items()}
    t.add_row("total (all layers)", *[_uj(totals[v]) for v in variants],
              *[f"{totals[v] / totals[base]:.2f}" for v in variants[1:]])
    console.print(t)
