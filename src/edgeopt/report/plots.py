"""Plots of benchmark sweeps and optimize results (PNG, matplotlib).

matplotlib is imported inside the functions, so ``import edgeopt`` never loads it.
Figures are drawn on an explicit Agg canvas (``matplotlib.backends.backend_agg``)
rather than through ``pyplot``: that renders without a display and never switches the
global backend of a user's notebook or GUI session.
"""

from __future__ import annotations

import io
import os
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from ..bench.noise import NOISY_CV, TAIL_CV, noisy
from ..errors import EdgeoptError
from .._util.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from ..bench.harness import BenchResult


def plot_batch_sweep(results: Sequence["BenchResult"], path_prefix: str | os.PathLike) -> list[Path]:
    """Two PNGs of a batch sweep, one line per (backend, threads):

    - ``{path_prefix}_ms_per_image.png``: p50 ms per image vs batch, log x and log y;
    - ``{path_prefix}_throughput.png``: images/s at the p50 vs batch, log x.

    Each point carries the 95% bootstrap interval of its p50 as an error bar
    (:func:`edgeopt.bench.stats.p50_interval`); a noisy cell
    (:func:`edgeopt.bench.noise.noisy`) is drawn as a hollow marker, said in the legend.
    Cells with an error or no runs are left out.

    Returns:
        the two paths (parent folders created; each written atomically).

    Raises:
        EdgeoptError: no result has timed runs.
    """
    ok = [r for r in results if r.error is None and r.latencies_ms]
    if not ok:
        raise EdgeoptError("no benchmark cell has timed runs, nothing to plot: "
                           "check the errors in the results and re-run the sweep")
    lines: dict[str, list[BenchResult]] = defaultdict(list)
    for r in ok:
        lines[f"{r.backend} {r.backend_version} threads={r.threads}".replace("  ", " ")].append(r)
    for rows in lines.values():
        rows.sort(key=lambda r: r.batch)
    cpu = ok[0].machine.get("cpu_model", "")
    title = f"{ok[0].model} on {cpu}" if cpu else ok[0].model
    prefix = Path(path_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    out = [prefix.with_name(prefix.name + "_ms_per_image.png"),
           prefix.with_name(prefix.name + "_throughput.png")]
    _line_plot(lines, per_image_interval, "ms per image (p50 latency / batch)", title, out[0], log_y=True)
    _line_plot(lines, throughput_interval, "throughput (images/s at the p50)", title, out[1], log_y=False)
    return out


def wide_range(values: Sequence[float], factor: float = 10.0) -> bool:
    """True when positive ``values`` span more than ``factor`` x (largest / smallest):
    then a plot draws them on a log axis, where a linear one would flatten the small ones."""
    pos = [v for v in values if v is not None and v > 0]
    return bool(pos) and max(pos) / min(pos) > factor


def per_image_interval(r: "BenchResult") -> tuple[float, float, float]:
    """(p50 ms per image, low, high): the p50 and its 95% interval divided by the batch."""
    s = r.stats
    low = s.p50 if s.p50_low is None else s.p50_low
    high = s.p50 if s.p50_high is None else s.p50_high
    return s.p50 / r.batch, low / r.batch, high / r.batch


def throughput_interval(r: "BenchResult") -> tuple[float, float, float]:
    """(images/s at the p50, low, high): the slow end of the p50 interval gives the low
    throughput."""
    mid, low, high = per_image_interval(r)
    return 1000.0 / mid, 1000.0 / high, 1000.0 / low


OFF_PLOT = r"$\Uparrow$"  # marker of a trial drawn on the top edge, its drop far above the axis


def plot_latency_vs_quality(summary: dict, path: str | os.PathLike) -> Path | None:
    """Per-image latency vs quality drop of an ``optimize`` run (grid or search): one point per
    measured trial (repeats left out), green feasible / red infeasible, squares hand-picked,
    triangles from the accuracy-aware fallback, the chosen one a large labelled star, the
    95% interval of each p50 as a horizontal bar (objective p50), the Pareto front as a step
    line, the quality budget as a dashed line; x is log scale when the latencies span more
    than 10x. The y axis is sized to the budget region (:func:`drop_window`): trials far
    over the budget sit as upward triangles on the top edge, marked "off the plot" in the
    key. Trial numbers label the points where they overlap nothing
    (:func:`edgeopt.report.label_place.place_labels`); the key beside the axes names every
    trial (first 60 by latency).

    Args:
        summary: :func:`edgeopt.optimizer.result.summary` output.
        path: PNG to write (parent folders created; written atomically).

    Returns:
        the path written, or None when no trial is complete.
    """
    pts = sorted((t for t in summary["trials"] if t["state"] == "complete" and t["duplicate_of"] is None
                  and t["per_image_ms"] is not None and t["drop"] is not None),
                 key=lambda t: (t["per_image_ms"], t["number"]))
    if not pts:
        return None
    winner = next((t["number"] for t in pts if t["label"] == summary["winner"]), None)
    cutoff, ylim = drop_window([t["drop"] for t in pts], summary["max_drop"])
    shown = pts[:60]  # the key beside the axes stays one readable column
    fig, ax = _figure((11, max(5.0, 1.0 + 0.14 * len(shown))))
    drawn = _trial_points(ax, pts, summary["objective"], winner, cutoff, ylim)
    front = sorted(summary["pareto"], key=lambda t: t["per_image_ms"])
    if front:
        ax.step([t["per_image_ms"] for t in front], [t["drop"] for t in front], where="post",
                color="tab:green", lw=1, alpha=0.7)
    ax.axhline(summary["max_drop"], color="tab:red", ls="--", lw=1)
    if wide_range([t["per_image_ms"] for t in pts]):
        ax.set_xscale("log")
    if ylim is not None:
        ax.set_ylim(*ylim)
    key_lines = [f"#{t['number']:<3} {t['label']}  {t['per_image_ms']:.3f} ms  drop {t['drop']:.2f}"
                 + ("  (chosen)" if t["number"] == winner else "")
                 + ("  off the plot" if cutoff is not None and t["drop"] > cutoff else "") for t in shown]
    if len(pts) > len(shown):
        key_lines.append(f"... {len(pts) - len(shown)} slower trials not keyed")
    ax.text(1.02, 1.0, "\n".join(key_lines), transform=ax.transAxes, va="top", ha="left",
            fontsize=7, family="monospace")
    _quality_legend(ax, summary, pts, cutoff)
    _quality_labels(ax, summary)
    from .label_place import place_labels

    fig.tight_layout()
    place_labels(ax, drawn["labels"], points=drawn["points"])
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, Path(path), layout=False)
    return Path(path)


