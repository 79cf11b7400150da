"""Plots of a suite run (PNG): the seed studies' figures, each point or bar with the 95%
interval of its p50 as an error bar.

A batch sweep gets the Raspberry Pi study's pair, the suite's number vs batch size with a
linear and a log y axis, one panel per model and one line per runtime; a single-batch
suite gets grouped bars (one group per model, one bar per runtime and precision).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .plots import _save
from .suite_data import UNITS, bounds, by_model, value

if TYPE_CHECKING:
    from ..suites.run import SuiteRun


def plot_suite(run: "SuiteRun", path_prefix: str | Path) -> list[Path]:
    """Write the suite's plots next to ``path_prefix``.

    Returns:
        ``{prefix}_linear.png`` and ``{prefix}_log.png`` for a batch sweep,
        ``{prefix}_bars.png`` for a single batch; [] when no cell has timed runs.
    """
    models = by_model(run)
    if not any(c.result.ok for c in run.cells):
        return []
    prefix = Path(path_prefix)
    if len(run.spec.batches) == 1:
        path = prefix.with_name(prefix.name + "_bars.png")
        _bars(run, models, path)
        return [path]
    out = []
    for scale in ("linear", "log"):
        path = prefix.with_name(f"{prefix.name}_{scale}.png")
        _sweep(run, models, path, log=scale == "log")
        out.append(path)
    return out


def _grid(n: int, size: tuple[float, float]):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, i + 1) for i in range(n)]
    return fig, axes


def _styles(labels) -> dict[str, dict]:
    """One colour per runtime, one line style per thread count, one marker per precision,
    so a dozen lines stay tellable apart (matplotlib's default cycle repeats after 10)."""
    from matplotlib import colormaps

    runtimes = sorted({label.split()[0] for label in labels})
    threads = sorted({label.split()[1] for label in labels})
    variants = sorted({" ".join(label.split()[2:]) for label in labels})
    palette = colormaps["tab10"].colors
    dashes, markers = ("-", "--", ":", "-."), ("o", "s", "^", "D")
    return {label: {"color": palette[runtimes.index(label.split()[0]) % len(palette)],
                    "linestyle": dashes[threads.index(label.split()[1]) % len(dashes)],
                    "marker": markers[variants.index(" ".join(label.split()[2:])) % len(markers)]}
            for label in labels}


def _sweep(run: "SuiteRun", models: dict, path: Path, *, log: bool) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter, NullLocator

    metric = run.spec.metric
    styles = _styles({label for rows in models.values() for label in rows})
    fig, axes = _grid(len(models), (6.4, 4.6))
    for ax, (ref, rows) in zip(axes, models.items()):
        for label, cells in rows.items():
            ran = [c for c in cells if value(c, metric) is not None]
            if ran:
                ys = [value(c, metric) for c in ran]
                yerr = [[y - bounds(c, metric)[0] for c, y in zip(ran, ys)],
                        [bounds(c, metric)[1] - y for c, y in zip(ran, ys)]]
                ax.errorbar([c.result.batch for c in ran], ys, yerr=yerr, capsize=3, label=label,
                            markersize=4, **styles[label])
        ax.set_xscale("log", base=2)
        ax.set_xticks(run.spec.batches, [str(b) for b in run.spec.batches])
        ax.xaxis.set_minor_locator(NullLocator())
        if log:
            ax.set_yscale("log")
            # Labelled ticks at 1-2-5 steps, plain numbers; unlabelled minor ticks (labels
            # on every minor tick collide when the lines span a decade or less).
            ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_title(ref.removeprefix("zoo:"), fontsize=10)
        ax.set_xlabel("batch size")
        ax.set_ylabel(UNITS[metric], fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.suptitle(f"{run.spec.name} on {run.machine.get('cpu_model', '')} ({'log' if log else 'linear'} scale; "
                 f"bars: 95% interval of the p50)",
                 fontsize=10)
    _save(fig, path, outside_legend=True)


def _bars(run: "SuiteRun", models: dict, path: Path) -> None:
    import numpy as np

    metric = run.spec.metric
    labels = sorted({label for rows in models.values() for label in rows})
    fig, (ax,) = _grid(1, (max(6.0, 1.4 * len(models) * max(1, len(labels)) / 3), 4.2))
    width = 0.8 / max(len(labels), 1)
    x = np.arange(len(models))
    for i, label in enumerate(labels):
        heights, errs = [], [[], []]
        for rows in models.values():
            cells = rows.get(label, [])
            v = value(cells[0], metric) if cells else None
            heights.append(np.nan if v is None else v)
            low, high = (v, v) if v is None else bounds(cells[0], metric)
            errs[0].append(0.0 if v is None else v - low)
            errs[1].append(0.0 if v is None else high - v)
        ax.bar(x + (i - (len(labels) - 1) / 2) * width, heights, width, yerr=errs, capsize=3, label=label)
    ax.set_xticks(x, [ref.removeprefix("zoo:") for ref in models], rotation=20, fontsize=8)
    ax.set_ylabel(UNITS[metric], fontsize=8)
    ax.set_title(f"{run.spec.name} on {run.machine.get('cpu_model', '')}, batch {run.spec.batches[0]} "
                 f"(black bars: 95% interval of the p50)",
                 fontsize=10)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    _save(fig, path)
