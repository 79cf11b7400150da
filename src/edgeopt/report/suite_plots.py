"""Plots of a suite run (PNG): the seed studies' figures, each point or bar with the 95%
interval of its p50 as an error bar.

A batch sweep gets the Raspberry Pi study's pair, the suite's number vs batch size with a
linear and a log y axis, one panel per model and one line per runtime; a single-batch
suite gets small multiples, one panel per model with one horizontal bar per runtime and
precision that measured it (dots on a log axis when the values span more than 10x).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .plots import _save, wide_range
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


def _grid(n: int, size: tuple[float, float], *, sharex: bool = False):
    """A figure of ``n`` panels of ``size`` inches each, 3 to a row."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cols = min(n, 3)
    rows = -(-n // cols)
    fig = Figure(figsize=(size[0] * cols, size[1] * rows), dpi=100)
    FigureCanvasAgg(fig)
    axes = [fig.add_subplot(rows, cols, 1)]
    axes += [fig.add_subplot(rows, cols, i + 1, sharex=axes[0] if sharex else None) for i in range(1, n)]
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
    everything = models
    models = {ref: rows for ref, rows in models.items()
              if any(value(c, metric) is not None for cells in rows.values() for c in cells)}
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
        ys = [value(c, metric) for cells in rows.values() for c in cells if value(c, metric) is not None]
        # The study's linear figure flattens the fast lines when one is 10x slower: say so.
        squashed = not log and wide_range(ys)
        ax.set_title(ref.removeprefix("zoo:") + (f" (values span {max(ys) / min(ys):.0f}x: see the log plot)"
                                                 if squashed else ""), fontsize=10)
        ax.set_xlabel("batch size")
        ax.set_ylabel(UNITS[metric], fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    gaps = any(value(c, metric) is None for c in run.cells)
    dropped = [ref.removeprefix("zoo:") for ref in everything if ref not in models]
    fig.suptitle(f"{run.spec.name} on {run.machine.get('cpu_model', '')} ({'log' if log else 'linear'} scale; "
                 f"bars: 95% interval of the p50)"
                 + ("\na line that stops or has a gap: that cell was skipped (budget) or failed, see the report"
                    if gaps else "")
                 + (f"\nno cell measured (no panel): {', '.join(dropped)}" if dropped else ""), fontsize=10)
    _save(fig, path, outside_legend=True)


def _bars(run: "SuiteRun", models: dict, path: Path) -> None:
    """Small multiples: one panel per model, one horizontal bar per runtime (x precision)
    that measured it (a dot on a log axis), best on top, its p50 written at the whisker's end. Cells that did
    not run get no empty slot: the panel names them below its bars; a model with no
    measured cell gets no panel. A log axis, shared by the panels, when the values span
    more than 10x (a 55 ms bar stays visible beside a 6.5 s one)."""
    metric = run.spec.metric
    panels, missing = {}, {}
    for ref, rows in models.items():
        ran = {label: cells[0] for label, cells in rows.items() if value(cells[0], metric) is not None}
        missing[ref] = [f"{label} ({'skipped' if cells[0].skipped else 'failed'})"
                        for label, cells in rows.items() if label not in ran]
        if ran:
            panels[ref] = sorted(ran.items(), key=lambda kv: value(kv[1], metric),
                                 reverse=metric == "images_per_s")
    values = [value(c, metric) for bars in panels.values() for _, c in bars]
    log = wide_range(values)
    tallest = max(len(bars) for bars in panels.values())
    fig, axes = _grid(len(panels), (4.6, 0.24 * tallest + 1.1), sharex=log)
    colours = _runtime_colours({label for bars in panels.values() for label, _ in bars})
    for ax, (ref, bars) in zip(axes, panels.items()):
        ys = list(range(len(bars)))
        vs = [value(c, metric) for _, c in bars]
        lows, highs = zip(*(bounds(c, metric) for _, c in bars))
        xerr = [[v - lo for v, lo in zip(vs, lows)], [hi - v for v, hi in zip(vs, highs)]]
        colour = [colours[label.split()[0]] for label, _ in bars]
        if log:
            # A bar's length on a log axis measures nothing (it starts at an arbitrary left
            # edge): a dot at the p50 with its whisker, and a faint guide to its label.
            ax.hlines(ys, min(values) / 1.5, vs, color="0.85", lw=0.8, zorder=1)
            ax.errorbar(vs, ys, xerr=xerr, fmt="none", ecolor="k", capsize=2, lw=0.8, zorder=2)
            ax.scatter(vs, ys, c=colour, s=36, edgecolors="k", linewidths=0.5, zorder=3)
        else:
            ax.barh(ys, vs, xerr=xerr, color=colour, capsize=2, height=0.7, error_kw={"lw": 0.8})
        for y, v, hi in zip(ys, vs, highs):
            ax.annotate(f"{v:.3g}", (hi, y), xytext=(6, 0), textcoords="offset points", va="center", fontsize=7)
        ax.set_yticks(ys, [label for label, _ in bars], fontsize=7)
        ax.invert_yaxis()  # best on top
        ax.set_title(ref.removeprefix("zoo:"), fontsize=9)
        ax.grid(True, axis="x", which="major", alpha=0.4)
        ax.tick_params(axis="x", labelsize=7, labelbottom=True)
        if missing[ref]:
            ax.text(0.0, -0.1 - 0.6 / (0.24 * tallest + 1.1), "not measured: " + ", ".join(missing[ref]),
                    transform=ax.transAxes, fontsize=6, va="top", color="dimgray", wrap=True)
    _value_axis(axes, values, log, UNITS[metric])
    dropped = [ref.removeprefix("zoo:") for ref in models if ref not in panels]
    fig.suptitle(f"{run.spec.name} on {run.machine.get('cpu_model', '')}, batch {run.spec.batches[0]}: "
                 f"{UNITS[metric]}; whiskers: 95% interval of the p50"
                 + (f"\nno cell measured (no panel): {', '.join(dropped)}" if dropped else ""), fontsize=9)
    _save(fig, path)


def _runtime_colours(labels) -> dict[str, tuple]:
    """One colour per runtime (the label's first word), the same in every panel."""
    from matplotlib import colormaps

    palette = colormaps["tab10"].colors
    return {rt: palette[i % len(palette)] for i, rt in enumerate(sorted({label.split()[0] for label in labels}))}


def _value_axis(axes, values: list[float], log: bool, label: str) -> None:
    """The bars' value axis: log with plain-number ticks when ``log``, from 0 otherwise;
    room on the right for the value written at each bar's end."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    for ax in axes:
        if log:
            ax.set_xscale("log")
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_formatter(NullFormatter())
            ax.set_xlim(min(values) / 1.5, max(values) * 3)
        else:
            ax.set_xlim(0, ax.get_xlim()[1] * 1.15)
        ax.set_xlabel(label + (" (log scale)" if log else ""), fontsize=7)
