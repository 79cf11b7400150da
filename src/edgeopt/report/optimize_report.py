"""The report of ``optimize`` (grid or search): why the chosen model won, how to run it,
and every trial with the reason it lost, as one :class:`~edgeopt.report.doc.Document`
rendered to Markdown (report.md) and to a self-contained HTML page (report.html), so the
two can never disagree. The input is the run's summary (the content of candidates.json,
see :func:`edgeopt.optimizer.result.summary`); the tables come from
:mod:`edgeopt.report.optimize_rows`, the "How to run it" section from
:mod:`edgeopt.report.optimize_howto`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .doc import Block, Bullets, Document, Heading, Image, Paragraph, Preformatted, Table
from .html import render_html as _page
from .markdown import render_markdown as _markdown
from .optimize_howto import howto_blocks
from .plots import plot_latency_vs_quality
from .optimize_rows import (
    DIMENSION_COLUMNS, FLOAT_COLUMNS, PARETO_COLUMNS, PATH_COLUMNS, TRIAL_COLUMNS, dimension_rows, drop_unit,
    find_trial, float_layer_rows, fmt, ms_text, pareto_marks, pareto_rows, path_rows, task_of, trial_marks,
    trial_rows,
)
from .where import where_measured

TITLE = "edgeopt optimize report"
PLOT = "latency_vs_quality.png"
PLOT_ALT = "per-image latency vs quality drop"
TRIALS_LEGEND = "Hover a row for its reason."
TRIAL_LABELS = {"rejected": "outside a budget or constraint", "muted": "repeat of an earlier trial"}


# header and verdict --------------------------------------------------------------------------
def _quality_line(summary: dict) -> str:
    budget, task, acc = summary["max_drop"], task_of(summary), summary["original_accuracy"]
    why = f" ({summary['task_reason']})" if summary.get("task_reason") else ""
    if task == "classify" and acc is not None:
        what = (f"top-1 agreement with the original fp32 model and top-1 accuracy on the labelled held-out "
                f"images; the drop is the larger loss; budget: agreement >= {100 - budget:g}% and at most "
                f"{budget:g} points below the original's {fmt(acc)}% accuracy")
        metric = "accuracy"
    elif task == "classify":
        what = (f"top-1 agreement with the original fp32 model (the images have no labels); budget: "
                f"a drop of at most {budget:g} points (agreement >= {100 - budget:g}%)")
        metric = "agreement"
    elif task == "outputs":
        floor = summary.get("min_snr_db", 20.0)
        what = (f"every output against the original's; the worst output's SNR decides: the drop is the dB "
                f"below the SNR floor of {fmt(floor, 0)} dB; budget: at most {budget:g} dB")
        metric = summary["quality_metric"]
    else:
        what = (f"the drop is how much worse than the original's outputs the candidate is, in {drop_unit(summary)}; "
                f"budget: at most {budget:g} {drop_unit(summary)}")
        metric = summary["quality_metric"]
    conf = summary.get("confidence")
    if task == "classify" and conf:
        what += (f"; judged on the one-sided {100 * conf:g}% upper bound of the drop (100 - the Wilson lower "
                 f"bound of top-1 agreement on {summary['n_eval']} images), not its point estimate")
    return f"Task: **{task}**{why}. Quality metric: **{metric}**, {what}."


# What the original's score against the ground truth is, per task (TaskScore.original).
_BASELINE_METRIC = {"classify": "top-1 accuracy", "detect": "mAP@0.5", "sequence": "character error rate",
                    "regress": "mean error", "segment": "mIoU"}


def _baseline_quality_line(summary: dict) -> str:
    """The original's quality on the held-out data, or why it is not stated."""
    base = summary.get("baseline_quality") or {}
    task, n = base.get("task") or task_of(summary), base.get("n", summary["n_eval"])
    original = base.get("original", summary.get("original_accuracy"))
    if original is None:
        return (f"Baseline quality: not stated: the {n} held-out inputs carry no ground truth, so quality is "
                f"agreement with the original (give labelled data to state it).")
    unit = base.get("unit", "%")
    value = f"{fmt(original)}%" if unit == "%" else f"{fmt(original)} {unit}"
    return (f"Baseline quality: the original's {_BASELINE_METRIC.get(task, task + ' score')} is **{value}** "
            f"on the {n} held-out inputs.")