def drop_window(drops: Sequence[float], budget: float) -> tuple[float | None, tuple[float, float] | None]:
    """The y range of the latency-vs-quality plot: the budget region, readable.

    Trials whose drop is over 3x the budget (3 units when the budget is 0) are far off it
    and no choice is made among them; stretching the axis to hold them would squash the
    budget region into a sliver. When some trials are that far and some are not, the axis
    holds the near ones, 0 and the budget line (with 12% margins) and the far ones are
    drawn on its top edge.

    Args:
        drops: every plotted trial's quality drop (the summary's unit).
        budget: the quality budget, ``max_drop``.

    Returns:
        (cutoff, (bottom, top)): drops above ``cutoff`` are off the plot; (None, None) when
        no trial is far, or every trial is (then the axis holds them all).
    """
    cutoff = 3 * budget if budget > 0 else 3.0
    near = [d for d in drops if d <= cutoff]
    if not near or len(near) == len(drops):
        return None, None
    top, bottom = max(max(near), budget), min(min(near), 0.0)
    pad = 0.12 * (top - bottom) or 0.1
    return cutoff, (bottom - pad, top + pad)


def _trial_points(ax, pts: list[dict], objective: str, winner, cutoff, ylim) -> dict:
    """Scatter every trial (off-plot ones on the top edge) with its interval bar; returns
    {"labels": trial-number Labels in priority order, "points": (x, y, radius pt)}."""
    from .label_place import Label

    markers = {"hand-picked": "s", "fallback": "^", "qat": "D"}  # grid and sampled points: circles
    labels, points = [], []
    for t in pts:
        x, chosen = t["per_image_ms"], t["number"] == winner
        off = cutoff is not None and t["drop"] > cutoff
        y = ylim[1] if off else t["drop"]
        colour = "tab:green" if t["feasible"] else "tab:red"
        size = 260 if chosen else 70 if off else 45
        ax.scatter(x, y, c=colour, zorder=3 + chosen, s=size, clip_on=not off,
                   marker="*" if chosen else OFF_PLOT if off else markers.get(t["origin"], "o"),
                   edgecolors="k" if chosen else "none", linewidths=0.6)
        _latency_bar(ax, t, y, objective, colour, clip=not off)
        points.append((x, y, (size ** 0.5) / 2 + 1))
        text = f"#{t['number']} chosen" if chosen else str(t["number"])
        label = Label(x, y, text, {"fontweight": "bold", "fontsize": 8} if chosen else None, (size ** 0.5) / 2)
        labels.insert(0, label) if chosen else labels.append(label)
    return {"labels": labels, "points": points}


