"""The tables of the ``optimize`` report (grid or search), as rows of strings: the measured
path from the baseline to the chosen, each setting alone, the Pareto front, the layers
kept in float and every trial with the reason it lost (and its :class:`~edgeopt.report.
doc.RowMark`). The input is the run's summary (the content of candidates.json, see
:func:`edgeopt.optimizer.result.summary`)."""

from __future__ import annotations

from collections import deque
from itertools import pairwise
from typing import Any

from ..optimizer.space import Point
from .doc import RowMark

# The dimensions of a search point, in the order a user would change them.
DIMENSIONS = ("prune", "prune_scope", "cleanup", "precision", "calibration", "float_layers",
              "backend", "threads", "batch")

PATH_COLUMNS = ("step", "change", "from", "to", "ms before", "ms after", "Δ ms", "Δ drop")
DIMENSION_COLUMNS = ("setting", "baseline", "chosen", "compared with", "its ms", "Δ ms", "Δ drop")
PARETO_COLUMNS = ("#", "label", "per-image ms", "p90 ms per image", "drop", "size MB", "role")
FLOAT_COLUMNS = ("trial", "nodes kept in float")
TRIAL_COLUMNS = ("#", "label", "origin", "state", "per-image ms", "drop", "size MB", "why not chosen")




# formatting --------------------------------------------------------------------------------
def fmt(v: Any, digits: int = 2, *, signed: bool = False, scale: float = 1.0, suffix: str = "") -> str:
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


def setting_text(dim: str, v: Any) -> str:
    """A point's setting as a user reads it."""
    if dim == "prune":
        return f"{round(v * 100)}%" if v else "none"
    if dim in ("calibration", "prune_scope") and not v:
        return "-"
    return fmt(v)


def drop_unit(summary: dict) -> str:
    """The unit of the trials' drop (summaries before task evaluators: from the metric)."""
    return summary.get("quality_unit") or ("dB" if summary["quality_metric"] == "snr" else "points")


def task_of(summary: dict) -> str:
    """The task (summaries before task evaluators judged classifiers, or every output by SNR)."""
    return summary.get("task") or ("outputs" if summary["quality_metric"] == "snr" else "classify")


# trials ------------------------------------------------------------------------------------
def measured_trials(summary: dict) -> list[dict]:
    """Complete trials that were measured themselves (not repeats)."""
    return [t for t in summary["trials"] if t["state"] == "complete" and t["duplicate_of"] is None]


def find_trial(summary: dict, label: str) -> dict | None:
    """The measured trial of that label (the first one), or None."""
    return next((t for t in measured_trials(summary) if t["label"] == label), None)


def point_of(t: dict) -> Point:
    return Point(**t["point"])


def ms_text(t: dict) -> str:
    return fmt(t["per_image_ms"], 3)


def role_of(summary: dict, t: dict) -> str:
    roles = [name for key, name in (("winner", "chosen"), ("hand_picked_best", "best hand-picked"),
                                    ("baseline", "baseline")) if summary[key] == t["label"]]
    return ", ".join(roles)


# what each change bought ----------------------------------------------------------------------
def _changes(a: Point, b: Point) -> str:
    """What changed from ``a`` to ``b``: the dimension set, then what it brought along
    (int8 and fp16 always clean up first, for instance)."""
    def step(d: str) -> str:
        return f"{d} {setting_text(d, getattr(a, d))} -> {setting_text(d, getattr(b, d))}"

    changed = [d for d in DIMENSIONS if getattr(a, d) != getattr(b, d)]
    primary = next((d for d in changed if Point(**{**a.to_dict(), d: getattr(b, d)}) == b), None)
    if primary is None or len(changed) == 1:
        return ", ".join(step(d) for d in changed)
    return f"{step(primary)} (brings {', '.join(step(d) for d in changed if d != primary)})"


def _deltas(before: dict, after: dict) -> list[str]:
    dms = after["per_image_ms"] - before["per_image_ms"]
    ddrop = None if after["drop"] is None or before["drop"] is None else after["drop"] - before["drop"]
    return [fmt(dms, 3, signed=True), fmt(ddrop, signed=True)]


def measured_path(summary: dict) -> list[dict]:
    """The shortest chain of measured trials from the baseline to the chosen one, each step
    setting one dimension to the chosen's value ([] when no such chain was measured)."""
    by_point = {}
    for t in measured_trials(summary):
        by_point.setdefault(point_of(t), t)
    start, goal = find_trial(summary, summary["baseline"]), find_trial(summary, summary["winner"])
    if start is None or goal is None:
        return []
    target, prev = point_of(goal), {point_of(start): None}
    queue = deque([point_of(start)])
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
    return [[str(i), _changes(point_of(a), point_of(b)), f"#{a['number']} {a['label']}",
             f"#{b['number']} {b['label']}", ms_text(a), ms_text(b), *_deltas(a, b)]
            for i, (a, b) in enumerate(pairwise(chain), 1)]


