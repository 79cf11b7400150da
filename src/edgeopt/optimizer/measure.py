"""The optimizer's one measurer: quality against the original, latency, feasibility, and
the interleaved confirmation of the final choice.

Quality is judged on held-out inputs (images through the model's preprocess, or samples
in its input form: :class:`~edgeopt.data.samples.SampleSet`) against the original fp32 model run on ONNX Runtime
(the reference outputs), by the task's evaluator (:mod:`edgeopt.evaluate.tasks`): the task
given, or the one inferred from the model's outputs (every output compared when none is
recognised). One rule, whatever the strategy: a candidate's ``drop`` in the task metric must
stay within the tolerance (``--max-drop`` / ``--metric-tolerance``, else the task's
default: 1 point of top-1 agreement/accuracy for a classifier, 1 dB of SNR below 20 dB for
every output, ...). The drop judged is its one-sided 95% upper bound
(:mod:`edgeopt.optimizer.confidence`): for a classifier 100 - the Wilson lower bound of
top-1 agreement (accuracy can only be lost on images whose answer changed, so that bound
covers accuracy too), for a drop that is a mean over samples (the task score's
``per_sample``: landmark error, CER) a bootstrap bound over samples; for a drop computed
from all samples at once (mAP, SNR, segmentation, embeddings) the task's own score is
recomputed on resamples of the samples (:mod:`edgeopt.optimizer.task_bootstrap`, as many
as fit 10 s; when none fit, the point estimate and a ``bound_note`` saying why). A
held-out set too small for any classifier to pass so is reported before measuring.

Latency comes from the bench harness (warm-up excluded, adaptive repetitions, p50/p90) at
the point's backend, threads and batch. The confirmation re-times the finalists in
alternating rounds (:func:`edgeopt.bench.alternating.alternating_rounds`), so the speedups
reported are ratios measured in one run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..bench.harness import BenchResult
from ..bench.stats import percentile
from ..evaluate import tasks
from ..evaluate.runner import predict_outputs
from ..evaluate.tasks.infer import TaskGuess, infer_task

from ..data.images import ImageSet
from ..device.target import LocalTarget, as_samples
from .confidence import CONFIDENCE, bootstrap_upper, too_small, wilson_lower
from .task_bootstrap import bootstrap_drop, rows_scorer

if TYPE_CHECKING:
    from ..data.samples import SampleSet
    from ..model import Model
    from .space import Point

@dataclass(frozen=True)
class QualityVerdict:
    """The quality of one candidate against the original.

    Attributes:
        drop: the quality drop in the task metric's drop unit.
        quality: the :class:`~edgeopt.evaluate.tasks.TaskScore` as a dict.
        reason: why the drop breaks the budget, in words ("" when within it).
        drop_bound: the drop's one-sided upper confidence bound, which the budget is
            checked against (None: the point estimate is, e.g. a task without a bound).
    """

    drop: float
    quality: dict
    reason: str
    drop_bound: float | None = None

    @property
    def judged(self) -> float:
        """The drop the budget is checked against: the bound when there is one."""
        return self.drop if self.drop_bound is None else self.drop_bound


@dataclass(frozen=True)
class Timing:
    """How long and how often each candidate is timed (see :func:`edgeopt.bench.harness.benchmark`).

    Attributes:
        min_runs, min_time_s, max_time_s: the full measurement of a candidate.
        confirm_rounds: alternating rounds of the final re-timing (each round at half the
            full measurement's runs and times).
    """

    min_runs: int = 20
    min_time_s: float = 1.0
    max_time_s: float = 4.0
    confirm_rounds: int = 5


class Measurer:
    """Measures candidates against the original on the held-out inputs.

    Args:
        model: the original model (with a preprocess for images).
        held_out: the held-out images or samples; for a classifier their labels (when
            present) make accuracy part of the quality rule.
        tolerance: the budget on the drop, in the task metric's drop unit (None: the
            task's default).
        task: the task's name (None: inferred from the model, see
            :func:`edgeopt.evaluate.tasks.infer.infer_task`).
        task_options: options of the task's evaluator.
        min_snr_db: the SNR floor of the every-output evaluator, dB.
        threads: threads of the reference run on ONNX Runtime.
        quick_images: held-out images or samples of the cheap early quality check.
        seed: seed of the random choice of those.
        timing: the latency measurement settings.
        confidence: one-sided confidence of the quality verdict (None: point estimates).
        target: where candidates are timed and their outputs computed (default here; a
            board: :class:`~edgeopt.device.target.DeviceTarget`). The reference outputs
            are always the original's on ONNX Runtime here.

    Attributes:
        too_small: why the held-out set cannot show the budget at that confidence ("" when
            it can), known before any candidate is measured.

    Raises:
        EdgeoptError: unknown task, the original cannot run on ONNX Runtime, or the images
            or samples do not fit it.
    """

    def __init__(self, model: "Model", held_out: "ImageSet | SampleSet", *, tolerance: float | None = None,
                 task: str | None = None, task_options: dict | None = None, min_snr_db: float = 20.0,
                 threads: int = 2, quick_images: int = 32, seed: int = 0, timing: Timing = Timing(),
                 confidence: float | None = CONFIDENCE, target: LocalTarget | None = None) -> None:
        self.model, self.held_out, self.timing, self.confidence = model, held_out, timing, confidence
        self.target = target or LocalTarget()
        guess = infer_task(model) if task is None else TaskGuess(tasks.canonical(task), "given (--task)")
        self.task, self.task_reason = guess.task, guess.reason
        options = dict(task_options or {})
        if self.task == "outputs":
            options.setdefault("snr_floor_db", min_snr_db)
        self.evaluator = tasks.make(self.task, model, options)
        self.tolerance = self.evaluator.default_tolerance if tolerance is None else float(tolerance)
        self.inputs = model_inputs(model, held_out)
        self.reference = predict_outputs(model, "ort", self.inputs, threads=threads)
        self.labels = task_labels(held_out, self.task)
        itself = self.evaluator.score(self.reference, self.reference, self.labels)
        self.metric, self.unit = itself.metric, itself.drop_unit
        self.original_accuracy = itself.original if self.task == "classify" else None
        self.too_small = "" if not self._bounded else too_small(len(held_out), self.tolerance, confidence,
                                                                 "images" if isinstance(held_out, ImageSet) else "samples")
        self.baseline_quality = {"task": self.task, "original": itself.original, "unit": itself.unit,
                                 "n": len(held_out)}  # the original against the ground truth (None: none given)
        # A random subset, so an ordered set (say, one source after another) is sampled evenly.
        n = min(quick_images, len(held_out))
        self.quick_idx = np.sort(np.random.default_rng(seed).permutation(len(held_out))[:n])
        self.quick = held_out.subset(self.quick_idx)
        self._quick_inputs = self.inputs.subset(self.quick_idx)

    # quality ------------------------------------------------------------------------------
    def outputs(self, model: "Model", point: "Point", *, quick: bool = False) -> list[np.ndarray]:
        """The candidate's outputs on the held-out images (or the quick subset)."""
        return self.target.outputs(model, point.backend, self._quick_inputs if quick else self.inputs,
                                   threads=point.threads)

    def quality(self, outputs: list[np.ndarray], *, exact: bool = False) -> QualityVerdict:
        """The quality verdict of outputs on all held-out images (see the module docstring).

        Args:
            exact: the outputs are the original's own (the reference model on ONNX
                Runtime): its agreement is 100% by construction, not a sample estimate,
                so no bound is applied.
        """
        start = time.perf_counter()
        score = self.evaluator.score(self.reference, outputs, self.labels)
        score_s = time.perf_counter() - start
        reason = self.evaluator.explain(score, self.tolerance)
        quality = score.to_dict()
        n, conf = len(self.held_out), self.confidence
        if not conf or exact:
            return QualityVerdict(score.drop, quality, reason)
        if self.task == "classify":
            agreement = score.details["top1_agreement"]
            lower = 100.0 * wilson_lower(round(agreement * n / 100.0), n, conf)
            bound = max(score.drop, 100.0 - lower)
            quality["top1_agreement_lower"] = lower
            why = (f"top-1 agreement {agreement:.1f}% on {n} samples has a {100 * conf:g}% lower bound of "
                   f"{lower:.1f}% < {100 - self.tolerance:.1f}% (--max-drop {self.tolerance:g})")
        else:
            if score.per_sample is not None:
                bound = max(score.drop, bootstrap_upper(score.per_sample, confidence=conf))
            else:  # a drop computed from all samples at once (mAP, SNR): the task's score resampled
                boot = bootstrap_drop(rows_scorer(self.evaluator.score, self.reference, outputs, self.labels),
                                      self.reference, outputs, self.labels, score_s=score_s, confidence=conf)
                if boot.bound is None:
                    quality["bound_note"] = boot.note
                    return QualityVerdict(score.drop, quality, reason)
                bound = max(score.drop, boot.bound)
                quality["bound_resamples"] = boot.resamples
            why = (f"{score.metric} drop {score.drop:.3g} {self.unit} on {n} samples has a {100 * conf:g}% upper "
                   f"bound of {bound:.3g} > {self.tolerance:g} (--metric-tolerance)")
        quality.update(drop_bound=bound, confidence=conf)
        return QualityVerdict(score.drop, quality, reason or (why if bound > self.tolerance else ""), bound)

    @property
    def need_agreement(self) -> float | None:
        """Top-1 agreement (%) with the original a classifier candidate needs at least
        (100 - the tolerance in points; its confidence bound must clear it too); None for
        other tasks, whose drop is not in points of agreement."""
        return 100.0 - self.tolerance if self.task == "classify" else None

    @property
    def _bounded(self) -> bool:
        """Whether verdicts use the rate's confidence bound (a classifier, confidence on)."""
        return self.task == "classify" and bool(self.confidence)

    def hopeless(self, quick_outputs: list[np.ndarray]) -> str:
        """Why the quick subset already proves the budget broken on the whole set ("" if
        not, or when the task's evaluator cannot tell from a subset)."""
        return self.evaluator.hopeless(self.reference, quick_outputs, self.quick_idx, self.labels, self.tolerance)

    # latency ------------------------------------------------------------------------------
    def latency(self, model: "Model", point: "Point", *, short: bool = False) -> BenchResult:
        """The bench harness's result at the point's backend, threads and batch: the full
        measurement, or a short one (5 runs, 0.2-1 s) for the early check."""
        t = self.timing
        runs = (5, 0.2, 1.0) if short else (t.min_runs, t.min_time_s, t.max_time_s)
        return self.target.benchmark(model, point.backend, batch=point.batch, threads=point.threads,
                                     min_runs=runs[0], min_time_s=runs[1], max_time_s=runs[2])

    def confirm(self, entries: Sequence[tuple["Model", "Point"]], budget_s: float | None = None) -> list[list[float]]:
        """Per-round p50 latency per image (ms) of each (model, point), re-timed in
        alternating rounds in this one run (:func:`edgeopt.bench.alternating.alternating_rounds`);
        an empty list for an entry that failed.

        ``budget_s``: seconds the whole re-timing may take (None: no limit); each
        entry's round is capped at its even share (it still gets the harness's floor of
        3 runs, so a spent budget costs 3 runs per entry and round)."""
        t = self.timing
        cap = t.max_time_s / 2
        if budget_s is not None:
            cap = min(cap, max(budget_s, 0.0) / (t.confirm_rounds * max(len(entries), 1)))
        rounds = self.target.rounds([(m, p.backend, p.threads, p.batch) for m, p in entries],
                                    rounds=t.confirm_rounds, min_runs=max(5, t.min_runs // 2),
                                    min_time_s=min(t.min_time_s / 2, cap), max_time_s=cap)
        return [[] if r is None else [percentile(one, 50) / p.batch for one in r] for r, (_, p) in zip(rounds, entries)]


PREPROCESSED_BYTES = 512 * 2**20
"""Largest held-out image set, as model inputs (bytes), kept preprocessed in memory."""


def model_inputs(model: "Model", held_out: "ImageSet | SampleSet") -> "ImageSet | SampleSet":
    """The held-out images through the model's preprocess once, as samples, when they fit
    in :data:`PREPROCESSED_BYTES` (else the images, preprocessed at every use; samples as
    they are). Every candidate keeps the original's preprocess and input, so each
    measurement would repeat the same work: for the demonstration's 516 images 1.8 s of a
    2.5 s measurement of fp32 on ONNX Runtime (the outputs are identical)."""
    if not isinstance(held_out, ImageSet) or model.preprocess is None or len(model.inputs) != 1:
        return held_out
    spec = model.inputs[0]
    per_image = int(np.prod(spec.shape[1:])) * np.dtype(spec.dtype).itemsize
    return as_samples(model, held_out) if len(held_out) * per_image <= PREPROCESSED_BYTES else held_out


def task_labels(data: Any, task: str) -> Any:
    """The ground truth a task's evaluator reads: class indices for a classifier, else an
    image set's targets (true texts, boxes, coordinates) or a sample set's labels (already
    in the task's form), or None."""
    if task == "classify":
        return None if data.labels is None else np.asarray(data.labels)
    if isinstance(data, ImageSet):
        return data.targets
    return data.labels


def constraint_values(drop: float, latency_ms: float, size_bytes: int, *, max_drop: float,
                      max_latency_ms: float | None, max_size_bytes: int | None) -> list[float]:
    """The three constraint values Optuna reads (<= 0: satisfied): quality, latency, size;
    an absent limit is always satisfied (-1)."""
    return [drop - max_drop,
            -1.0 if max_latency_ms is None else latency_ms - max_latency_ms,
            -1.0 if max_size_bytes is None else float(size_bytes - max_size_bytes)]


def measured_attrs(bench: BenchResult, verdict: QualityVerdict, model: "Model", point: "Point",
                   objective: str) -> dict[str, Any]:
    """The user attributes of a fully measured trial (``conditions``: what the machine was
    doing while it was timed, :mod:`edgeopt.bench.conditions`; ``device``: the board that
    timed it, None here)."""
    stats = bench.stats
    latency = stats.p50 if objective == "p50" else stats.p90
    return {"p50_ms": stats.p50, "p90_ms": stats.p90, "latency_ms": latency, "per_image_ms": latency / point.batch,
            "size_bytes": model.size_bytes, "drop": verdict.drop, "drop_bound": verdict.drop_bound,
            "quality": verdict.quality,
            "quality_reason": verdict.reason, "latency_stats": stats.to_dict(),
            "throughput_ips": bench.throughput, "passes": list(model.passes),
            "conditions": bench.conditions, "device": bench.machine.get("device"),
            "runtime_settings": bench.settings}