def _quality_legend(ax, summary: dict, pts: list[dict], cutoff) -> None:
    from matplotlib.lines import Line2D

    unit = _drop_unit(summary)
    handles = [Line2D([], [], ls="", marker="o", color="tab:green", label="feasible"),
               Line2D([], [], ls="", marker="o", color="tab:red", label=_over_label(pts)),
               Line2D([], [], ls="", marker="s", color="gray", label="hand-picked"),
               Line2D([], [], ls="", marker="^", color="gray", label="fallback"),
               *([Line2D([], [], ls="", marker="D", color="gray", label="qat")]
                 if any(t["origin"] == "qat" and (cutoff is None or t["drop"] <= cutoff) for t in pts) else []),
               Line2D([], [], ls="", marker="*", color="gray", markeredgecolor="k", ms=12, label="chosen"),
               Line2D([], [], color="tab:green", lw=1, label="Pareto front"),
               Line2D([], [], color="tab:red", ls="--", lw=1, label=f"budget: drop <= {summary['max_drop']:g} {unit}")]
    if summary["objective"] == "p50" and any((t.get("latency_stats") or {}).get("p50_low") is not None for t in pts):
        handles.append(Line2D([], [], color="gray", marker="|", ls="-", lw=1, label="95% interval of the p50"))
    if cutoff is not None:
        far = sum(t["drop"] > cutoff for t in pts)
        handles.append(Line2D([], [], ls="", marker=OFF_PLOT, color="tab:red", ms=9,
                              label=f"{far} off the plot: drop > {cutoff:g} {unit} (see the key)"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.12), ncol=3, fontsize=7,
              frameon=False)


def _over_label(pts: list[dict]) -> str:
    """The red points' key: when drops were judged by their 95% upper bound, a point under
    the budget line can be red (0.97 measured, 1.98 bound), so the key says so."""
    judged = any(t.get("drop_bound") is not None for t in pts)
    return "over a budget (a drop counts by its 95% bound)" if judged else "over a budget"


def _drop_unit(summary: dict) -> str:
    return summary.get("quality_unit") or ("dB" if summary["quality_metric"] == "snr" else "points")


def _quality_labels(ax, summary: dict) -> None:
    ax.set_xlabel(f"{summary['objective']} latency per image (ms)")
    what = {"accuracy": "larger loss of top-1 agreement, accuracy", "agreement": "loss of top-1 agreement",
            "snr": "output SNR below its floor",
            "top-1 agreement and accuracy": "larger loss of top-1 agreement, accuracy",
            "top-1 agreement": "loss of top-1 agreement"}.get(summary["quality_metric"], summary["quality_metric"])
    ax.set_ylabel(f"quality drop ({_drop_unit(summary)})\n{what}")
    ax.set_title(f"{summary['model']}: per-image latency vs quality drop, one point per measured trial",
                 fontsize=9)
    ax.grid(True, which="both", alpha=0.3)