def _budget_line(summary: dict, trials: list[dict]) -> str:
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "failed")}
    repeats = sum(t["duplicate_of"] is not None for t in trials)
    how = ("grid: every recipe x backend at your threads and batch, each measured in full"
           if summary.get("strategy", "search") == "grid" else
           "search: Optuna's multi-objective TPE sampler after the hand-picked choices")
    budget = ("no time budget" if summary.get("budget_s") is None else
              f"budget {fmt(summary['budget_s'], 0)} s")
    return (f"Strategy: {how}; {budget}, used {fmt(summary['elapsed_s'], 1)} s: "
            f"{len(trials)} trials ({counts['complete']} complete of which {repeats} repeats, "
            f"{counts['pruned']} stopped early, {counts['failed']} failed).")


def header_lines(summary: dict) -> list[str]:
    """Model, machine, settings, strategy and budget, quality metric and data of the run."""
    m = summary.get("machine") or {}
    isa = summary.get("isa_int8")
    int8 = (f"int8 dot product: {isa}" if isa else
            "no int8 dot-product instructions (VNNI, AMX, SDOT): int8 may not pay here")
    lines = [
        f"Model: `{summary['model']}` (sha256 {summary['model_sha256'][:12]}).",
        (f"Machine ({where_measured([m])}): {m.get('cpu_model', '?')} ({m.get('arch', '?')}, "
         f"{m.get('usable_cpus', '?')} usable CPUs); {int8}; ISA flags: {', '.join(m.get('flags', [])) or 'none recorded'}."),
        (f"Your settings: batch {summary['batch']}, {summary['threads']} threads (the baseline and the "
         f"hand-picked choices run at them); objective: {summary['objective']} latency per image."),
        _budget_line(summary, summary["trials"]),
        _quality_line(summary),
        _baseline_quality_line(summary),
        f"Quality measured on {summary['n_eval']} held-out inputs; {summary['n_calibration']} other "
        f"inputs used for calibration and distillation.",
    ]
    limits = [f"latency <= {fmt(summary['max_latency_ms'])} ms" if summary.get("max_latency_ms") else "",
              f"size <= {fmt(summary['max_size_bytes'], scale=1e6, suffix=' MB')}"
              if summary.get("max_size_bytes") else ""]
    if any(limits):
        lines.append("Other constraints: " + ", ".join(x for x in limits if x) + ".")
    return lines


def _trial_phrase(summary: dict, label: str) -> str:
    t = find_trial(summary, label)
    if t is None:
        return f"**{label}**"
    bound = (t.get("quality") or {}).get("drop_bound")
    upper = "" if bound is None else f" (95% upper bound {fmt(bound)})"
    return (f"**{label}** (#{t['number']}, {ms_text(t)} ms per image in its trial, drop "
            f"{fmt(t['drop'])} {drop_unit(summary)}{upper}, {fmt(t['size_bytes'], scale=1e6)} MB)")


def verdict_lines(summary: dict) -> list[str]:
    """The choice, the two references and the speedups of the alternating re-timing."""
    c = summary["confirm_ms"]
    lines = [f"Chosen: {_trial_phrase(summary, summary['winner'])}.",
             f"Best hand-picked choice: {_trial_phrase(summary, summary['hand_picked_best'])}.",
             f"Baseline (fp32 on ONNX Runtime at your threads): {_trial_phrase(summary, summary['baseline'])}.",
             (f"Re-timed in alternating rounds (p50 ms per image): chosen {fmt(c.get('winner'), 3)}, "
              f"hand-picked {fmt(c.get('hand_picked'), 3)}, baseline {fmt(c.get('baseline'), 3)}: "
              f"**{fmt(summary['speedup_vs_hand_picked'])}x** faster than the best hand-picked choice, "
              f"**{fmt(summary['speedup_vs_baseline'])}x**{_span(summary.get('speedup_interval'))} faster "
              f"than the baseline.")]
    if summary.get("decision"):
        lines.append(f"Decision: {summary['decision']}.")
    if summary.get("eval_too_small"):
        lines.append(f"Quality budget: {summary['eval_too_small']}.")
    nodes = (summary.get("float_layers") or {}).get(summary["winner"])
    if nodes:
        lines.append(f"The chosen model keeps {len(nodes)} layer(s) in float: {', '.join(nodes)}.")
    return lines


