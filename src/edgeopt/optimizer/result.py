"""What ``optimize`` found, the same for every strategy: the result object, its JSON
summary (candidates.json) and the deploy record (deploy.json)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..bench.environment import machine_info
from .config import OptimizeConfig
from .deployment import DEPLOY_SCHEMA, runtime_record
from .space import SearchSpace
from .study import TrialRecord

if TYPE_CHECKING:
    from ..model import Model

__all__ = ["DEPLOY_SCHEMA", "OptimizeResult", "deploy_record", "summary"]


@dataclass
class OptimizeResult:
    """Every trial, the choice, and the speedups measured in one run.

    Attributes:
        config: what was asked.
        strategy: "grid" or "search".
        space: the space the points came from.
        model: the original model.
        trials: every trial of the study (including earlier sessions when resumed).
        winner: the chosen trial (the baseline when nothing beats it); its model is
            ``winner_model``.
        hand_picked_best: the fastest feasible hand-picked trial (the baseline if none).
        baseline: the fp32 ONNX Runtime trial at the user's threads and batch.
        pareto: feasible trials on the latency / quality drop (/ size) front.
        confirm_ms: p50 ms per image from the alternating re-timing: {"winner",
            "hand_picked", "baseline"}.
        speedup_vs_hand_picked, speedup_vs_baseline: ratios of those p50s.
        original_accuracy: top-1 accuracy (%) of the original on the held-out images, or None.
        baseline_quality: the original's score against the ground truth of the held-out
            inputs, any task: {"task", "original" (None without ground truth), "unit", "n"}.
        quality_metric: the task metric's name (e.g. "top-1 agreement and accuracy").
        task, task_reason: the task whose evaluator judged quality, and why it was chosen.
        quality_unit: the unit of every trial's drop ("points", "dB", "px", ...).
        tolerance: the budget on the drop, in that unit.
        n_eval, n_calibration: image counts.
        study_name, storage: where the trials live ("memory" when not kept).
        elapsed_s: wall time of the run.
        fallback: what the accuracy-aware fallback did, one line per step.
        float_layers: {trial label: node names kept in float} of mixed-precision trials.
        machine, isa: the environment record and the int8 dot product found (or None).
        notes: warnings and decisions worth reading.
        speedup_interval: 95% interval of speedup_vs_baseline over the re-timing's rounds.
        finalists: the contenders re-timed, fastest first, each with its time over the
            fastest's and that ratio's 95% interval (:class:`~edgeopt.optimizer.choose.Choice`).
        tie: labels of the tied set ([] when the winner was told apart), tie_breaker: the
            rule that chose among it, decision: the verdict line.
        confidence: one-sided confidence of the quality verdicts (None: point estimates).
        min_eval: why the held-out set was too small to show the budget at that
            confidence ("" when it was not).
    """

    config: OptimizeConfig
    strategy: str
    space: SearchSpace
    model: "Model"
    trials: list[TrialRecord]
    winner: TrialRecord
    winner_model: "Model"
    hand_picked_best: TrialRecord
    baseline: TrialRecord
    pareto: list[TrialRecord]
    confirm_ms: dict[str, float]
    speedup_vs_hand_picked: float
    speedup_vs_baseline: float
    original_accuracy: float | None
    quality_metric: str
    task: str
    task_reason: str
    quality_unit: str
    tolerance: float
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
    speedup_interval: tuple[float, float] = (float("nan"), float("nan"))
    finalists: list[dict] = field(default_factory=list)
    tie: list[str] = field(default_factory=list)
    tie_breaker: str = "passes"
    decision: str = ""
    confidence: float | None = None
    min_eval: str = ""
    baseline_quality: dict[str, Any] = field(default_factory=dict)

    @property
    def confirmed_speedup(self) -> float:
        """The chosen model's speedup over the original on ONNX Runtime, from the
        alternating re-timing (= :attr:`speedup_vs_baseline`)."""
        return self.speedup_vs_baseline


def summary(result: OptimizeResult) -> dict[str, Any]:
    """JSON-ready account of a run (the content of candidates.json; the reports and the
    plot read it).

    Keys: strategy, model, model_sha256, study (name, storage), budget_s, elapsed_s,
    objective, task, task_reason, quality_metric (the task metric's name), quality_unit
    (the drop's unit), original_accuracy, baseline_quality, max_drop (the resolved budget on the drop),
    min_snr_db, max_latency_ms, max_size_bytes, batch, threads, n_eval,
    n_calibration, space, machine (ISA flags included), isa_int8 (fast int8 dot product or
    None), winner, hand_picked_best, baseline (labels), confirm_ms, speedup_vs_hand_picked,
    speedup_vs_baseline, speedup_interval ([low, high], 95%), finalists (the contenders
    re-timed: label, confirm_ms, ratio over the fastest, low, high, tied), tie (labels of
    the tied set, [] for a clear winner), tie_breaker, decision (the verdict line),
    confidence (of the quality bounds), eval_too_small ("" or why the held-out set cannot
    show the budget), pareto (trial dicts), trials (every trial, see
    :meth:`TrialRecord.to_dict`), fallback (lines), float_layers ({trial label: node
    names kept in float}), notes. Non-finite interval ends are null.
    """
    cfg = result.config
    return {
        "strategy": result.strategy, "model": result.model.source, "model_sha256": result.model.sha256,
        "study": {"name": result.study_name, "storage": result.storage},
        "budget_s": cfg.budget, "elapsed_s": result.elapsed_s, "objective": cfg.objective,
        "task": result.task, "task_reason": result.task_reason, "quality_metric": result.quality_metric,
        "quality_unit": result.quality_unit, "original_accuracy": result.original_accuracy,
        "baseline_quality": result.baseline_quality,
        "max_drop": result.tolerance, "min_snr_db": cfg.min_snr_db, "max_latency_ms": cfg.max_latency_ms,
        "max_size_bytes": cfg.max_size_bytes, "batch": cfg.batch, "threads": cfg.threads,
        "n_eval": result.n_eval, "n_calibration": result.n_calibration, "space": result.space.to_dict(),
        "machine": result.machine, "isa_int8": result.isa,
        "winner": result.winner.label, "hand_picked_best": result.hand_picked_best.label,
        "baseline": result.baseline.label, "confirm_ms": result.confirm_ms,
        "speedup_vs_hand_picked": result.speedup_vs_hand_picked,
        "speedup_vs_baseline": result.speedup_vs_baseline,
        "speedup_interval": _finite(list(result.speedup_interval)), "finalists": _finite(result.finalists),
        "tie": result.tie, "tie_breaker": result.tie_breaker, "decision": result.decision,
        "confidence": result.confidence, "eval_too_small": result.min_eval,
        "pareto": [t.to_dict() for t in result.pareto],
        "trials": [t.to_dict() for t in result.trials],
        "fallback": result.fallback, "float_layers": result.float_layers, "notes": result.notes,
    }


def deploy_record(result: OptimizeResult, model_file: str) -> dict[str, Any]:
    """The deploy.json content: how to run the chosen model and what it measured.

    Keys: schema, model_file, source, source_sha256, model_sha256, backend, precision,
    recipe, passes, threads, batch, inputs (name, shape at batch 1, dtype, layout),
    outputs, preprocess, labels, latency_ms (min/mean/p50/p90/p99/max at the batch),
    throughput_ips, speedup_vs_original, speedup_vs_hand_picked, hand_picked_best,
    decision (tie: the tied labels, tie_breaker, reason: the verdict line, speedup_interval),
    quality (vs the original fp32), float_layers, optimize (strategy, study, trial),
    machine (with the CPU's ISA flags), conditions (what the machine was doing while the
    winner was timed: :mod:`edgeopt.bench.conditions`; None for a run without them), runtime
    (backend, version and the settings its measured session ran with:
    :func:`~edgeopt.optimizer.deployment.runtime_record`;
    :func:`~edgeopt.optimizer.deployment.load_deployment` applies them).
    """
    w, model, source = result.winner, result.winner_model, result.model
    return {
        "schema": DEPLOY_SCHEMA,
        "model_file": model_file,
        "source": source.source,
        "source_sha256": source.source_sha256,
        "model_sha256": model.sha256,
        "backend": w.point.backend,
        "precision": w.point.precision,
        "recipe": w.point.recipe_name,
        "passes": list(model.passes),
        "threads": w.point.threads,
        "batch": w.point.batch,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype, "layout": s.layout,
                    "batch_axis": s.batch_axis} for s in model.inputs],
        "outputs": model.output_names,
        "preprocess": None if model.preprocess is None else model.preprocess.to_dict(),
        "labels": model.labels,
        "latency_ms": w.attrs.get("latency_stats"),
        "throughput_ips": w.attrs.get("throughput_ips"),
        "speedup_vs_original": result.speedup_vs_baseline,
        "speedup_vs_hand_picked": result.speedup_vs_hand_picked,
        "hand_picked_best": result.hand_picked_best.label,
        "decision": {"tie": result.tie, "tie_breaker": result.tie_breaker, "reason": result.decision,
                     "speedup_interval": _finite(list(result.speedup_interval))},
        "quality": w.quality,
        "float_layers": result.float_layers.get(w.label, []),
        "optimize": {"strategy": result.strategy, "study": result.study_name, "trial": w.number},
        "machine": result.machine or machine_info(),
        "conditions": w.attrs.get("conditions"),
        "runtime": runtime_record(w.point.backend, w.attrs.get("runtime_settings"), model, w.point.threads),
    }


def _finite(x: Any) -> Any:
    """``x`` with non-finite floats (an interval nobody timed) as None, for strict JSON."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_finite(v) for v in x]
    return x
