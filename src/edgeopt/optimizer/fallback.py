"""Accuracy-aware fallback: keep the worst int8 layers in float when int8 would win but
breaks the quality budget.

As NNCF's ``quantize_with_accuracy_control`` and ONNX Runtime's ``qdq_loss_debug``
suggest: for each int8 trial that was faster than the best feasible trial but over the
quality budget (fastest first), the layers with the worst measured int8 error
(:mod:`edgeopt.passes.diagnostics.quant_error`) are kept in float, 1, 2, 4, ... at a time
(the space's ``float_layers`` steps), and each is measured like any other trial, until one
fits the budget or stops being faster. When the float model of the same recipe already
breaks the budget, int8 is not the cause and nothing is tried.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

from .space import MIXED, Point, SearchSpace
from .study import TrialRecord, best, float_versions


def fallback(records: Callable[[], list[TrialRecord]], run: Callable[[Point], None], space: SearchSpace, *,
             max_drop: float, time_left: Callable[[], bool], unit: str = "points") -> list[str]:
    """Run the fallback and return its log, one line per decision.

    Args:
        records: the study's trials so far (called again after each run).
        run: measures one point as a "fallback" trial of the study.
        space: its ``float_layers`` are the steps tried (0 excluded).
        max_drop: the quality budget.
        time_left: False once the budget for the fallback is spent.
        unit: the unit of the drops (for the log).
    """
    log: list[str] = []
    recs = records()
    fastest = best(recs)
    steps = sorted(k for k in space.float_layers if k > 0)
    culprits = [r for r in whole_int8_over_budget(recs, max_drop)
                if fastest is None or r.per_image_ms < fastest.per_image_ms]
    tried = set()
    for r in culprits:
        if r.point.model_key in tried:
            continue
        tried.add(r.point.model_key)
        float_drop = float_over_budget(recs, r.point, max_drop)
        if float_drop is not None:
            log.append(f"{r.label}: drop {_drop(r)} {unit}, but its fp32 version already drops "
                       f"{float_drop:.2f}: int8 is not the cause, no fallback")
            continue
        log.append(f"{r.label}: {r.per_image_ms:.2f} ms but drop {_drop(r)} {unit} > "
                   f"{max_drop:g}: keeping its worst int8 layers in float")
        if _steps(r, steps, records, run, fastest, log, time_left, unit):
            return log
        fastest = best(records())
    if culprits and not steps:
        log.append("the space allows no layers in float (float_layers): no fallback")
    elif not log:
        log.append("not needed: no int8 trial was both faster than the best feasible one and over "
                   "the quality budget")
    return log


def whole_int8_over_budget(recs: list[TrialRecord], max_drop: float) -> list[TrialRecord]:
    """Measured int8 trials of a mixed-precision recipe with no layer in float whose
    judged drop is over ``max_drop``, fastest first: what the fallback and qat work on."""
    return sorted((r for r in recs if r.measured and not r.feasible and r.point.precision in MIXED
                   and r.point.float_layers == 0 and (r.judged_drop or 0) > max_drop),
                  key=lambda r: r.per_image_ms)


def float_over_budget(recs: list[TrialRecord], point: Point, max_drop: float) -> float | None:
    """The least drop of ``point``'s measured fp32 versions when even that is over
    ``max_drop`` (int8 is not the cause: neither the fallback nor qat can help), else None."""
    drops = [x.judged_drop for x in float_versions(recs, point)]
    return min(drops) if drops and min(drops) > max_drop else None


def next_step(record: TrialRecord, recs: list[TrialRecord], space: SearchSpace, *, max_drop: float) -> Point | None:
    """The fallback's next point after ``record``, or None: for an int8 trial just measured
    that is faster than the best feasible trial but over the quality budget, the same point
    with the next number of layers kept in float (so the fallback runs as soon as a fast
    int8 model breaks the budget, not when the trials are over).

    Args:
        recs: every trial so far (``record`` included).
    """
    step = _step_after(record, recs, space, max_drop=max_drop)
    return None if step is None or step.label in {x.label for x in recs} else step


def settled(record: TrialRecord, recs: list[TrialRecord], space: SearchSpace, *, max_drop: float) -> bool:
    """Whether the fallback has nothing left to try for the int8 trial ``record``: each of
    its steps that applies (:func:`next_step`) is in ``recs``, and the last one measured
    fits the budget, is no longer faster than the best feasible trial, or is the last
    step; a step that failed or was stopped ends it too (the next ones share its ranking).
    False while a step that applies is still to be measured."""
    by_label = {x.label: x for x in recs if x.duplicate_of is None}
    rec: TrialRecord | None = record
    while rec is not None and rec.measured:
        step = _step_after(rec, recs, space, max_drop=max_drop)
        if step is None:
            return True
        if step.label not in by_label:
            return False
        rec = by_label[step.label]
    return True


def _step_after(record: TrialRecord, recs: list[TrialRecord], space: SearchSpace, *,
                max_drop: float) -> Point | None:
    """:func:`next_step` whether or not that step was measured already."""
    p = record.point
    if not (record.measured and not record.feasible and p.precision in MIXED
            and (record.judged_drop or 0) > max_drop):
        return None
    fastest = best(recs)
    if fastest is not None and record.per_image_ms >= fastest.per_image_ms:
        return None
    if p.float_layers == 0 and float_over_budget(recs, p, max_drop) is not None:
        return None  # int8 is not the cause
    later = [k for k in sorted(space.float_layers) if k > p.float_layers]
    return dataclasses.replace(p, float_layers=later[0]) if later else None


def _steps(r: TrialRecord, steps: list[int], records: Callable[[], list[TrialRecord]],
           run: Callable[[Point], None], fastest: TrialRecord | None, log: list[str],
           time_left: Callable[[], bool], unit: str) -> bool:
    """Try ``r`` with 1, 2, 4, ... layers in float; True when the budget ran out."""
    for k in steps:
        if not time_left():
            log.append("  stopped: the budget ran out")
            return True
        p = dataclasses.replace(r.point, float_layers=k)
        if p.label not in {x.label for x in records()}:
            run(p)
        rec = {x.label: x for x in records()}.get(p.label)
        if rec is None or rec.state != "complete":
            log.append(f"  {k} in float: {rec.state if rec else 'not run'} ({rec.reason if rec else ''})")
            if rec is not None and rec.reason.startswith("out of budget"):
                return True
            continue
        log.append(f"  {k} in float: drop {_drop(rec)} {unit}, {rec.per_image_ms:.2f} ms"
                   + (" -> within budget" if rec.feasible else ""))
        if rec.feasible:
            break
        if fastest is not None and rec.per_image_ms >= fastest.per_image_ms:
            log.append("  no longer faster than the best feasible trial: stopping")
            break
    return False


def _drop(r: TrialRecord) -> str:
    """The drop for the log, with the bound the budget was judged on when there is one."""
    bound = r.attrs.get("drop_bound")
    return f"{r.drop:.2f}" if bound is None else f"{r.drop:.2f} (95% bound {bound:.2f})"
