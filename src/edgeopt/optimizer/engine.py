"""The optimize engine: one loop for every strategy, measured on this machine.

Phases, whatever the strategy (:mod:`edgeopt.optimizer.strategies`):

1. **prepare**: check by a run whether the graph takes any batch (a graph that fixes its
   batch is measured at that batch only), split the images or samples (calibration /
   held out), compute the original's reference outputs, open the study (Optuna; in
   memory, a SQLite file, or any SQLAlchemy URL, so a search can be resumed and shared
   by processes and machines);
2. **seed**: enqueue the strategy's first points (the hand-picked choices, the grid);
3. **trials**: run the one objective (:mod:`edgeopt.optimizer.objective`) on each point
   the strategy gives, within the budget;
4. **fallback**: the accuracy-aware fallback (:mod:`edgeopt.optimizer.fallback`), then
   quantization-aware training where int8 is fast, over the quality budget and the
   fallback did not fix it (:mod:`edgeopt.optimizer.qat_step`; the search takes both as
   soon as a trial calls for them);
5. **choose and confirm** (:mod:`edgeopt.optimizer.choose`): the fastest trial within
   every constraint, re-timed in alternating rounds against the best hand-picked choice
   and the baseline.

The wall-time budget covers all of it; the candidates are built by the one builder
(:mod:`edgeopt.optimizer.builder`) from the one recipe vocabulary
(:mod:`edgeopt.optimizer.recipes`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .._util.deadline import WRITE_RESERVE_S
from .._util.progress import progress_bar
from ..bench.isa import int8_dot_product, int8_warning
from ..data.feeds import calibration_data, class_labels
from ..device.target import LocalTarget
from ..errors import EdgeoptError
from ..evaluate.runner import check_batch
from .builder import ModelBuilder
from .choose import choose
from .config import OptimizeConfig
from .fallback import fallback, next_step
from .measure import Measurer
from .objective import MAX_IDLE, Objective, TrialFailed
from .pareto import pareto_front
from .qat_step import proposals, qat_step, restore_training
from .recipes import grid_recipes
from .result import OptimizeResult
from .space import Point, default_space
from .stale import fail_stale_trials
from .storage import GRACE_S, check_storage, default_storage, display_url
from .strategies import Strategy, make_strategy, persists
from .study import TrialRecord, open_study, records

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from ..data.samples import SampleSet
    from ..model import Model


@dataclass
class _Run:
    """What the phases share."""

    config: OptimizeConfig
    model: "Model"
    strategy: Strategy
    study: Any
    builder: ModelBuilder
    objective: Objective
    start: float
    deadline: float | None
    notes: list[str]
    machine: dict
    n_eval: int
    n_calibration: int
    storage: str | None
    study_name: str
    clock: Callable[[], float] = time.monotonic
    post: bool = False  # the trials are over: the fallback and qat steps run
    qat_queued: set[str] = dataclasses.field(default_factory=set)  # labels of qat trials enqueued


def optimize(model: "Model", images: "ImageSet | SampleSet", *, config: OptimizeConfig = OptimizeConfig(),
             calibration: "ImageSet | SampleSet | None" = None, out_dir: str | Path | None = None,
             progress: bool = True, trials_only: bool = False, on_ready: Callable[[], None] | None = None,
             on_trials_done: Callable[[], None] | None = None,
             clock: Callable[[], float] = time.monotonic, spent_s: float = 0.0,
             target: LocalTarget | None = None) -> OptimizeResult | None:
    """The fastest model within the user's quality budget, measured on this machine.

    Args:
        model: the original model (never modified); needs a Preprocess for images.
        images: real images (through the model's preprocess), or samples in the model's
            input form (:class:`~edgeopt.data.samples.SampleSet`: audio, several inputs,
            fixed inputs); held out for quality when ``calibration`` is given, else split
            (``config.calibration_fraction`` for calibration). Labels make accuracy part of
            the quality rule.
        calibration: images or samples for calibration and for training pruned models
            (class labels, if any, add cross-entropy to the distillation); the passes
            calibrate single-input models (:func:`edgeopt.data.feeds.calibration_data`).
        out_dir: where a persisting strategy keeps its study (``study.db``) and built-model
            cache (``cache/``); None keeps both in memory (no resume).
        progress: progress bar on stderr with the best trial so far.
        trials_only: run trials on the (existing) study and return None: an extra worker
            process; the process that created the study chooses and reports.
        on_ready: optional callable() once the study exists (start workers here).
        on_trials_done: optional callable() after the trials, before the fallback and the
            final timing (wait for workers here, so they do not disturb it).
        clock: monotonic clock in seconds the budget is counted on (tests inject one).
        spent_s: seconds of the budget already spent before this call (the command's
            start-up and loading: :func:`~edgeopt._util.deadline.command_elapsed_s`).
        target: where candidates are timed and their outputs computed: here (default) or
            a board (:class:`~edgeopt.device.target.DeviceTarget`); built here either way.

    Returns:
        an :class:`~edgeopt.optimizer.result.OptimizeResult` (None with ``trials_only``).

    Raises:
        EdgeoptError: the storage cannot hold the study (checked before any work), images
            for a model without preprocessing, the study exists and ``resume`` is off (or it
            does not exist and resume is on), the baseline cannot run, or the budget ran
            out before it finished.
    """
    start = clock() - spent_s
    storage = storage_url(config, out_dir)
    if storage is not None:
        check_storage(storage, resume=config.resume, default=config.storage is None)
    if calibration is None:
        calibration, held_out = images.split(config.calibration_fraction, seed=0)
    else:
        held_out = images
    calibration_arrays = calibration_data(model, calibration)
    model = check_batch(model, threads=config.threads)
    config, note = clamp_batch(model, config)
    run = _prepare(model, held_out, calibration, calibration_arrays, config, out_dir, storage, start, clock,
                   target or LocalTarget())
    run.notes.extend(note)
    if on_ready is not None:
        on_ready()
    with progress_bar(run.strategy.name, _bar_total(run), enabled=progress) as bar:
        _trials(run, bar)
        if trials_only:
            return None
        if on_trials_done is not None:
            on_trials_done()
        log = _post_steps(run, bar)
    return _finish(run, log)


def storage_url(cfg: OptimizeConfig, out_dir: str | Path | None) -> str | None:
    """Where the study lives: ``cfg.storage``, else ``study.db`` in ``out_dir`` for a
    strategy that persists (:func:`~edgeopt.optimizer.storage.default_storage`), else None
    (memory)."""
    if cfg.storage:
        return cfg.storage
    return default_storage(out_dir) if out_dir is not None and persists(cfg.strategy) else None


def clamp_batch(model: "Model", cfg: OptimizeConfig) -> tuple[OptimizeConfig, list[str]]:
    """``cfg`` at the only batch ``model`` runs at (:attr:`Model.fixed_batch`), with a note
    saying so when that changed the user's batch or the search's batches; else ``cfg``."""
    status = model.batch_status
    batches = cfg.space.batches if cfg.space is not None else (cfg.batch,)
    if status.fixed is None or set(batches) | {cfg.batch} == {status.fixed}:
        return cfg, []
    space = None if cfg.space is None else dataclasses.replace(cfg.space, batches=(status.fixed,))
    asked = ", ".join(map(str, sorted(set(batches) | {cfg.batch})))
    note = (f"{model.name} runs at batch {status.fixed} only ({status.reason}): measured at batch "
            f"{status.fixed}, not {asked}")
    logging.getLogger("edgeopt").warning(note)
    return dataclasses.replace(cfg, batch=status.fixed, space=space), [note]


def _prepare(model: "Model", held_out: "ImageSet | SampleSet", calibration: "ImageSet | SampleSet",
             calibration_arrays: Any, cfg: OptimizeConfig, out_dir: str | Path | None, storage: str | None,
             start: float, clock: Callable[[], float], target: LocalTarget) -> _Run:
    why_not = {b: target.unavailable(b) for b in cfg.backends}
    usable = tuple(b for b in cfg.backends if why_not[b] is None)
    notes = [f"backend {b} left out: {why_not[b]}" for b in cfg.backends if b not in usable]
    if not usable:
        raise EdgeoptError(f"none of the backends {', '.join(cfg.backends)} is installed: pip install 'edgeopt[ort]'")
    space = cfg.space or default_space(cfg.threads, cfg.batch, usable, prune_targets=cfg.targets)
    strategy = make_strategy(cfg.strategy, backends=usable, threads=cfg.threads, batch=cfg.batch,
                             recipes=cfg.recipes or grid_recipes(cfg.targets), space=space,
                             float_layers=cfg.float_layers)
    machine = target.machine()
    if target.parallel > 1:
        notes.append(f"trials measured in parallel, one per {getattr(target, 'kind', '')} board "
                     f"({target.parallel} boards); candidates built here one at a time")
    warning = int8_warning(machine)
    if warning and any(p.startswith("int8") for p in strategy.space.precisions):
        notes.append(warning)
        logging.getLogger("edgeopt").warning(warning)
    out = None if out_dir is None else Path(out_dir)
    if out is not None and strategy.persist and cfg.storage is None:
        out.mkdir(parents=True, exist_ok=True)  # the default study lives in it; the rest makes its own folders
    name = cfg.study_name or f"{model.name}-{model.sha256[:10]}-b{cfg.batch}-t{cfg.threads}"
    study = open_study(storage, name, sampler=strategy.sampler(cfg.seed),
                       n_objectives=3 if cfg.size_objective else 2, resume=cfg.resume)
    if cfg.resume:
        notes.extend(_retry_stale(study))
    study.set_user_attr("machine", machine)
    study.set_user_attr("space", strategy.space.to_dict())
    measurer = Measurer(model, held_out, tolerance=cfg.max_drop, task=cfg.task, task_options=cfg.task_options,
                        min_snr_db=cfg.min_snr_db, threads=cfg.threads, quick_images=cfg.quick_images,
                        seed=cfg.seed, timing=cfg.timing, confidence=cfg.confidence, target=target)
    # Class indices add cross-entropy to the distillation; labels of another form do not.
    builder = ModelBuilder(model, calibration_arrays, class_labels(calibration), train_seconds=cfg.train_seconds,
                           need_agreement=measurer.need_agreement,
                           cache_dir=out / "cache" if out is not None and strategy.persist else None)
    if measurer.too_small:
        # Said before any trial: no candidate can pass, so the run keeps the original.
        notes.append(measurer.too_small)
        logging.getLogger("edgeopt").warning(measurer.too_small)
    deadline = None if cfg.budget is None else start + cfg.budget
    limits = cfg.limits(tolerance=measurer.tolerance, early_stop=strategy.early_stop)
    objective = Objective(builder, measurer, strategy.space, limits,
                          None if deadline is None else deadline - cfg.reserve, clock=clock)
    objective.learn(records(study))
    return _Run(cfg, model, strategy, study, builder, objective, start, deadline, notes, machine,
                len(held_out), len(calibration), None if storage is None else display_url(storage), name, clock)


def _retry_stale(study: Any) -> list[str]:
    """Fail the trials a killed run left running (:func:`~edgeopt.optimizer.stale.fail_stale_trials`)
    and measure each one's point again, once (a point that kills the process every time
    must not kill every resume); a note saying so, or none."""
    stale = fail_stale_trials(study, GRACE_S)
    if not stale:
        return []
    for t in stale:
        if "point" in t.user_attrs and "retry_of" not in t.user_attrs:
            study.enqueue_trial(Point(**t.user_attrs["point"]).params(),
                                user_attrs={"origin": t.user_attrs.get("origin", "sampled"),
                                            "point": t.user_attrs["point"], "retry_of": t.number})
    numbers = ", ".join(str(t.number) for t in stale)
    note = (f"resumed: {len(stale)} trial(s) left running by a run that stopped (killed?) marked failed "
            f"(trial {numbers}); each point is measured again once")
    logging.getLogger("edgeopt").warning(note)
    return [note]


def _bar_total(run: _Run) -> int:
    """Seconds of the budget, or the grid's points (a bar per unit)."""
    budget = run.config.budget
    return int(budget) if budget is not None else len(run.strategy.seed_points()) + 1