def _latency_bar(ax, trial: dict, y: float, objective: str, colour: str, *, clip: bool = True) -> None:
    """The 95% interval of a trial's p50 per image as a horizontal error bar at height
    ``y``, when the objective is the p50 and the trial's latency statistics carry the
    interval (trials measured before it existed do not)."""
    stats = trial.get("latency_stats") or {}
    if objective != "p50" or stats.get("p50_low") is None:
        return
    x, batch = trial["per_image_ms"], trial["point"]["batch"]
    bars = ax.errorbar([x], [y], xerr=[[x - stats["p50_low"] / batch], [stats["p50_high"] / batch - x]],
                       fmt="none", ecolor=colour, alpha=0.6, capsize=2, lw=1, zorder=2)
    for part in bars.lines[1] + bars.lines[2]:
        part.set_clip_on(clip)


def _figure(size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=110)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot()


def _save(fig, path: Path, *, outside_legend: bool = False, layout: bool = True) -> None:
    """Write ``fig`` as a PNG (atomically); ``layout=False`` keeps a layout already made
    (labels placed in display pixels would drift if the axes moved)."""
    if layout:
        fig.tight_layout()
    buf = io.BytesIO()
    # A legend placed outside the axes is cut off unless the saved box grows to hold it.
    fig.savefig(buf, format="png", bbox_inches="tight" if outside_legend else None)
    atomic_write_bytes(path, buf.getvalue())


def _line_plot(lines, value, ylabel: str, title: str, path: Path, *, log_y: bool) -> None:
    """``value(result) -> (y, low, high)``: a line per entry of ``lines`` with error bars."""
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter, LogFormatter, NullLocator

    fig, ax = _figure((6.4, 4.4))
    any_noisy = False
    for label, rows in sorted(lines.items()):
        pts = [value(r) for r in rows]
        ys = [p[0] for p in pts]
        yerr = [[p[0] - p[1] for p in pts], [p[2] - p[0] for p in pts]]
        drawn = ax.errorbar([r.batch for r in rows], ys, yerr=yerr, marker="o", capsize=4, label=label)
        colour = drawn.lines[0].get_color()
        hollow = [(r.batch, y) for r, y in zip(rows, ys) if noisy(r)]
        if hollow:
            any_noisy = True
            ax.scatter(*zip(*hollow), s=60, facecolors="white", edgecolors=colour, zorder=3)
    batches = sorted({r.batch for rows in lines.values() for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(batches, [str(b) for b in batches])
    ax.xaxis.set_minor_locator(NullLocator())  # only the measured batches as x ticks
    if log_y:
        ax.set_yscale("log")
        # Plain numbers ("2", "0.5") read better than the default "2x10^0" labels;
        # LogFormatter still thins minor labels when the range spans many decades.
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        low, high = ax.get_ylim()
        # Within a decade (a few cells, close together) LogFormatter writes "9e-01": there
        # the few minor ticks carry plain numbers too.
        ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.3g}") if high / low < 10
                                     else LogFormatter(labelOnlyBase=False))
    ax.set_xlabel("batch size")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Line2D([], [], color="gray", marker="|", ms=10, ls="", label="95% interval of the p50"))
    if any_noisy:
        handles.append(Line2D([], [], color="gray", marker="o", mfc="white", ls="",
                              label=f"noisy (rcv > {NOISY_CV:.0%}, CV > {TAIL_CV:.0%} or interference)"))
    ax.legend(handles=handles, fontsize=8)
    _save(fig, path)


