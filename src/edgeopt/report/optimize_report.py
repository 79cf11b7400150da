"""The report of ``optimize`` (grid or search): why the chosen model won, as Markdown and
as HTML.

Both renderers walk the same list of sections (from :func:`sections`), whose tables come
from the row-building functions below, so the two reports can never disagree. The input is
the run's summary (the content of candidates.json, see
:func:`edgeopt.optimizer.result.summary`).
"""

from __future__ import annotations

import html
import re
from collections import deque
from itertools import pairwise
from typing import Any

from ..optimizer.space import Point
from .where import where_measured

# The dimensions of a search point, in the order a user would change them.
DIMENSIONS = ("prune", "prune_scope", "cleanup", "precision", "calibration", "float_layers",
              "backend", "threads", "batch")

PATH_COLUMNS = ("step", "change", "from", "to", "ms before", "ms after", "Δ ms", "Δ drop")
DIMENSION_COLUMNS = ("setting", "baseline", "chosen", "compared with", "its ms", "Δ ms", "Δ drop")
PARETO_COLUMNS = ("#", "label", "per-image ms", "p90 ms per image", "drop", "size MB", "role")
FLOAT_COLUMNS = ("trial", "nodes kept in float")
TRIAL_COLUMNS = ("#", "label", "origin", "state", "per-image ms", "drop", "size MB", "why not chosen")


# formatting --------------------------------------------------------------------------------
def _fmt(v: Any, digits: int = 2, *, signed: bool = False, scale: float = 1.0, suffix: str = "") -> str:
    """The one number formatter: None -> "-", booleans on/off, strings and ints kept,
    floats to ``digits`` decimals (``signed``: with a sign), after dividing by ``scale``
    (bytes -> MB with 1e6)."""
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "on" if v else "off"
    if isinstance(v, str):
        return v
    if isinstance(v, int) and scale == 1.0 and not signed:
        return f"{v}{suffix}"
    v = v / scale
    if v in (float("inf"), float("-inf")):
        return ("+" if signed and v > 0 else "") + f"{v}{suffix}"
    return f"{v:{'+' if signed else ''}.{digits}f}{suffix}"


def _value(dim: str, v: Any) -> str:
    """A point's setting as a user reads it."""
    if dim == "prune":
        return f"{round(v * 100)}%" if v else "none"
    if dim in ("calibration", "prune_scope") and not v:
        return "-"
    return _fmt(v)


def _unit(summary: dict) -> str:
    """The unit of the trials' drop (summaries before task evaluators: from the metric)."""
    return summary.get("quality_unit") or ("dB" if summary["quality_metric"] == "snr" else "points")


def _task(summary: dict) -> str:
    """The task (summaries before task evaluators judged classifiers, or every output by SNR)."""
    return summary.get("task") or ("outputs" if summary["quality_metric"] == "snr" else "classify")


# trials ------------------------------------------------------------------------------------
def _measured(summary: dict) -> list[dict]:
    """Complete trials that were measured themselves (not repeats)."""
    return [t for t in summary["trials"] if t["state"] == "complete" and t["duplicate_of"] is None]


def _find(summary: dict, label: str) -> dict | None:
    """The measured trial of that label (the first one), or None."""
    return next((t for t in _measured(summary) if t["label"] == label), None)


def _point(t: dict) -> Point:
    return Point(**t["point"])


def _ms(t: dict) -> str:
    return _fmt(t["per_image_ms"], 3)


def _role(summary: dict, t: dict) -> str:
    roles = [name for key, name in (("winner", "chosen"), ("hand_picked_best", "best hand-picked"),
                                    ("baseline", "baseline")) if summary[key] == t["label"]]
    return ", ".join(roles)