def _trials(run: _Run, bar: Any) -> None:
    """Enqueue the strategy's first points, then run trials until it is done or the
    budget for trials ends."""
    done = {r.label for r in records(run.study) if r.state == "complete"}
    queued = 0
    for p, origin in run.strategy.seed_points():
        if p.label not in done:
            run.study.enqueue_trial(p.params(), user_attrs={"origin": origin, "point": p.to_dict()},
                                    skip_if_exists=True)
            queued += 1
    ev = run.objective
    remaining = None if ev.trials_end is None else ev.trials_end - run.clock()
    if remaining is not None and remaining <= 0:
        return
    bar.describe("hand-picked choices")
    # An exhaustive strategy runs exactly its points; a sampled one until the budget ends.
    # One trial per board at once when measuring on several boards of a kind; one here.
    run.study.optimize(ev, n_trials=queued if run.strategy.exhaustive else None, timeout=remaining,
                       callbacks=[_on_trial(run, bar)], catch=(TrialFailed,), gc_after_trial=False,
                       n_jobs=ev.measurer.target.parallel)


def _on_trial(run: _Run, bar: Any) -> Callable[[Any, Any], None]:
    ev = run.objective

    def on_trial(study: Any, trial: Any) -> None:
        if not run.strategy.exhaustive:
            _fallback_early(run, study, trial.number)
            _qat_early(run, study)
        if run.config.budget is not None:
            bar.to(run.clock() - run.start)
        else:
            bar.advance()
        best = ev.best
        if best is not None:
            bar.describe(f"trial {trial.number + 1}; best {best.label} {best.per_image_ms:.2f} ms "
                         f"(drop {best.drop:.1f})")
        if ev.trials_end is not None and run.clock() >= ev.trials_end - ev.eval_cost:
            study.stop()
        elif ev.idle >= MAX_IDLE:
            # A small space is exhausted, the sampler has settled, or nothing new fits
            # in the time left: more trials would measure nothing.
            run.notes.append(f"stopped early: {MAX_IDLE} proposals in a row were points already measured "
                             f"or too slow to build in the time left")
            study.stop()

    return on_trial


