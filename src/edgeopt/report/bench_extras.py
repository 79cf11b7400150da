"""What ``edgeopt bench`` prints beside its latency table: the inputs the runs were fed, the
resident memory each cell used, and the per-layer times of ``--profile``."""

from __future__ import annotations

from typing import Sequence

from ..bench.harness import BenchResult
from ..bench.layer_profile import top_layers
from .console_table import ConsoleTable, columns

TOP_LAYERS = 10
LAYER_COLUMNS = columns(("layer", "name"), ("op", "name"), "ms", "%")


def _cell(r: BenchResult) -> str:
    return f"{r.backend} b{r.batch} t{r.threads}"


def inputs_line(results: Sequence[BenchResult]) -> str:
    """"inputs: 200 images from photos/, cycled through the runs in 50 batches of 4", or
    "inputs: random ..." ("" when no cell ran)."""
    real = [r for r in results if r.inputs]
    if not real and not any(r.ok for r in results):
        return ""  # nothing ran: no inputs to speak of
    if not real:
        return "inputs: random (of each input's shape and dtype; time real ones with --images/--inputs DIR)"
    i = real[0].inputs
    batches = {r.batch: r.inputs["batches"] for r in real}
    total = i.get("in_folder", i["samples"])
    count = f"{i['samples']}" if total == i["samples"] else f"the first {i['samples']} of {total} (memory cap)"
    return (f"inputs: {count} {i['kind']} from {i['source']}, cycled through the runs in "
            + ", ".join(f"{k} batches of {b}" for b, k in sorted(batches.items())))


def memory_line(results: Sequence[BenchResult]) -> str:
    """"peak RSS MB (baseline + model): ort b1 t2 95.2 (60.1 + 35.1), ..." over the cells
    that measured it ("" when none did); a peak that could not be reset per cell says so."""
    cells = [r for r in results if r.peak_rss_bytes is not None and r.baseline_rss_bytes is not None]
    if not cells:
        return ""
    scope = "" if all(r.rss_scope == "cell" for r in cells) else " (some peaks are their process's, not the cell's)"
    return "peak RSS MB (baseline + model): " + ", ".join(
        f"{_cell(r)} {r.peak_rss_bytes / 1e6:.1f} ({r.baseline_rss_bytes / 1e6:.1f} + {r.model_rss_bytes / 1e6:.1f})"
        for r in cells) + scope


def layer_profile_tables(results: Sequence[BenchResult], n: int = TOP_LAYERS) -> list[ConsoleTable]:
    """For each profiled cell, its ``n`` slowest layers: name (the ONNX node, or the
    runtime's kernel for a runtime-only row), op type, median ms per run and % of the sum
    over all layers; the heading compares that sum with the profiled run's median wall time
    and the cell's p50. A cell whose profile failed or was skipped gets a table with no row
    and a note saying why."""
    tables = []
    for r in results:
        if r.layers is None:
            continue
        if "error" in r.layers:
            tables.append(ConsoleTable(f"per-layer time {_cell(r)}", list(LAYER_COLUMNS),
                                       notes=[f"not measured: {r.layers['error']}"]))
            continue
        rows = top_layers(r.layers, n)
        lt = r.layers
        timed = sum(t["ms"] > 0 for t in lt["layers"])
        table = ConsoleTable(f"per-layer time, {_cell(r)}: {len(rows)} slowest of {timed} timed layers, "
                             f"median of {lt['runs']} profiled runs", list(LAYER_COLUMNS),
                             notes=[f"layers sum {lt['kernel_ms']:.3g} ms; profiled run "
                                               f"{lt['model_ms']:.3g} ms; bench p50 {r.stats.p50:.3g} ms"])
        for t in rows:
            name = t["name"] + (" (runtime)" if t["runtime_only"] else "")
            table.add_row(name, t["op_type"], f"{t['ms']:.3g}", f"{t['share']:.0%}")
        tables.append(table)
    return tables