def _span(span: list | None) -> str:
    """" [low..high] (95% interval over rounds)" of a speedup, or "" when not timed."""
    if not span or None in span:
        return ""
    return f" [{fmt(span[0])}..{fmt(span[1])}, 95% interval over rounds]"



# sections -------------------------------------------------------------------------------------
def _change_blocks(summary: dict) -> list[Block]:
    """What each change bought: the measured path, then each setting alone."""
    how = (f"Per-image {summary['objective']} latencies from each trial's own timing (separate runs: "
           "a few % is noise; the alternating re-timing above is the fair comparison). "
           f"Δ = after - before: negative ms is faster, positive drop ({drop_unit(summary)}) is worse.")
    out: list[Block] = [Heading("What each change bought"), Paragraph([how])]
    path = path_rows(summary)
    if path:
        lead = "Measured steps from the baseline to the chosen, one setting at a time:"
    elif summary["winner"] == summary["baseline"]:
        lead = "Nothing changed: the chosen is the baseline."
    else:
        lead = "No chain of measured trials leads from the baseline to the chosen one setting at a time."
    out.append(Paragraph([lead]))
    if path:
        out.append(Table(PATH_COLUMNS, path, wrap=("change",)))
    dims = dimension_rows(summary)
    if dims:
        alone = ("Each setting alone: the chosen against the trial equal to it except for that "
                 "setting, put back to the baseline's (Δ = chosen - that trial):")
        out += [Paragraph([alone]), Table(DIMENSION_COLUMNS, dims, wrap=("compared with",))]
    return out


def document(summary: dict, plot: str | os.PathLike | None) -> Document:
    """The report: header, verdict, how to run it, what each change bought, the Pareto
    front (and ``plot``, the latency-vs-quality PNG, when given), the fallback log and
    every trial."""
    blocks: list[Block] = [Paragraph(header_lines(summary)), Heading("Verdict"), Paragraph(verdict_lines(summary))]
    if summary.get("notes"):
        blocks.append(Bullets(list(summary["notes"])))
    front = f"Feasible trials no other beats on both per-image latency and drop ({drop_unit(summary)})."
    blocks += [Heading("How to run it"), *howto_blocks(summary), *_change_blocks(summary),
               Heading("Pareto front"), Paragraph([front]),
               Table(PARETO_COLUMNS, pareto_rows(summary), pareto_marks(summary))]
    if plot:
        blocks.append(Image(Path(plot), PLOT_ALT))
    blocks += [Heading("Accuracy-aware fallback"), Preformatted(list(summary.get("fallback") or ["(no log)"]))]
    floats = float_layer_rows(summary)
    if floats:
        blocks += [Paragraph(["Layers kept in float (worst int8 error first):"]),
                   Table(FLOAT_COLUMNS, floats, wrap=("nodes kept in float",))]
    blocks += [Heading("All trials"),
               Table(TRIAL_COLUMNS, trial_rows(summary), trial_marks(summary), legend=TRIALS_LEGEND,
                     labels=TRIAL_LABELS, wrap=("why not chosen",))]
    return Document(TITLE, blocks)


def render_markdown(summary: dict, plot: str | os.PathLike | None) -> str:
    """The report as Markdown (the plot linked by its file name)."""
    return _markdown(document(summary, plot))


def render_html(summary: dict, plot: str | os.PathLike | None) -> str:
    """The report as a self-contained HTML page (the plot embedded).

    Raises:
        OSError: ``plot`` cannot be read.
    """
    return _page(document(summary, plot))


def write_report_files(summary: dict, folder: str | os.PathLike) -> dict[str, Path]:
    """Draw the latency-vs-quality plot (when there is something to plot) and write
    report.md and report.html from ``summary`` into ``folder`` (an existing folder, e.g. a
    writer's staging folder: the files are written in place, not atomically).

    Returns:
        {"plot" (when drawn), "report_md", "report_html": path}.

    Raises:
        OSError: the folder cannot take them.
    """
    folder = Path(folder)
    plot = plot_latency_vs_quality(summary, folder / PLOT)
    files = {} if plot is None else {"plot": plot}
    files["report_md"] = folder / "report.md"
    files["report_md"].write_text(render_markdown(summary, plot))
    files["report_html"] = folder / "report.html"
    files["report_html"].write_text(render_html(summary, plot))  # the plot embedded: the page stands alone
    return files