def _fallback_early(run: _Run, study: Any, number: int) -> None:
    """Enqueue the fallback's next point right after a fast int8 trial that broke the
    budget (a sampled strategy takes enqueued points before drawing new ones)."""
    if run.objective.measurer.too_small:
        return
    recs = records(study)
    record = next((r for r in recs if r.number == number), None)
    if record is None:
        return
    step = next_step(record, recs, run.strategy.space, max_drop=run.objective.limits.max_drop)
    if step is not None:
        study.enqueue_trial(step.params(), user_attrs={"origin": "fallback", "point": step.to_dict()})


def _qat_early(run: _Run, study: Any) -> None:
    """Enqueue the qat trials a sampled strategy's trials call for as soon as they do
    (:func:`~edgeopt.optimizer.qat_step.proposals`, trained within the trials' time left)."""
    ev = run.objective
    if run.post or not run.config.qat or ev.measurer.too_small:
        return
    left = None if ev.trials_end is None else ev.trials_end - run.clock()
    wanted, _ = proposals(records(study), run.strategy.space, max_drop=ev.limits.max_drop, builder=run.builder,
                          left=left, eval_cost=ev.eval_cost)
    for p in wanted:
        if p.point.label not in run.qat_queued:
            run.qat_queued.add(p.point.label)
            study.enqueue_trial(p.point.params(), user_attrs={"origin": "qat", "point": p.point.to_dict(), **p.attrs})