# header and verdict --------------------------------------------------------------------------
def _quality_line(summary: dict) -> str:
    budget, task, acc = summary["max_drop"], _task(summary), summary["original_accuracy"]
    why = f" ({summary['task_reason']})" if summary.get("task_reason") else ""
    if task == "classify" and acc is not None:
        what = (f"top-1 agreement with the original fp32 model and top-1 accuracy on the labelled held-out "
                f"images; the drop is the larger loss; budget: agreement >= {100 - budget:g}% and at most "
                f"{budget:g} points below the original's {_fmt(acc)}% accuracy")
        metric = "accuracy"
    elif task == "classify":
        what = (f"top-1 agreement with the original fp32 model (the images have no labels); budget: "
                f"a drop of at most {budget:g} points (agreement >= {100 - budget:g}%)")
        metric = "agreement"
    elif task == "outputs":
        floor = summary.get("min_snr_db", 20.0)
        what = (f"every output against the original's; the worst output's SNR decides: the drop is the dB "
                f"below the SNR floor of {_fmt(floor, 0)} dB; budget: at most {budget:g} dB")
        metric = summary["quality_metric"]
    else:
        what = (f"the drop is how much worse than the original's outputs the candidate is, in {_unit(summary)}; "
                f"budget: at most {budget:g} {_unit(summary)}")
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
    task, n = base.get("task") or _task(summary), base.get("n", summary["n_eval"])
    original = base.get("original", summary.get("original_accuracy"))
    if original is None:
        return (f"Baseline quality: not stated: the {n} held-out inputs carry no ground truth, so quality is "
                f"agreement with the original (give labelled data to state it).")
    unit = base.get("unit", "%")
    value = f"{_fmt(original)}%" if unit == "%" else f"{_fmt(original)} {unit}"
    return (f"Baseline quality: the original's {_BASELINE_METRIC.get(task, task + ' score')} is **{value}** "
            f"on the {n} held-out inputs.")