def _unmeasured(summary: dict, alt: Point) -> str:
    other = next((t for t in summary["trials"] if t["duplicate_of"] is None and t["state"] != "complete"
                  and point_of(t) == alt), None)
    if other is None:
        return f"not measured ({alt.label} was not tried)"
    return f"not measured (#{other['number']} {alt.label} {other['state']}: {other['reason']})"


def dimension_rows(summary: dict) -> list[list[str]]:
    """For each setting in which the chosen differs from the baseline: the chosen against
    the measured trial equal to it except for that setting, put back to the baseline's."""
    win, base = find_trial(summary, summary["winner"]), find_trial(summary, summary["baseline"])
    if win is None or base is None:
        return []
    wp, bp = point_of(win), point_of(base)
    measured = {}
    for t in measured_trials(summary):
        measured.setdefault(point_of(t), t)
    rows = []
    for d in DIMENSIONS:
        if getattr(wp, d) == getattr(bp, d):
            continue
        head = [d, setting_text(d, getattr(bp, d)), setting_text(d, getattr(wp, d))]
        alt = Point(**{**wp.to_dict(), d: getattr(bp, d)})
        other = measured.get(alt)
        if alt == wp:
            rows.append(head + [f"comes with precision {wp.precision}: not separable", "-", "-", "-"])
        elif other is None:
            rows.append(head + [_unmeasured(summary, alt), "-", "-", "-"])
        else:
            rows.append(head + [f"#{other['number']} {other['label']}", ms_text(other), *_deltas(other, win)])
    return rows


# Pareto front, fallback, trials --------------------------------------------------------------
def _front(summary: dict) -> list[dict]:
    return sorted(summary["pareto"], key=lambda t: t["per_image_ms"])


def pareto_rows(summary: dict) -> list[list[str]]:
    """The feasible trials no other beats on both latency and drop, fastest first."""
    return [[str(t["number"]), t["label"], ms_text(t),
             fmt(None if t["p90_ms"] is None else t["p90_ms"] / t["point"]["batch"], 3),
             fmt(t["drop"]), fmt(t["size_bytes"], scale=1e6), role_of(summary, t)] for t in _front(summary)]


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
        short = "; its latency is from a short timing (a few runs: quality had already ruled it out)" \
            if t.get("timing") == "short" else ""
        return (t["reason"] or "outside the constraints") + short
    if win is None:
        return "not chosen"
    x, y = ms_text(t), ms_text(win)
    if t["per_image_ms"] > win["per_image_ms"]:
        return f"slower than the chosen ({x} ms vs {y} ms)"
    return f"not slower in its own timing ({x} ms vs {y} ms), but not chosen: see the notes"


def trial_rows(summary: dict) -> list[list[str]]:
    """Every trial by number, with the reason it lost."""
    win = find_trial(summary, summary["winner"])
    return [[str(t["number"]), t["label"], t["origin"], t["state"], ms_text(t), fmt(t["drop"]),
             fmt(t["size_bytes"], scale=1e6), _why_not(summary, t, win)]
            for t in sorted(summary["trials"], key=lambda t: t["number"])]



def _trial_mark(t: dict, win: dict | None, why: str) -> RowMark | None:
    """chosen, muted (a repeat), stopped (failed, stopped early), rejected (outside a
    constraint), or None for a feasible trial that lost on speed."""
    if t["duplicate_of"] is not None:
        return RowMark("muted", why)
    if win is not None and t["number"] == win["number"]:
        return RowMark("chosen", "the chosen model")
    if t["state"] != "complete":
        return RowMark("stopped", why)
    return None if t["feasible"] else RowMark("rejected", why)


def trial_marks(summary: dict) -> list[RowMark | None]:
    """The :class:`RowMark` of each row of :func:`trial_rows`, in the same order."""
    win = find_trial(summary, summary["winner"])
    return [_trial_mark(t, win, _why_not(summary, t, win))
            for t in sorted(summary["trials"], key=lambda t: t["number"])]


def pareto_marks(summary: dict) -> list[RowMark | None]:
    """The chosen row of :func:`pareto_rows` marked, the others plain."""
    return [RowMark("chosen", "the chosen model") if t["label"] == summary["winner"] else None
            for t in _front(summary)]