def _post_steps(run: _Run, bar: Any) -> list[str]:
    """The fallback, then qat, after the trials: their log."""
    run.post = True
    ev = run.objective
    if ev.measurer.too_small:  # then no float layer nor training can make a candidate pass
        return [f"not run: {ev.measurer.too_small}"]
    _drain(run, bar)
    space, max_drop, unit = run.strategy.space, ev.limits.max_drop, ev.measurer.unit
    log = fallback(lambda: records(run.study), lambda p: _run_one(run, p, "fallback", bar), space,
                   max_drop=max_drop, time_left=lambda: _time_left(run), unit=unit)
    restore_training(run.builder, records(run.study))
    return log + qat_step(lambda: records(run.study), lambda p, attrs: _run_one(run, p, "qat", bar, attrs), space,
                          max_drop=max_drop, builder=run.builder, left=lambda: _seconds_left(run),
                          eval_cost=lambda: ev.eval_cost, enabled=run.config.qat, unit=unit)


def _drain(run: _Run, bar: Any) -> None:
    """Run the trials a sampled strategy enqueued (a fallback step, a qat trial) that its
    trials stopped before: else the post-steps' first trial would run one of them instead
    of its own point. Each is checked against the time left like any trial."""
    import optuna

    waiting = [t for t in run.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))]
    if not waiting:
        return
    if run.deadline is not None:
        run.objective.trials_end = run.deadline - run.config.reserve / 2
    run.study.optimize(run.objective, n_trials=len(waiting), callbacks=[_on_trial(run, bar)], catch=(TrialFailed,))


