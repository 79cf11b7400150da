"""Terminal rendering of ``edgeopt convalgo``: per conv layer the time, multiplications and
extra memory of each convolution algorithm, the fastest, skip notes and the wins."""

from __future__ import annotations

from collections import Counter
from typing import Sequence

from ..analysis.convalgo import LayerResult, wins
from .console_table import Cell, ConsoleTable, Styled, columns


def _mib(n: int) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 1024:.0f} KiB"


def _cell(layer: LayerResult, name: str, direct_mults: int | None, notes: dict[str, str], na: Counter) -> Cell:
    """Three lines per algorithm: time, multiplications (and their ratio to direct's), extra memory."""
    r = layer.result(name)
    if r is None or r.cost is None:
        # "Winograd F(m,3x3) needs stride 1, this layer has stride 2x2": the part before ", this layer"
        # is the same for every such layer, so the notes count layers per reason.
        na[f"{name}: {r.skipped.split(', this layer')[0] if r else 'not requested'}"] += 1
        return "n/a"
    ratio = f" ({r.cost.mults / direct_mults:.2f}x direct)" if direct_mults else ""
    timing = f"{r.ms:.3f} ms" if r.ms is not None else "skipped"
    if r.ms is None:
        notes[f"{layer.name} {name}"] = r.skipped
    first = Styled(timing, "bold green") if layer.fastest == name else timing
    return (first, f"\n{r.cost.mults / 1e6:.2f} M mul{ratio}\n{_mib(r.cost.extra_bytes)}")


def convalgo_table(layers: Sequence[LayerResult], algorithms: Sequence[str], title: str) -> ConsoleTable:
    """The per-layer table (a cell per algorithm: time, multiplications, extra memory; on
    one line, "; "-separated, outside a terminal grid), then as notes the skip notes, the
    wins and the total time per algorithm."""
    table = ConsoleTable(title, columns(("layer", "name"), ("shape (C->M KxK stride pad HxW)", "name"), *algorithms,
                                        ("fastest", "name")), row_lines=True)
    notes: dict[str, str] = {}
    na: Counter = Counter()
    for lay in layers:
        if lay.spec is None:
            table.add_row(lay.name, f"skipped: {lay.skipped}", *(["-"] * len(algorithms)), "-")
            continue
        direct = lay.result("direct")
        direct_mults = lay.spec.macs if direct is None else (direct.cost.mults if direct.cost else None)
        table.add_row(lay.name, lay.spec.label, *(_cell(lay, a, direct_mults, notes, na) for a in algorithms),
                      lay.fastest or "-")
    table.notes.append("cells: best-of-runs time; multiplications (core stage; FFT: 4 real per complex); extra "
                       "memory (workspace + transformed weights). Transform FLOPs are in the JSON.")
    table.notes += [f"  n/a on {n} layer(s): {why}" for why, n in na.items()]
    table.notes += [f"  skipped {key}: {why}" for key, why in notes.items()]
    counts = wins(layers)
    measured = sum(1 for lay in layers if lay.fastest)
    table.notes.append("fastest: " + (", ".join(f"{a} {n} of {measured} layers" for a, n in counts.items())
                                      or "nothing measured"))
    totals = []
    for a in algorithms:
        ms = [r.ms for lay in layers if (r := lay.result(a)) and r.ms is not None]
        if ms:
            totals.append(f"{a} {sum(ms):.2f} ms over {len(ms)} layers")
    if totals:
        table.notes.append("total: " + "; ".join(totals))
    return table