def _budget_line(summary: dict, trials: list[dict]) -> str:
    counts = {s: sum(t["state"] == s for t in trials) for s in ("complete", "pruned", "failed")}
    repeats = sum(t["duplicate_of"] is not None for t in trials)
    how = ("grid: every recipe x backend at your threads and batch, each measured in full"
           if summary.get("strategy", "search") == "grid" else
           "search: Optuna's multi-objective TPE sampler after the hand-picked choices")
    budget = ("no time budget" if summary.get("budget_s") is None else
              f"budget {_fmt(summary['budget_s'], 0)} s")
    return (f"Strategy: {how}; {budget}, used {_fmt(summary['elapsed_s'], 1)} s: "
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
    limits = [f"latency <= {_fmt(summary['max_latency_ms'])} ms" if summary.get("max_latency_ms") else "",
              f"size <= {_fmt(summary['max_size_bytes'], scale=1e6, suffix=' MB')}"
              if summary.get("max_size_bytes") else ""]
    if any(limits):
        lines.append("Other constraints: " + ", ".join(x for x in limits if x) + ".")
    return lines


def _trial_phrase(summary: dict, label: str) -> str:
    t = _find(summary, label)
    if t is None:
        return f"**{label}**"
    bound = (t.get("quality") or {}).get("drop_bound")
    upper = "" if bound is None else f" (95% upper bound {_fmt(bound)})"
    return (f"**{label}** (#{t['number']}, {_ms(t)} ms per image in its trial, drop "
            f"{_fmt(t['drop'])} {_unit(summary)}{upper}, {_fmt(t['size_bytes'], scale=1e6)} MB)")


def verdict_lines(summary: dict) -> list[str]:
    """The choice, the two references and the speedups of the alternating re-timing."""
    c = summary["confirm_ms"]
    lines = [f"Chosen: {_trial_phrase(summary, summary['winner'])}.",
             f"Best hand-picked choice: {_trial_phrase(summary, summary['hand_picked_best'])}.",
             f"Baseline (fp32 on ONNX Runtime at your threads): {_trial_phrase(summary, summary['baseline'])}.",
             (f"Re-timed in alternating rounds (p50 ms per image): chosen {_fmt(c.get('winner'), 3)}, "
              f"hand-picked {_fmt(c.get('hand_picked'), 3)}, baseline {_fmt(c.get('baseline'), 3)}: "
              f"**{_fmt(summary['speedup_vs_hand_picked'])}x** faster than the best hand-picked choice, "
              f"**{_fmt(summary['speedup_vs_baseline'])}x**{_span(summary.get('speedup_interval'))} faster "
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
    return f" [{_fmt(span[0])}..{_fmt(span[1])}, 95% interval over rounds]"


# what each change bought ----------------------------------------------------------------------
def _changes(a: Point, b: Point) -> str:
    """What changed from ``a`` to ``b``: the dimension set, then what it brought along
    (int8 and fp16 always clean up first, for instance)."""
    def step(d: str) -> str:
        return f"{d} {_value(d, getattr(a, d))} -> {_value(d, getattr(b, d))}"

    changed = [d for d in DIMENSIONS if getattr(a, d) != getattr(b, d)]
    primary = next((d for d in changed if Point(**{**a.to_dict(), d: getattr(b, d)}) == b), None)
    if primary is None or len(changed) == 1:
        return ", ".join(step(d) for d in changed)
    return f"{step(primary)} (brings {', '.join(step(d) for d in changed if d != primary)})"


def _deltas(before: dict, after: dict) -> list[str]:
    dms = after["per_image_ms"] - before["per_image_ms"]
    ddrop = None if after["drop"] is None or before["drop"] is None else after["drop"] - before["drop"]
    return [_fmt(dms, 3, signed=True), _fmt(ddrop, signed=True)]


def measured_path(summary: dict) -> list[dict]:
    """The shortest chain of measured trials from the baseline to the chosen one, each step
    setting one dimension to the chosen's value ([] when no such chain was measured)."""
    by_point = {}
    for t in _measured(summary):
        by_point.setdefault(_point(t), t)
    start, goal = _find(summary, summary["baseline"]), _find(summary, summary["winner"])
    if start is None or goal is None:
        return []
    target, prev = _point(goal), {_point(start): None}
    queue = deque([_point(start)])
    while queue:
        p = queue.popleft()
        if p == target:
            chain = []
            while p is not None:
                chain.append(by_point[p])
                p = prev[p]
            return chain[::-1]
        for d in DIMENSIONS:
            q = Point(**{**p.to_dict(), d: getattr(target, d)})
            if q != p and q in by_point and q not in prev:
                prev[q] = p
                queue.append(q)
    return []


def path_rows(summary: dict) -> list[list[str]]:
    """One row per step of :func:`measured_path`."""
    chain = measured_path(summary)
    return [[str(i), _changes(_point(a), _point(b)), f"#{a['number']} {a['label']}",
             f"#{b['number']} {b['label']}", _ms(a), _ms(b), *_deltas(a, b)]
            for i, (a, b) in enumerate(pairwise(chain), 1)]


def _unmeasured(summary: dict, alt: Point) -> str:
    other = next((t for t in summary["trials"] if t["duplicate_of"] is None and t["state"] != "complete"
                  and _point(t) == alt), None)
    if other is None:
        return f"not measured ({alt.label} was not tried)"
    return f"not measured (#{other['number']} {alt.label} {other['state']}: {other['reason']})"


def dimension_rows(summary: dict) -> list[list[str]]:
    """For each setting in which the chosen differs from the baseline: the chosen against
    the measured trial equal to it except for that setting, put back to the baseline's."""
    win, base = _find(summary, summary["winner"]), _find(summary, summary["baseline"])
    if win is None or base is None:
        return []
    wp, bp = _point(win), _point(base)
    measured = {}
    for t in _measured(summary):
        measured.setdefault(_point(t), t)
    rows = []
    for d in DIMENSIONS:
        if getattr(wp, d) == getattr(bp, d):
            continue
        head = [d, _value(d, getattr(bp, d)), _value(d, getattr(wp, d))]
        alt = Point(**{**wp.to_dict(), d: getattr(bp, d)})
        other = measured.get(alt)
        if alt == wp:
            rows.append(head + [f"comes with precision {wp.precision}: not separable", "-", "-", "-"])
        elif other is None:
            rows.append(head + [_unmeasured(summary, alt), "-", "-", "-"])
        else:
            rows.append(head + [f"#{other['number']} {other['label']}", _ms(other), *_deltas(other, win)])
    return rows


# Pareto front, fallback, trials --------------------------------------------------------------
def pareto_rows(summary: dict) -> list[list[str]]:
    """The feasible trials no other beats on both latency and drop, fastest first."""
    front = sorted(summary["pareto"], key=lambda t: t["per_image_ms"])
    return [[str(t["number"]), t["label"], _ms(t),
             _fmt(None if t["p90_ms"] is None else t["p90_ms"] / t["point"]["batch"], 3),
             _fmt(t["drop"]), _fmt(t["size_bytes"], scale=1e6), _role(summary, t)] for t in front]


def float_layer_rows(summary: dict) -> list[list[str]]:
    """{trial label: node names kept in float} of mixed-precision trials."""
    return [[label, ", ".join(nodes)] for label, nodes in (summary.get("float_layers") or {}).items()]


def _why_not(summary: dict, t: dict, win: dict | None) -> str:
    if t["duplicate_of"] is not None:
        return f"repeat of #{t['duplicate_of']}"
    if win is not None and t["number"] == win["number"]:
        return "**chosen**"
    if t["state"] != "complete":
        return t["reason"] or t["state"]
    if not t["feasible"]:
        return t["reason"] or "outside the constraints"
    if win is None:
        return "not chosen"
    x, y = _ms(t), _ms(win)
    if t["per_image_ms"] > win["per_image_ms"]:
        return f"slower than the chosen ({x} ms vs {y} ms)"
    return f"not slower in its own timing ({x} ms vs {y} ms), but not chosen: see the notes"


def trial_rows(summary: dict) -> list[list[str]]:
    """Every trial by number, with the reason it lost."""
    win = _find(summary, summary["winner"])
    return [[str(t["number"]), t["label"], t["origin"], t["state"], _ms(t), _fmt(t["drop"]),
             _fmt(t["size_bytes"], scale=1e6), _why_not(summary, t, win)]
            for t in sorted(summary["trials"], key=lambda t: t["number"])]


# sections -------------------------------------------------------------------------------------
def sections(summary: dict, plot_name: str | None) -> list[tuple]:
    """The report as a list of sections, rendered by both renderers:
    ("h2", title), ("p", lines), ("ul", items), ("table", columns, rows), ("pre", lines),
    ("img", file name)."""
    unit = _unit(summary)
    out: list[tuple] = [("p", header_lines(summary)), ("h2", "Verdict"), ("p", verdict_lines(summary))]
    if summary.get("notes"):
        out.append(("ul", list(summary["notes"])))
    how = (f"Per-image {summary['objective']} latencies from each trial's own timing (separate runs: "
           "a few % is noise; the alternating re-timing above is the fair comparison). "
           f"Δ = after - before: negative ms is faster, positive drop ({unit}) is worse.")
    out += [("h2", "What each change bought"), ("p", [how])]
    path = path_rows(summary)
    if path:
        lead = "Measured steps from the baseline to the chosen, one setting at a time:"
    elif summary["winner"] == summary["baseline"]:
        lead = "Nothing changed: the chosen is the baseline."
    else:
        lead = "No chain of measured trials leads from the baseline to the chosen one setting at a time."
    out.append(("p", [lead]))
    if path:
        out.append(("table", PATH_COLUMNS, path))
    dims = dimension_rows(summary)
    if dims:
        alone = ("Each setting alone: the chosen against the trial equal to it except for that "
                 "setting, put back to the baseline's (Δ = chosen - that trial):")
        out += [("p", [alone]), ("table", DIMENSION_COLUMNS, dims)]
    out += [("h2", "Pareto front"),
            ("p", [f"Feasible trials no other beats on both per-image latency and drop ({unit})."]),
            ("table", PARETO_COLUMNS, pareto_rows(summary))]
    if plot_name:
        out.append(("img", plot_name))
    out += [("h2", "Accuracy-aware fallback"), ("pre", list(summary.get("fallback") or ["(no log)"]))]
    floats = float_layer_rows(summary)
    if floats:
        out += [("p", ["Layers kept in float (worst int8 error first):"]), ("table", FLOAT_COLUMNS, floats)]
    out += [("h2", "All trials"), ("table", TRIAL_COLUMNS, trial_rows(summary))]
    return out


TITLE = "edgeopt optimize report"


def _md_cell(s: str) -> str:
    return s.replace("|", "\\|")


def render_markdown(summary: dict, plot_name: str | None) -> str:
    """The report as Markdown."""
    out = [f"# {TITLE}", ""]
    for kind, *body in sections(summary, plot_name):
        if kind == "h2":
            out += [f"## {body[0]}", ""]
        elif kind == "p":
            out += [line + "  " for line in body[0]] + [""]
        elif kind == "ul":
            out += [f"- {item}" for item in body[0]] + [""]
        elif kind == "pre":
            out += ["```", *body[0], "```", ""]
        elif kind == "img":
            out += [f"![per-image latency vs quality drop]({body[0]})", ""]
        else:
            cols, rows = body
            out += ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows] + [""]
    return "\n".join(out).rstrip() + "\n"


def _inline(s: str) -> str:
    """Escaped text with the Markdown **bold** and `code` of the shared lines as HTML."""
    s = html.escape(s)
    s = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", s)


def _html_table(cols: tuple, rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(summary: dict, plot_name: str | None) -> str:
    """The report as a standalone HTML page (the plot referenced by file name)."""
    parts = [f"<h1>{html.escape(TITLE)}</h1>"]
    for kind, *body in sections(summary, plot_name):
        if kind == "h2":
            parts.append(f"<h2>{html.escape(body[0])}</h2>")
        elif kind == "p":
            parts += [f"<p>{_inline(line)}</p>" for line in body[0]]
        elif kind == "ul":
            parts.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in body[0]) + "</ul>")
        elif kind == "pre":
            parts.append("<pre>" + html.escape("\n".join(body[0])) + "</pre>")
        elif kind == "img":
            parts.append(f'<img src="{html.escape(body[0])}" alt="per-image latency vs quality drop" width="900">')
        else:
            parts.append(_html_table(*body))
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(TITLE)}</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:0.5em 0}"
        "td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}"
        "pre{background:#f4f4f4;padding:0.5em}</style></head><body>"
        + "".join(parts) + "</body></html>\n"
    )
