"""A suite run written the way the seed studies present results: a JSON file with every
cell, a report (Markdown and self-contained HTML) with one table per model (rows: runtime
x threads x precision, columns: batch size, each number at the p50 with its 95% interval
and the runs behind it, noisy cells marked), who wins where and by how much, and plots
(linear and log for batch sweeps, bars for a single batch)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING

from ..bench.sweep import JSON_SCHEMA
from .._util.atomic import write_staged
from ..bench.compare import median_ratio_interval
from ..bench.noise import LEGEND, noisy
from .bench_table import measured_on
from .doc import Block, Bullets, Document, Heading, Image, Paragraph, RowMark, Table
from .html import render_html
from .markdown import render_markdown
from .suite_data import UNITS, bounds, by_model, value
from .suite_plots import plot_suite

if TYPE_CHECKING:
    from ..suites.run import SuiteCell, SuiteRun


def suite_files(name: str) -> tuple[str, ...]:
    """Every file :func:`write_suite_outputs` may write for the suite ``name``."""
    return ("suite.json", "report.md", "report.html", *(f"{name}_{kind}.png" for kind in ("linear", "log", "bars")))


def write_suite_outputs(run: "SuiteRun", out_dir: str | Path, *, history_id: int | None = None) -> list[Path]:
    """Write ``suite.json`` (schema ``edgeopt.bench/1`` plus the run's meta; each result
    carries a ``cell`` entry), the plots, ``report.md`` and ``report.html`` (the same
    report, self-contained: the plots embedded) into ``out_dir`` (created if missing),
    all or none (:func:`edgeopt._util.atomic.write_staged`).

    Returns:
        the paths written.

    Raises:
        OutputError: ``out_dir`` cannot take them (full, read-only, a folder in the way, ...).
    """
    doc = {"schema": JSON_SCHEMA, "meta": run.meta(), "history_id": history_id,
           "results": [c.to_dict() for c in run.cells]}

    def write(staging: Path) -> dict[str, Path]:
        (staging / "suite.json").write_text(json.dumps(doc, indent=2, default=str))
        plots = plot_suite(run, staging / run.spec.name)
        report = suite_document(run, plots, history_id=history_id)
        (staging / "report.md").write_text(render_markdown(report))
        (staging / "report.html").write_text(render_html(report))
        return {p.name: p for p in (staging / "suite.json", *plots, staging / "report.md", staging / "report.html")}

    return list(write_staged(out_dir, write).values())


def suite_markdown(run: "SuiteRun", plots: list[Path], *, history_id: int | None = None) -> str:
    """:func:`suite_document` as Markdown."""
    return render_markdown(suite_document(run, plots, history_id=history_id))


def suite_document(run: "SuiteRun", plots: list[Path], *, history_id: int | None = None) -> Document:
    """The report: setting (where it was measured: here, or on which boards of which
    kind), one table per model (its fastest runtime highlighted, runtimes with failed cells
    coloured), who wins where, the plots, the noisy cells, what did not run."""
    spec, m = run.spec, run.machine
    metric = spec.metric
    where = suite_measured_on(run)
    blocks: list[Block] = [
        Paragraph([f"Reproduces: {spec.source}."]),
        Paragraph([f"{where[:1].upper()}{where[1:]}: {m.get('cpu_model', '?')}, {m.get('logical_cpus', '?')} "
                   f"logical CPUs; flags: {' '.join(m.get('flags', [])) or '-'}.",
                   f"Budget {run.budget_s:.0f} s, used {run.elapsed_s:.0f} s; each cell aims for {spec.min_runs} "
                   f"timed runs within its share of the budget (after a first run and warm-up), and says how many "
                   f"it got. Inputs are random (timing does not depend on them); weights are random from a "
                   f"fixed seed." + (f" Stored in the results history as run {history_id}." if history_id else "")]),
        *_runtime_notes(run)]
    for ref, rows in by_model(run).items():
        blocks += [Heading(f"{ref.removeprefix('zoo:')}: {UNITS[metric]}"), _table(rows, spec.batches, metric),
                   Paragraph([TABLE_NOTE])]
    blocks += [Heading("Who wins where"), *_winners(run)]
    if plots:
        blocks += [Heading("Plots")] + [Image(Path(p), p.stem) for p in plots]
    shaky = _noisy(run)
    if shaky:
        blocks += [Heading("Noisy cells"),
                   Paragraph([f"Marked ! above ({LEGEND}): their runs spread widely, so read their p50 with its "
                              "interval and confirm on a quieter machine:"]), Bullets(shaky)]
    problems = _problems(run)
    if problems:
        blocks += [Heading("Cells that did not run"), Bullets(problems)]
    return Document(f"edgeopt suite {spec.name}: {spec.title}", blocks)


def suite_measured_on(run: "SuiteRun") -> str:
    """Where the run's cells were measured (:func:`~edgeopt.report.bench_table.measured_on`:
    here, or on which boards of which kind); a ``--device`` run in which no cell ran
    still names the kind of board it was for."""
    board = run.machine.get("device")
    if board and not any(c.result.ok for c in run.cells):
        return f"measured on a {board.get('kind', '?')} board"
    return measured_on([c.result for c in run.cells])


def _noisy(run: "SuiteRun") -> list[str]:
    """One item per noisy cell: the cell and the reason of :func:`edgeopt.bench.noise.noisy`."""
    return [f"{_cell_name(c)}: {why}" for c in run.cells if (why := noisy(c.result))]


def _cell_name(c: "SuiteCell") -> str:
    return f"{c.ref.removeprefix('zoo:')} {c.variant} {c.result.backend} t{c.result.threads} b{c.result.batch}"


def _runtime_notes(run: "SuiteRun") -> list[Block]:
    out: list[Block] = []
    versions = {c.result.backend: c.result.backend_version for c in run.cells}
    if versions:
        out.append(Paragraph(["Runtimes: " + ", ".join(f"{b} {v}".strip() for b, v in versions.items()) + "."]))
    items = []
    for backend, why in run.unavailable.items():
        # A board's reason names the board; a reason from here does not say "here".
        items.append(f"{backend}: {why}." if run.machine.get("device") else f"{backend}: not available here ({why}).")
    seen = set()
    for s in run.sessions:
        if "tuned" in s and s["backend"] not in seen:
            seen.add(s["backend"])
            items.append(f"{s['backend']}: {'tuned' if s['tuned'] else 'untuned'} "
                         f"({s.get('tune_trials', 0)} MetaSchedule trials); untuned TVM uses default schedules.")
    # One line per backend and model: the paths do not depend on the thread count.
    paths = {(s["backend"], s["ref"]): s for s in run.sessions if "path_share" in s}.values()
    for s in paths:
        kernels = ", ".join(f"{k} x{n}" for k, n in sorted(s["conv_paths"].items()))
        items.append(f"{s['backend']} on {s['ref'].removeprefix('zoo:')}: {s['path_share']:.0%} of the "
                     f"convolutions took its algorithm ({kernels}).")
    return out + ([Bullets(items)] if items else [])


def _fmt(v: float | None, metric: str) -> str:
    if v is None:
        return "-"
    if metric == "images_per_s":
        return f"{v:.1f}" if v < 100 else f"{v:.0f}"
    return f"{v:.3g}"


TABLE_NOTE = ("Each number is at the p50 latency, with its 95% bootstrap interval in square brackets and the "
              "timed runs in round ones; ! " + LEGEND.replace("noisy:", "noisy (see below):") + ". x: could "
              "not run (see below); skipped: did not fit the budget.")


def _cell_text(c: "SuiteCell | None", metric: str) -> str:
    if c is None or not c.result.ok:
        return "skipped" if c is not None and c.skipped else "x"
    low, high = bounds(c, metric)
    mark = " !" if noisy(c.result) else ""
    return (f"{_fmt(value(c, metric), metric)} [{_fmt(low, metric)}-{_fmt(high, metric)}] "
            f"({len(c.result.latencies_ms)}){mark}")


def _best(v: float, metric: str) -> float:
    """A sort key: best first whatever the metric (images/s: higher is better)."""
    return -v if metric == "images_per_s" else v


def _table(rows: dict[str, list["SuiteCell"]], batches: tuple[int, ...], metric: str) -> Table:
    """One model's table; the runtime fastest at most batches is marked chosen (the first
    in grid order on a tie), a runtime with cells that failed is marked rejected with the
    reason, one whose cells the budget skipped is marked stopped."""
    wins: dict[str, list[int]] = defaultdict(list)
    for b in batches:
        timed = [(_best(v, metric), label) for label, cells in rows.items() for c in cells
                 if c.result.batch == b and (v := value(c, metric)) is not None]
        if timed:
            wins[min(timed)[1]].append(b)
    top = max(wins, key=lambda k: len(wins[k]), default=None)
    body, marks = [], []
    for label, cells in rows.items():
        by_batch = {c.result.batch: c for c in cells}
        body.append([label, *(_cell_text(by_batch.get(b), metric) for b in batches)])
        failed = [c.result.error or "no timed runs" for c in cells if not c.result.ok and not c.skipped]
        if label == top:
            marks.append(RowMark("chosen", "fastest at " + ", ".join(f"b{b}" for b in wins[label])))
        elif failed:
            marks.append(RowMark("rejected", failed[0]))
        else:
            marks.append(RowMark("stopped", "skipped: did not fit the budget")
                         if any(c.skipped for c in cells) else None)
    columns = [f"b{b}" for b in batches]
    return Table(["runtime", *columns], body, marks, labels=SUITE_LABELS, wrap=columns)


SUITE_LABELS = {"chosen": "fastest at the most batch sizes", "rejected": "some cells failed (hover for why)",
                "stopped": "some cells skipped: over the budget"}
WINNER_COLUMNS = ("model", "batch", "fastest", "value", "vs runner-up [95%]", "vs slowest")


def _winners(run: "SuiteRun") -> list[Block]:
    """Per model and batch: the fastest runtime, by how much it beats the runner-up (with the
    95% bootstrap interval of that ratio, :func:`edgeopt.bench.compare.median_ratio_interval`;
    "tie" when it holds 1) and the slowest (ratios of the p50s measured in this run)."""
    metric = run.spec.metric
    rows = []
    for ref, by_label in by_model(run).items():
        per_batch: dict[int, list[tuple[float, str, SuiteCell]]] = defaultdict(list)
        for label, cells in by_label.items():
            for c in cells:
                v = value(c, metric)
                if v is not None:
                    per_batch[c.result.batch].append((v, label, c))
        for batch in sorted(per_batch):
            # Best first; ties in value keep grid order.
            vals = sorted(per_batch[batch], key=lambda t: _best(t[0], metric))
            best = vals[0]
            ratio = (lambda a, b: a / b) if metric == "images_per_s" else (lambda a, b: b / a)
            second = _runner_up(best, vals[1]) if len(vals) > 1 else "-"
            worst = f"{ratio(best[0], vals[-1][0]):.2f}x ({vals[-1][1]})" if len(vals) > 2 else "-"
            rows.append([ref.removeprefix("zoo:"), str(batch), best[1], _fmt(best[0], metric), second, worst])
    note = ("vs runner-up: the runner-up's p50 over the fastest's, with its 95% bootstrap interval over "
            "the runs of both cells (in-run jitter only: the cells ran one after the other); tie: the "
            "interval holds 1, so this run does not separate them.")
    return [Table(WINNER_COLUMNS, rows), Paragraph([note])]


def _runner_up(best: tuple, second: tuple) -> str:
    ratio, low, high = median_ratio_interval(best[2].result.latencies_ms, second[2].result.latencies_ms)
    tie = "tie: " if low <= 1.0 else ""
    return f"{tie}{ratio:.2f}x [{low:.2f}-{high:.2f}] ({second[1]})"


def _problems(run: "SuiteRun") -> list[str]:
    seen: dict[str, list[str]] = defaultdict(list)
    for c in run.cells:
        if not c.result.ok:
            seen[c.result.error or "no timed runs"].append(_cell_name(c))
    out = []
    for why, cells in seen.items():
        shown = ", ".join(cells[:6]) + (f" and {len(cells) - 6} more" if len(cells) > 6 else "")
        out.append(f"{shown}: {why}")
    return out