def _time_left(run: _Run) -> bool:
    return run.deadline is None or run.clock() < run.deadline - run.config.reserve / 2


def _seconds_left(run: _Run) -> float | None:
    """Seconds the fallback and qat steps may still take (None: no budget)."""
    return None if run.deadline is None else run.deadline - run.config.reserve / 2 - run.clock()


def _run_one(run: _Run, point: Point, origin: str, bar: Any, attrs: dict | None = None) -> None:
    """Measure one point as a trial of the study (the fallback's or qat's), with those
    extra user attributes."""
    run.study.enqueue_trial(point.params(), user_attrs={"origin": origin, "point": point.to_dict(), **(attrs or {})})
    if run.deadline is not None:
        run.objective.trials_end = run.deadline - run.config.reserve / 2
    run.study.optimize(run.objective, n_trials=1, callbacks=[_on_trial(run, bar)], catch=(TrialFailed,))


def _finish(run: _Run, fallback_log: list[str]) -> OptimizeResult:
    cfg, space = run.config, run.strategy.space
    recs = records(run.study)
    restore_training(run.builder, recs)  # the chosen qat model is the one measured, not trained again
    base_point = Point(backend="ort" if "ort" in space.backends else space.backends[0],
                       threads=cfg.threads, batch=cfg.batch)
    note = f" within the budget of {cfg.budget:.0f} s: give a larger --budget" if cfg.budget else ""
    def left() -> float | None:  # seconds the re-timing may still take, the writing reserve kept
        return None if run.deadline is None else run.deadline - WRITE_RESERVE_S - run.clock()

    choice = choose(recs, base_point, run.builder, run.objective.measurer, budget_note=note,
                    tie_breaker=cfg.tie_breaker, clock=run.clock, time_left=left,
                    may_extend=lambda s: (t := left()) is None or s < t)
    feasible = [r for r in recs if r.feasible and r.duplicate_of is None]
    objectives = [[r.per_image_ms, r.drop] + ([float(r.size_bytes)] if cfg.size_objective else [])
                  for r in feasible]
    m = run.objective.measurer
    return OptimizeResult(
        config=cfg, strategy=run.strategy.name, space=space, model=run.model, trials=recs,
        winner=choice.winner, winner_model=choice.winner_model, hand_picked_best=choice.hand_picked_best,
        baseline=choice.baseline, pareto=pareto_front(feasible, objectives), confirm_ms=choice.confirm_ms,
        speedup_vs_hand_picked=choice.speedup_vs_hand_picked, speedup_vs_baseline=choice.speedup_vs_baseline,
        original_accuracy=m.original_accuracy, baseline_quality=m.baseline_quality, quality_metric=m.metric,
        task=m.task, task_reason=m.task_reason,
        quality_unit=m.unit, tolerance=m.tolerance, n_eval=run.n_eval,
        n_calibration=run.n_calibration, study_name=run.study_name, storage=run.storage or "memory",
        elapsed_s=run.clock() - run.start, fallback=fallback_log, float_layers=_float_layers(run, recs),
        machine=run.machine, isa=int8_dot_product(run.machine.get("flags", [])), notes=run.notes + choice.notes,
        speedup_interval=choice.speedup_interval, finalists=choice.finalists, tie=choice.tie,
        tie_breaker=choice.tie_breaker, decision=choice.decision, confidence=m.confidence,
        min_eval=m.too_small,
    )


def _float_layers(run: _Run, recs: list[TrialRecord]) -> dict[str, list[str]]:
    """{label: node names kept in float} of every complete mixed-precision trial."""
    out = {}
    for r in recs:
        if r.state == "complete" and r.point.float_layers:
            try:
                out[r.label] = list(run.builder.ranking(r.point.recipe)[:r.point.float_layers])
            except EdgeoptError:
                pass
    return out