def plot_utilization_histograms(util: dict, path: str | os.PathLike, *, threshold: float | None = 0.05,
                                columns: int = 4) -> Path:
    """Per-layer histograms of channel utilization, one small panel per layer (as in the
    Parsimonious Inference study's per-layer kernel utilization figure).

    Args:
        util: {layer name: per-channel utilization array}, e.g.
            :func:`edgeopt.passes.utilization.measure_utilization` (fractions in [0, 1];
            relative magnitudes may exceed 1).
        path: PNG to write (parent folders created; written atomically).
        threshold: drawn as a dashed red line (the pruning threshold); None for no line.
        columns: panels per row.

    Returns:
        the path written.

    Raises:
        EdgeoptError: ``util`` is empty.
    """
    import numpy as np
    from matplotlib.ticker import MaxNLocator

    if not util:
        raise EdgeoptError("no layer utilization to plot: measure it on calibration images first")
    names = list(util)
    # One x range for every panel, so a layer's spread reads against the others'.
    top = max([1.0] + [float(np.max(v)) for v in util.values() if np.size(v)])
    edges = _bin_edges(top, threshold)
    cols = max(1, min(columns, len(names)))
    rows = (len(names) + cols - 1) // cols
    fig, _ = _figure((2.6 * cols, 2.0 * rows + 0.4))
    fig.clear()
    for i, name in enumerate(names):
        ax = fig.add_subplot(rows, cols, i + 1)
        values = np.asarray(util[name], dtype=float)
        pruned = values < threshold if threshold is not None else np.zeros(values.shape, bool)
        ax.hist([values[pruned], values[~pruned]], bins=edges, color=["tab:red", "tab:blue"], stacked=True)
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # channel counts
        if threshold is not None:
            ax.axvline(threshold, color="tab:red", ls="--", lw=1)
        below = int((values < threshold).sum()) if threshold is not None else 0
        ax.set_title(f"{name} ({len(values)} ch" + (f", {below} < {threshold:g})" if threshold is not None else ")"),
                     fontsize=7)
        ax.tick_params(labelsize=6)
        if i >= len(names) - cols:
            ax.set_xlabel("utilization", fontsize=7)
        if i % cols == 0:
            ax.set_ylabel("channels", fontsize=7)
    fig.suptitle("channel utilization per layer" + (f"; dashed red: the pruning threshold {threshold:g}, "
                                                    f"channels left of it (red) are pruned"
                                                    if threshold is not None else ""),
                 fontsize=8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, Path(path))
    return Path(path)


def _bin_edges(top: float, threshold: float | None, bins: int = 20):
    """``bins`` equal bins over [0, top], shifted so that ``threshold`` is an edge: no bar
    mixes channels below the threshold with channels above it."""
    import numpy as np

    width = top / bins
    start = threshold - width * np.ceil(threshold / width) if threshold else 0.0
    return start + width * np.arange(int(np.ceil((top - start) / width)) + 1)


def plot_sensitivity(result, path: str | os.PathLike) -> Path:
    """Quality drop vs pruning ratio, one line per layer (a pruning sensitivity analysis).

    Args:
        result: an :class:`edgeopt.passes.diagnostics.sensitivity.SensitivityResult`.
        path: PNG to write (parent folders created; written atomically).

    Returns:
        the path written.

    Raises:
        EdgeoptError: the result has no layer.
    """
    drops = result.drops
    if not drops:
        raise EdgeoptError("the sensitivity result has no layer to plot: run it on a prunable model")
    from matplotlib import colormaps

    fig, ax = _figure((7.5, 4.6))
    # tab10's distinct hues while they last (tab20 pairs near-identical shades), then
    # the next line style, so every layer stays tellable apart.
    hues = 10 if len(drops) <= 10 else 20
    colors = colormaps[f"tab{hues}"]
    # Most sensitive first: the legend reads in the order the lines end, top to bottom.
    ranked = sorted(drops.items(), key=lambda kv: -max(kv[1], default=0.0))
    for i, (name, d) in enumerate(ranked):
        ax.plot(result.ratios, d, marker="o", ms=3, color=colors(i % hues),
                ls=("-", "--", ":", "-.")[i // hues % 4],
                label=f"{name} ({result.channels.get(name, '?')} ch)")
    ax.axhline(0, color="k", lw=0.6)
    ax.set_xlabel("fraction of the layer's channels removed")
    ax.set_ylabel("quality drop (baseline - quality)")
    ax.set_title(f"pruning sensitivity per layer ({result.criterion}; baseline {result.baseline:.4g})",
                 fontsize=9)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=6, ncol=2 if len(drops) > 12 else 1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    _save(fig, Path(path))
    return Path(path)
