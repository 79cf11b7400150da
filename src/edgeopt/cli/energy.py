"""``edgeopt energy MODEL``: per-layer memory traffic and energy, variants compared.

The model is :mod:`edgeopt.analysis.energy`; the variants asked for with ``--compare``
(int8 static quantization, fp16, channel pruning) come from
:mod:`edgeopt.optimizer.variants`, and registered passes that need nothing but the model
and are not recipes (the weight-only ``weights-int4``, ``weights-int2``, ``weights-pow2``)
are applied as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

import edgeopt

from .._util.options import parse_size
from .._util.outputs import check_outputs
from ..report.console_table import Printer
from .options import JsonOpt, ModelArg, in_range, json_command

console = Console()


@json_command
def command(
    model: str = ModelArg,
    device: Optional[str] = typer.Option(
        None, "--device", help="Device profile: a builtin name (e.g. raspberry-pi-4) or a JSON file from "
                               "`edgeopt machine --out`; default: this machine (unless --sram is given alone)."),
    sram: Optional[str] = typer.Option(
        None, "--sram", help="On-chip SRAM size, e.g. 256KiB; the traffic model then uses it instead of "
                             "the last-level cache."),
    compare: str = typer.Option(
        "", "--compare", help="Variants to compare per layer, comma-separated recipe names as optimize names "
                              "them: int8 (static QDQ), fp16, prunedNN (NN% of the MACs removed), "
                              "pruned-30+kd/int8-nncf, ...; or a pass that needs only the model: "
                              "weights-int4, weights-int2, weights-pow2. e.g. int8,weights-int4."),
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size (MACs and activations scale with it, weights do not)."),
    table: Optional[Path] = typer.Option(
        None, "--table", help="JSON file overriding energy-table entries in pJ, e.g. {\"dram_read_pj\": 1300}."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the report as JSON to this file."),
    as_json: bool = JsonOpt,
) -> None:
    """Per-layer bytes, on-chip fit, DRAM traffic and energy (Horowitz 45 nm table); ops per weight byte."""
    from ..analysis.energy import EnergyTable, compare_energy, load_table, ops_per_weight_byte, seed_claims
    from ..bench.machine.measure import resolve_device
    from ..report.energy_table import (
        energy_comparison_table,
        energy_json,
        energy_layers_table,
        ops_per_weight_byte_table,
        seed_claims_line,
    )
    from ..report.json_file import write_json

    check_outputs(inputs=(model, table, device), files=[("--out", out)])
    names, passes = _split_compare(compare)
    energy_table = load_table(table) if table else EnergyTable()
    sram_bytes = parse_size(sram) if sram else None
    dev = None
    if device is not None or sram_bytes is None:
        # With --sram alone the SRAM is the hierarchy: this machine is not profiled.
        dev = resolve_device(device)
    base = edgeopt.load_model(model)
    variants = _variants(base, names, passes)
    comparison = compare_energy(variants, dev, sram=sram_bytes, batch=batch, table=energy_table)
    printer = Printer(console, as_json=as_json, command="energy")
    printer.table(energy_layers_table(next(iter(comparison.reports.values()))))
    ops = {"batch_1": ops_per_weight_byte(base, 1)}
    if batch != 1:
        ops[f"batch_{batch}"] = ops_per_weight_byte(base, batch)
    printer.table(ops_per_weight_byte_table(ops, energy_table))
    claims = seed_claims(energy_table)
    printer.line(seed_claims_line(claims))
    if len(variants) > 1:
        printer.table(energy_comparison_table(comparison))
    if out:
        write_json(out, energy_json(comparison, ops, claims))
        printer.line(f"wrote {out}")
    printer.close()


def _split_compare(compare: str) -> tuple[list[str], set[str]]:
    """(the names of a ``--compare`` value in order, duplicates dropped; those that are
    passes): a registered pass that requires nothing but the model and is not a recipe
    name is a pass; the other names are recipes, checked by
    :func:`edgeopt.optimizer.variants.parse_variant_names` (which lower-cases them).

    Raises:
        EdgeoptError: a name that is neither (the recipe parser's message).
    """
    from ..errors import EdgeoptError
    from ..optimizer.recipes import parse_recipe
    from ..optimizer.variants import parse_variant_names
    from ..passes.base import get, names

    def model_only_pass(name: str) -> bool:
        if name not in names() or get(name).requires:
            return False
        try:
            parse_recipe(name)
        except EdgeoptError:
            return True
        return False

    raw = list(dict.fromkeys(v.strip().lower() for v in compare.split(",") if v.strip()))
    passes = {n for n in raw if model_only_pass(n)}
    parse_variant_names(",".join(n for n in raw if n not in passes))
    return raw, passes


def _variants(base, names: list[str], passes: set[str]) -> dict:
    """{"original": base, name: variant} in the order of ``names``: recipes built by
    :func:`edgeopt.optimizer.variants.build_variants`, ``passes`` applied with their
    defaults (:func:`edgeopt.passes.base.run_pass`)."""
    from ..optimizer.variants import build_variants
    from ..passes.base import run_pass

    built = build_variants(base, [n for n in names if n not in passes])
    return {"original": base, **{n: built[n] if n in built else run_pass(n, base) for n in names}}
