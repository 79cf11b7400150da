"""``edgeopt roofline --out DIR``'s report.html: the settings and roofs, the per-layer
table (the layer taking the most time highlighted, layers measured above their roof and
layers without a time of their own coloured, with the reason) and the roofline plot
embedded, as one self-contained page (:mod:`edgeopt.report.html`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .doc import Alert, Block, Document, Heading, Image, Paragraph, RowMark, Table, plural
from .html import render_html

from ..analysis.device import DeviceProfile
from ..bench.machine.roofline import Roofline, RooflineRow
from ..errors import EdgeoptError

LAYER_LABELS = {"chosen": "the layer taking the most time", "rejected": "above its roof",
                "muted": "fused into another layer (no time of its own)"}
COLUMNS = ("layer", "op", "MMACs", "AI FLOPs/B", "roof GFLOP/s", "ms", "GFLOP/s", "% roof", "bound")
LEVEL_COLUMNS = ("level", "% level roof", "level bound")
# Why a layer can beat its roof: the roofs are another machine's (a datasheet board's), or
# this machine's measured peaks are below what its kernels reach (a quick measurement, a
# kernel charged to another layer).
ABOVE_ROOF = {"measured": "above its roof: the measured peak or bandwidth is lower than what this layer reached "
                          "(re-measure with `edgeopt machine`), or part of its work was charged to another layer",
              "other": "above the board's roof: the time was measured on this machine, faster than that board"}


def _num(v: float | None, digits: int) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _cells(r: RooflineRow, cache_aware: bool) -> list[str]:
    timed = r.status in ("timed", "runtime-only")
    has = bool(r.macs)
    cells = [r.name, r.op_type, _num(r.macs / 1e6, 2) if has else "-", _num(r.intensity, 1) if has else "-",
             _num(r.attainable_gflops, 1) if has else "-", _num(r.ms, 3) if timed else r.status,
             _num(r.achieved_gflops, 1), _num(r.roof_pct, 0), r.bound]
    if cache_aware:
        cells += [r.level, _num(r.level_roof_pct, 0), r.level_bound]
    return cells


def _mark(r: RooflineRow, slowest: RooflineRow | None, source: str, above: tuple[RooflineRow, ...]) -> RowMark | None:
    """chosen: the layer taking the most time (the one to work on); rejected: measured
    above its roof (the reason says why that can be); muted: no time of its own (fused
    into another layer's kernel, or no kernel)."""
    over = ABOVE_ROOF["measured" if source == "measured" else "other"] if r in above else None
    if r is slowest:  # the highlight stays; being above its roof is said in its reason too
        return RowMark("chosen", "the layer taking the most time" + (f"; {over}" if over else ""))
    if over:  # judged against its cache level's roof when it has one (Roofline.above_roof)
        return RowMark("rejected", over)
    if r.status not in ("timed", "runtime-only"):
        return RowMark("muted", f"no time of its own: {r.status}")
    return None


def layer_table(roof: Roofline) -> Table:
    """One row per layer (graph order, runtime-only kernels last), marked by :func:`_mark`."""
    cache_aware = bool(roof.memory_roofs_gbs)
    slowest = max(roof.rows, key=lambda r: r.ms, default=None)
    return Table(COLUMNS + (LEVEL_COLUMNS if cache_aware else ()), [_cells(r, cache_aware) for r in roof.rows],
                 [_mark(r, slowest, roof.device.source, roof.above_roof) for r in roof.rows],
                 legend="AI: arithmetic intensity (FLOPs per byte moved); % roof: measured GFLOP/s over the "
                        "attainable one; bound: below the ridge, memory. Hover a row for its reason.",
                 labels=LAYER_LABELS, wrap=("ms",))


def _summary(roof: Roofline) -> list[str]:
    memory = [r for r in roof.rows if r.bound == "memory"]
    lines = [f"Roofs: peak **{roof.peak_gflops:.1f} GFLOP/s** ({roof.precision}, {plural(roof.threads, 'thread')}), "
             f"bandwidth **{roof.bandwidth_gbs:.1f} GB/s**, ridge {roof.ridge:.1f} FLOPs/byte.",
             f"Whole model: {roof.flops / 1e9:.3f} GFLOPs in {roof.model_ms:.3f} ms per run (wall, profiling on; "
             f"layers sum {roof.kernel_ms:.3f} ms) = {roof.achieved_gflops:.1f} GFLOP/s, "
             f"{roof.pct_of_peak:.1f}% of peak.",
             f"Memory-bound (AI < ridge): {len(memory)} of {sum(1 for r in roof.rows if r.macs)} layers with MACs, "
             f"{100 * roof.share_ms('memory'):.0f}% of layer time; compute-bound "
             f"{100 * roof.share_ms('compute'):.0f}%; layers without MACs and runtime-only kernels "
             f"{100 * roof.share_ms('-'):.0f}%."]
    if roof.memory_roofs_gbs:
        lines.append("Cache-aware roofs (a layer's level: the smallest that holds its weights + activations): "
                     + ", ".join(f"{k} {v:.1f} GB/s" for k, v in roof.memory_roofs_gbs.items()) + ".")
    return lines


def roofline_document(roof: Roofline, png: str | os.PathLike | None) -> Document:
    """The report of ``roof``, with the plot ``png`` (None: without it)."""
    blocks: list[Block] = [Paragraph([
        f"Model `{roof.model}` on {roof.device.name} ({roof.device.source} roofs), {roof.backend}, "
        f"{plural(roof.threads, 'thread')}, batch {roof.batch}; per-layer times are the median of {roof.runs} "
        f"profiled runs."])]
    if roof.device.source != "measured":
        blocks.append(Alert(f"estimated roofs: {roof.device.name}'s {roof.device.source} peaks, not measured; "
                            "the layer times were measured on this machine, so % roof sets its speed against "
                            "that board's roof."))
    if roof.note and roof.device.source == "measured":  # a datasheet's roofs are already said above
        blocks.append(Alert(roof.note + "."))
    blocks += [Paragraph(_summary(roof))]
    if png:
        blocks.append(Image(Path(png), "roofline: measured GFLOP/s per layer against its arithmetic intensity"))
    blocks += [Heading("Layers"), layer_table(roof)]
    return Document(f"edgeopt roofline: {roof.model}", blocks)


def write_roofline_html(roof: Roofline, path: str | os.PathLike, png: str | os.PathLike | None) -> Path:
    """Write :func:`roofline_document` as a self-contained HTML page to ``path`` (inside
    the staging folder of :func:`~edgeopt.report.roofline_plot.write_roofline`, which
    moves it into place with the other files).

    Returns:
        the path written.

    Raises:
        OSError: ``png`` cannot be read or ``path`` cannot be written.
    """
    path = Path(path)
    path.write_text(render_html(roofline_document(roof, png)))
    return path


def roofline_from_json(doc: dict[str, Any]) -> Roofline:
    """The :class:`Roofline` a ``roofline.json`` holds (to render its report again).

    Raises:
        EdgeoptError: not the content of a roofline.json.
    """
    try:
        fields = {k: doc[k] for k in ("model", "backend", "threads", "batch", "runs", "precision", "peak_gflops",
                                      "bandwidth_gbs", "model_ms", "memory_roofs_gbs")}
        # flops, above_roof and note are derived (properties), written for readers of the file
        rows = tuple(RooflineRow(**{k: v for k, v in r.items() if k != "flops"}) for r in doc["rows"])
        return Roofline(**fields, device=DeviceProfile.from_dict(doc["device"]), rows=rows)
    except (KeyError, TypeError) as e:
        raise EdgeoptError(f"not an edgeopt roofline.json ({type(e).__name__}: {e}): "
                           f"pass the file `edgeopt roofline --out` wrote") from e
