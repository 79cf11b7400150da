"""The classic log-log roofline plot of a :class:`~edgeopt.bench.machine.roofline.Roofline` (PNG).

x: arithmetic intensity (FLOPs per byte), y: GFLOP/s; the compute roof, the bandwidth
roof and the ridge point where they meet, the cache-aware roofs (L2, L3, DRAM: dashed)
when the device profile has them; one point per layer with FLOPs, at its
measured (achieved) GFLOP/s, sized and coloured by its share of the measured time.
Layout as in Williams, Waterman & Patterson, CACM 2009, Fig. 1. Drawn with the helpers
of :mod:`edgeopt.report.plots` (explicit Agg canvas, atomic write).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .._util.atomic import write_staged
from ..errors import EdgeoptError
from .json_file import write_json
from .label_place import Label, place_labels
from .plots import _figure, _save
from .roofline_report import write_roofline_html

if TYPE_CHECKING:
    from ..bench.machine.roofline import Roofline

LABELLED = 5  # the layers taking the most time get their names on the plot (and those above their roof)
ROOFLINE_FILES = ("roofline.json", "roofline.png", "report.html")  # what write_roofline writes


def write_roofline(roof: "Roofline", out: str | os.PathLike) -> list[Path]:
    """Write ``roofline.json``, ``roofline.png`` and ``report.html`` (both in one page:
    :mod:`edgeopt.report.roofline_report`) into the folder ``out`` (created if missing),
    all or none (:func:`edgeopt._util.atomic.write_staged`).

    Returns:
        the paths written.

    Raises:
        OutputError: ``out`` cannot take them; EdgeoptError: see :func:`plot_roofline`.
    """
    def write(staging: Path) -> dict[str, Path]:
        return {"json": write_json(staging / "roofline.json", roof.to_dict()),
                "png": plot_roofline(roof, staging / "roofline.png"),
                "html": write_roofline_html(roof, staging / "report.html", staging / "roofline.png")}

    return list(write_staged(out, write).values())


def plot_roofline(roof: "Roofline", path: str | os.PathLike) -> Path:
    """Write the roofline of ``roof`` to ``path`` (PNG; parent folders created).

    Returns:
        the path written.

    Raises:
        EdgeoptError: no layer has both FLOPs and a measured time (nothing to place).
    """
    import numpy as np

    pts = [r for r in roof.rows if r.achieved_gflops is not None]
    if not pts:
        raise EdgeoptError(f"no layer of {roof.model} has both MACs and a measured time: nothing to plot "
                           f"(check the layer table's status column)")
    total = roof.kernel_ms
    xs = np.array([r.intensity for r in pts])
    ys = np.array([r.achieved_gflops for r in pts])
    share = np.array([100 * r.ms / total for r in pts])

    fig, ax = _figure((8, 5.6 if roof.note else 5.2))
    lo = min(xs.min(), roof.ridge) / 4
    hi = max(xs.max(), roof.ridge) * 4
    grid = np.geomspace(lo, hi, 256)
    ax.plot(grid, np.minimum(roof.peak_gflops, roof.bandwidth_gbs * grid), color="k", lw=2,
            label=f"roof: {roof.peak_gflops:.1f} GFLOP/s ({roof.precision}, {roof.threads} thr), "
                  f"{roof.bandwidth_gbs:.1f} GB/s")
    # Cache-aware roofs (Ilic et al. 2014): one bandwidth line per level, dashed, up to the peak.
    for (level, bw), color in zip(roof.memory_roofs_gbs.items(), ("tab:blue", "tab:green", "tab:red")):
        ax.plot(grid, np.minimum(roof.peak_gflops, bw * grid), color=color, ls="--", lw=1,
                label=f"{level} roof: {bw:.1f} GB/s ({roof.threads} thr)")
    ax.axvline(roof.ridge, color="gray", ls=":", lw=1, label=f"ridge {roof.ridge:.1f} FLOPs/byte")
    sizes = 20 + 12 * share
    sc = ax.scatter(xs, ys, s=sizes, c=share, cmap="viridis", edgecolors="k", linewidths=0.5,
                    alpha=0.85, zorder=3)
    fig.colorbar(sc, ax=ax, label="share of measured layer time (%)")
    over = [i for i, r in enumerate(pts) if r in roof.above_roof]
    if over:
        ax.scatter(xs[over], ys[over], s=sizes[over] + 90, facecolors="none", edgecolors="red", linewidths=1.6,
                   zorder=4, label=f"{len(over)} layer{'s' if len(over) > 1 else ''} above their roof "
                                   f"(see the note below)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(lo, hi)
    ax.set_ylim(min(ys.min(), roof.bandwidth_gbs * lo) / 2, max(roof.peak_gflops, ys.max()) * 2)
    ax.set_xlabel("arithmetic intensity (FLOPs / byte; bytes = weights + input + output activations)")
    ax.set_ylabel("GFLOP/s (points: measured)")
    ax.set_title(f"{roof.model}: roofline, {roof.backend}, batch {roof.batch}\n"
                 f"roofs of {roof.device.name} ({roof.device.source})", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    legend = ax.legend(loc="lower right", fontsize=7)
    for handle in legend.legend_handles:
        if hasattr(handle, "set_sizes"):  # the ring at a legend's size, not the largest point's
            handle.set_sizes([60])
    if roof.note:
        fig.text(0.01, 0.01, "note: " + roof.note, fontsize=7, color="darkred", va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.05 if roof.note else 0, 1, 1))
    _label_layers(ax, pts, sizes, [pts[i] for i in over])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, Path(path), layout=False)
    return Path(path)


def _label_layers(ax, pts: list, sizes, over: list) -> None:
    """Names beside the :data:`LABELLED` slowest layers above their roof and the
    :data:`LABELLED` slowest others, placed where they overlap no other name nor point."""
    slowest = sorted(pts, key=lambda r: r.ms, reverse=True)
    keep = [r for r in slowest if r in over][:LABELLED] + [r for r in slowest if r not in over][:LABELLED]
    radius = {r.name: float(s) ** 0.5 / 2 for r, s in zip(pts, sizes)}  # scatter sizes are area, points^2
    labels = [Label(r.intensity, r.achieved_gflops, short_name(r.name), {"color": "darkred"} if r in over else None,
                    radius[r.name] + (6 if r in over else 3)) for r in keep]
    place_labels(ax, labels, points=[(r.intensity, r.achieved_gflops, radius[r.name] + 1) for r in pts], leaders=True)


def short_name(name: str, limit: int = 32) -> str:
    """A layer name that fits beside a point. PyTorch export names repeat each module
    level ("/features/features.9/body/body.1/body.1.0/Conv"): a segment that the next one
    extends ("body" before "body.1") is dropped, giving "features.9/body.1.0/Conv"; what is
    still too long keeps its tail."""
    parts = [p for p in name.split("/") if p]
    kept = [p for p, nxt in zip(parts, parts[1:] + [""]) if not nxt.startswith(p + ".")]
    short = "/".join(kept) or name
    return short if len(short) <= limit else "..." + short[-(limit - 3):]
