"""Quantization-aware training when post-training int8 is fast but breaks the quality
budget, after the accuracy-aware fallback (:mod:`edgeopt.optimizer.fallback`).

The trigger: a whole-int8 trial (int8-ort or int8-nncf, no layer in float) that was
measured over the quality budget yet at least ``MIN_EFFECT`` (5%) faster than the best
feasible trial, whose fp32 version (same pruning) is within the budget (else int8 is not
the cause, as the fallback says), and for which the fallback has nothing left to try.
The best feasible trial is read after the fallback: when the fallback found a mixed-
precision model that fits, qat is still tried if the whole-int8 trial is 5% faster than
that one (a qat model runs at whole-int8 speed, Jacob et al. 2018, arXiv:1712.05877);
else a qat model could not be named the winner (:mod:`edgeopt.optimizer.choose` names
none under a 5% gain) and its training would waste the budget.

The qat model (recipe ``qat``, or ``pruned-N+kd/qat`` on a pruned parent) is timed on
each runtime where an int8 parent was that fast, at the parent's threads and batch
("qat@openvino t2 b1"), and measured like every other trial.

The time rule: the training seconds come from the time left. With ``left`` seconds
left, ``overhead`` seconds of the pass beyond its training (to torch, calibration,
export; a guess until one qat build is measured) and ``timing`` seconds to measure it on
its runtimes, it trains ``min(default, SHARE * (left - overhead - timing))`` seconds
(``default``: the builder's ``train_seconds``, the optimize option --train-seconds
that also bounds each pruned model's recovery), and it is tried only when that is at least
``MIN_TRAIN_S``; else a row says "not tried: qat needs ~N s, M s left", N being the least
time that would do. With no time budget it trains its default seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..bench.compare import MIN_EFFECT
from ..errors import EdgeoptError
from .builder import ModelBuilder
from .fallback import float_over_budget, settled, whole_int8_over_budget
from .recipes import Recipe
from .space import Point, SearchSpace
from .study import TrialRecord, best

QAT = "qat"
"""The trained precision tried here (:data:`edgeopt.optimizer.recipes.PRECISIONS`)."""
SHARE = 0.5
"""Share of the time left (after the pass's overhead and the timing) that training may
take: the rest stays for the search's other trials and the final re-timing."""
MIN_TRAIN_S = 10.0
"""Fewer seconds of training than this are not worth a candidate: on zoo:seednet-digits
qat needed 3-20 s to recover, a model the size of PP-LCNet more."""


@dataclass(frozen=True)
class Proposal:
    """One qat trial to enqueue.

    Attributes:
        point: the qat point (recipe, its parent's runtime, threads and batch).
        parents: labels of the int8 trials that triggered it, fastest first.
        attrs: the trial's extra user attributes: ``train_seconds`` (the training budget,
            s), or ``not_tried`` (why it is not built: a row with that reason).
    """

    point: Point
    parents: tuple[str, ...]
    attrs: dict


def qat_recipe(point: Point) -> Recipe:
    """The qat recipe of an int8 point: the same pruning, trained to int8."""
    return Recipe(prune=point.prune, prune_scope=point.prune_scope, precision=QAT)


def triggered(recs: list[TrialRecord], space: SearchSpace, *,
              max_drop: float) -> tuple[dict[Recipe, list[TrialRecord]], list[str]]:
    """The int8 parents that call for qat, by qat recipe (fastest parent first), and log
    lines for those left out (int8 not the cause; the fallback not finished).

    Args:
        recs: every trial so far.
        space: the fallback's steps come from its ``float_layers``.
        max_drop: the quality budget.
    """
    fastest, log = best(recs), []
    groups: dict[Recipe, list[TrialRecord]] = {}
    for r in whole_int8_over_budget(recs, max_drop):
        if fastest is not None and r.per_image_ms * (1 + MIN_EFFECT) > fastest.per_image_ms:
            continue
        float_drop = float_over_budget(recs, r.point, max_drop)
        if float_drop is not None:
            log.append(f"qat not tried for {r.label}: its fp32 version already drops "
                       f"{float_drop:.2f}, int8 is not the cause")
            continue
        groups.setdefault(qat_recipe(r.point), []).append(r)
    for recipe, parents in list(groups.items()):
        first = {}  # the fallback works on the fastest trial of each int8 model
        for r in parents:
            first.setdefault(r.point.model_key, r)
        waiting = [r.label for r in first.values() if not settled(r, recs, space, max_drop=max_drop)]
        if waiting:
            log.append(f"{recipe.name} waits: the fallback has steps left for {', '.join(waiting)}")
            del groups[recipe]
    return groups, log


def training_budget(left: float | None, *, overhead: float, timing: float,
                    default: float) -> tuple[float | None, str]:
    """(training seconds, "") or (None, why not tried), by the rule in the module
    docstring.

    Args:
        left: seconds left for trials (None: no time budget).
        overhead: seconds the pass takes beyond its training.
        timing: seconds to measure the qat model on its runtimes.
        default: the most training seconds (the optimize option --train-seconds).
    """
    if left is None:
        return default, ""
    seconds = min(default, SHARE * (left - overhead - timing))
    if seconds >= min(MIN_TRAIN_S, default):
        return seconds, ""
    need = overhead + timing + min(MIN_TRAIN_S, default) / SHARE
    return None, f"not tried: qat needs ~{need:.0f} s, {max(0.0, left):.0f} s left"


def proposals(recs: list[TrialRecord], space: SearchSpace, *, max_drop: float, builder: ModelBuilder,
              left: float | None, eval_cost: float) -> tuple[list[Proposal], list[str]]:
    """The qat trials the trials so far call for (none already in ``recs``), with their
    training budget or why they are not tried, and the log of the decisions.

    Args:
        builder: estimates the pass's overhead (:meth:`ModelBuilder.estimate_seconds`).
        left: seconds left for trials (None: no time budget).
        eval_cost: seconds to measure one built model (the objective's ``eval_cost``).
    """
    groups, log = triggered(recs, space, max_drop=max_drop)
    done = {r.label for r in recs}
    out = []
    for recipe, parents in groups.items():
        points = dict.fromkeys(Point.of(recipe, r.point.backend, r.point.threads, r.point.batch) for r in parents)
        fresh = [p for p in points if p.label not in done]
        if not fresh:
            continue
        default = builder.train_seconds  # --train-seconds: every candidate that trains gets as much
        try:
            overhead = builder.estimate_seconds(recipe) - builder.training_seconds(recipe)
        except EdgeoptError as e:  # an analysis its steps need failed: the trial will say so
            overhead = 0.0
            log.append(f"{recipe.name}: {e}")
        seconds, why = training_budget(left, overhead=overhead, timing=eval_cost * len(fresh), default=default)
        names = ", ".join(f"{r.label} {r.per_image_ms:.2f} ms (drop {r.drop:.2f})" for r in parents)
        if why:
            log.append(f"{recipe.name} for {names}: {why}")
        else:
            log.append(f"{recipe.name} for {names}: int8 is faster but over the budget and the fallback "
                       f"did not fix it: training {seconds:.0f} s")
        attrs = {"not_tried": why} if why else {"train_seconds": seconds}
        out += [Proposal(p, tuple(r.label for r in parents), attrs) for p in fresh]
    return out, log


def qat_step(records: Callable[[], list[TrialRecord]], run: Callable[[Point, dict], None], space: SearchSpace, *,
             max_drop: float, builder: ModelBuilder, left: Callable[[], float | None],
             eval_cost: Callable[[], float], enabled: bool = True, unit: str = "points") -> list[str]:
    """Run the qat trials the trials so far call for (after the fallback) and return the
    log, one line per decision or result ([] when nothing called for qat).

    Args:
        records: the study's trials so far (called again after each run).
        run: measures one point as a "qat" trial with those extra user attributes.
        left: seconds left for trials now (None: no time budget).
        eval_cost: seconds to measure one built model now.
        enabled: False (``--no-qat``, the demonstration): say what would have been
            tried, try nothing.
        unit: the unit of the drops (for the log).
    """
    recs = records()
    wanted, log = proposals(recs, space, max_drop=max_drop, builder=builder, left=left(), eval_cost=eval_cost())
    if not enabled:
        return [f"qat off: {p.point.label} not tried (--qat turns it on)" for p in wanted]
    # The search ran these as soon as its trials called for them.
    log += [f"{outcome(r, r.point, unit)} (during the trials)" for r in recs if r.origin == "qat"]
    for p in wanted:
        run(p.point, p.attrs)
        rec = next((r for r in reversed(records()) if r.label == p.point.label), None)
        log.append("  " + outcome(rec, p.point, unit))
    return log


def outcome(rec: TrialRecord | None, point: Point, unit: str) -> str:
    """One log line on a qat trial."""
    if rec is None:
        return f"{point.label}: not run"
    if not rec.measured:
        return f"{point.label}: {rec.state} ({rec.reason})"
    return (f"{point.label}: drop {rec.drop:.2f} {unit}, {rec.per_image_ms:.2f} ms"
            + (" -> within budget" if rec.feasible else f" ({rec.reason})"))


def restore_training(builder: ModelBuilder, recs: list[TrialRecord]) -> None:
    """Give the builder the training seconds each recorded qat trial was built with (its
    ``train_seconds``), so the chosen model is the one measured, not trained again: a
    worker process or an earlier session may have built it."""
    for r in recs:
        seconds: Any = r.attrs.get("train_seconds")
        if seconds is not None:
            builder.set_training(r.point.recipe, seconds)
