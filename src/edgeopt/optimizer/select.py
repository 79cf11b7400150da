"""The main job: build candidates, measure each on this machine, reject, choose.

For every recipe x backend: quality against the original fp32 model on held-out real
images (top-1 agreement, cosine, SNR, accuracy when labels exist) and latency with the
bench harness at the user's batch and threads. Candidates outside the quality budget
are rejected with the reason; the fastest of the rest wins. The winner and the fp32
ONNX Runtime baseline are then re-timed in alternating rounds, so the speedup in the
report is a ratio measured in one run, not two numbers taken minutes apart.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..bench.harness import benchmark
from ..bench.isa import int8_warning
from ..bench.environment import machine_info
from ..bench.alternating import alternating_p50
from ..errors import EdgeoptError
from ..data.images import ImageSet
from ..evaluate.metrics import compare
from ..evaluate.runner import predict
from ..model import Model
from .candidates import (BASELINE, DEFAULT_BACKENDS, DEFAULT_PRUNE_TARGETS, DEFAULT_RECIPES, Candidate,
                         Recipe, build_recipes, pruned_recipes)


@dataclass(frozen=True)
class OptimizeConfig:
    """What the user asks of ``optimize``.

    Attributes:
        max_drop: largest allowed quality drop in percentage points: top-1 agreement
            with the original must be >= 100 - max_drop, and accuracy (when labels
            exist) must not fall more than max_drop below the original's.
        min_snr_db: for models that are not classifiers, the least output SNR in dB.
        batch: batch size the latency is measured at.
        threads: intra-op threads for every backend.
        backends: backend names to try.
        recipes: recipes to try; the first must be the unmodified "fp32" baseline.
        prune_targets: MAC fractions to remove with structured pruning + distillation
            (each also followed by NNCF int8); () for none.
        train_seconds: distillation budget of each pruned model, seconds.
        min_runs, min_time_s, max_time_s: per-candidate timing (see bench.harness).
        confirm_rounds: alternating winner/baseline rounds for the final ratio.
        calibration_fraction: share of the images used for calibration when no
            separate calibration set is given; the rest are held out for quality.
    """

    max_drop: float = 1.0
    min_snr_db: float = 20.0
    batch: int = 1
    threads: int = 2
    backends: tuple[str, ...] = DEFAULT_BACKENDS
    recipes: tuple[Recipe, ...] = DEFAULT_RECIPES
    prune_targets: tuple[float, ...] = DEFAULT_PRUNE_TARGETS
    train_seconds: float = 45.0
    min_runs: int = 20
    min_time_s: float = 1.0
    max_time_s: float = 4.0
    confirm_rounds: int = 5
    calibration_fraction: float = 0.3


@dataclass
class OptimizeResult:
    """Every candidate with its measurements, the winner, and the confirmed speedup.

    Attributes:
        candidates: all candidates in recipe x backend order.
        winner: the chosen candidate (the baseline when nothing beats it).
        baseline: the fp32 ONNX Runtime candidate.
        confirmed_speedup: baseline p50 / winner p50 from the alternating re-timing.
        confirm_p50_ms: {"winner": ms, "baseline": ms} from that re-timing.
        original_accuracy: top-1 accuracy (%) of the original on the held-out set, or None.
        n_eval, n_calibration: image counts.
    """

    config: OptimizeConfig
    model: Model
    candidates: list[Candidate]
    winner: Candidate
    baseline: Candidate
    confirmed_speedup: float
    confirm_p50_ms: dict[str, float]
    original_accuracy: float | None
    n_eval: int
    n_calibration: int
    notes: list[str] = field(default_factory=list)


def _reject_reason(cand: Candidate, cfg: OptimizeConfig, task: str, orig_acc: float | None) -> str:
    q = cand.quality
    if task == "classification":
        floor = 100.0 - cfg.max_drop
        if q.top1_agreement < floor:
            return f"top-1 agreement {q.top1_agreement:.1f}% < {floor:.1f}% (--max-drop {cfg.max_drop:g})"
        if orig_acc is not None and q.accuracy is not None and orig_acc - q.accuracy > cfg.max_drop:
            return (f"accuracy {q.accuracy:.1f}% is {orig_acc - q.accuracy:.1f} points below the "
                    f"original's {orig_acc:.1f}% (--max-drop {cfg.max_drop:g})")
    elif q.snr_db < cfg.min_snr_db:
        return f"output SNR {q.snr_db:.1f} dB < {cfg.min_snr_db:g} dB"
    return ""


def optimize(
    model: Model,
    images: ImageSet,
    *,
    config: OptimizeConfig = OptimizeConfig(),
    calibration: ImageSet | None = None,
    progress: bool = True,
) -> OptimizeResult:
    """Find the fastest candidate within the quality budget, measured here.

    Args:
        model: the original model (never modified); needs a Preprocess.
        images: real images; with labels, accuracy is reported and constrained too.
        calibration: separate calibration images; else ``images`` is split
            (``config.calibration_fraction`` for calibration, the rest held out).
        progress: show a progress bar on stderr.

    Returns:
        an :class:`OptimizeResult`; ``winner`` is the baseline when nothing beats it.

    Raises:
        EdgeoptError: the model has no preprocessing, or the baseline cannot run.
    """
    if model.preprocess is None:
        raise EdgeoptError(
            f"{model.name} has no image preprocessing: set model.preprocess (CLI: --mean/--std/--channels)"
        )
    if calibration is None:
        calibration, held_out = images.split(config.calibration_fraction, seed=0)
    else:
        held_out = images
    calib_tensor = calibration.tensor(model.preprocess)

    from .._util.progress import progress_bar

    recipes = config.recipes + pruned_recipes(config.prune_targets, config.train_seconds)
    notes: list[str] = []
    warning = int8_warning(machine_info())
    if warning and any(r.precision == "int8" for r in recipes):
        logging.getLogger("edgeopt").warning(warning)
        notes.append(warning)
    backends = config.backends
    total = len(recipes) + len(recipes) * len(backends) + 1
    with progress_bar("optimize", total, enabled=progress) as bar:
        bar.describe("building fp32 reference")
        reference = predict(model, BASELINE[1], held_out, threads=config.threads)
        orig_acc = None
        if held_out.labels is not None and model.task == "classification":
            orig_acc = compare(reference, reference, labels=held_out.labels).accuracy
        bar.advance()

        def on_step(name: str) -> None:
            bar.describe(f"building {name}")
            bar.advance()

        calib_labels = None if calibration.labels is None else np.asarray(calibration.labels)
        built = build_recipes(model, recipes, calib_tensor, labels=calib_labels, on_step=on_step)
        candidates: list[Candidate] = []
        for recipe in recipes:
            for backend in backends:
                bar.describe(f"measuring {recipe.name}@{backend}")
                cand = Candidate(recipe=recipe, backend=backend)
                got = built[recipe.name]
                if isinstance(got, str):
                    cand.status, cand.reason = "failed", got
                else:
                    cand.model = got
                    _measure(cand, model, held_out, reference, config, orig_acc)
                candidates.append(cand)
                bar.advance()

    baseline = next(c for c in candidates if c.key == BASELINE)
    if baseline.status == "failed":
        raise EdgeoptError(f"the fp32 baseline on ort cannot run: {baseline.reason}")
    accepted = [c for c in candidates if c.status == "accepted"]
    winner = min(accepted, key=lambda c: c.p50_ms)
    speedup, confirm = 1.0, {"winner": baseline.p50_ms, "baseline": baseline.p50_ms}
    if winner is not baseline:
        speedup, confirm = _confirm(winner, baseline, config)
        if speedup < 1.0:
            notes.append(
                f"{winner.label} looked faster in the sweep but the alternating re-timing "
                f"gave {speedup:.2f}x: keeping the original"
            )
            winner = baseline
            speedup, confirm = 1.0, {"winner": baseline.p50_ms, "baseline": baseline.p50_ms}
    if winner is baseline:
        notes.append("no candidate beats the original fp32 model on ONNX Runtime: keeping the original")
    return OptimizeResult(
        config=config, model=model, candidates=candidates, winner=winner, baseline=baseline,
        confirmed_speedup=speedup, confirm_p50_ms=confirm, original_accuracy=orig_acc,
        n_eval=len(held_out), n_calibration=len(calibration), notes=notes,
    )


def _measure(cand: Candidate, original: Model, held_out: ImageSet, reference: np.ndarray,
             cfg: OptimizeConfig, orig_acc: float | None) -> None:
    try:
        outputs = predict(cand.model, cand.backend, held_out, threads=cfg.threads)
    except EdgeoptError as e:
        cand.status, cand.reason = "failed", str(e)
        return
    cand.quality = compare(reference, outputs, labels=held_out.labels, task=original.task)
    cand.bench = benchmark(
        cand.model, cand.backend, batch=cfg.batch, threads=cfg.threads,
        min_runs=cfg.min_runs, min_time_s=cfg.min_time_s, max_time_s=cfg.max_time_s,
    )
    if cand.bench.error:
        cand.status, cand.reason = "failed", cand.bench.error
        return
    reason = _reject_reason(cand, cfg, original.task, orig_acc)
    cand.status, cand.reason = ("rejected", reason) if reason else ("accepted", "")


def _confirm(winner: Candidate, baseline: Candidate, cfg: OptimizeConfig) -> tuple[float, dict[str, float]]:
    """Re-time winner and baseline in alternating rounds and return the p50 ratio."""
    base, win = alternating_p50(
        [(baseline.model, baseline.backend), (winner.model, winner.backend)],
        batch=cfg.batch, threads=cfg.threads, rounds=cfg.confirm_rounds,
        min_runs=max(5, cfg.min_runs // 2), min_time_s=cfg.min_time_s / 2, max_time_s=cfg.max_time_s / 2,
    )
    return base / win, {"winner": win, "baseline": base}


def result_summary(result: OptimizeResult) -> dict[str, Any]:
    """JSON-ready summary of every candidate (for candidates.json and reports)."""
    rows = []
    for c in result.candidates:
        rows.append({
            "recipe": c.recipe.name, "passes": list(c.recipe.passes), "precision": c.recipe.precision,
            "backend": c.backend, "status": c.status, "reason": c.reason,
            "size_bytes": c.size_bytes,
            "latency_ms": None if c.bench is None or c.bench.error else c.bench.stats.to_dict(),
            "speedup_vs_baseline": (result.baseline.p50_ms / c.p50_ms) if c.p50_ms else None,
            "quality": None if c.quality is None else c.quality.to_dict(),
        })
    return {
        "model": result.model.source, "model_sha256": result.model.sha256,
        "batch": result.config.batch, "threads": result.config.threads,
        "max_drop": result.config.max_drop, "n_eval": result.n_eval,
        "n_calibration": result.n_calibration, "original_accuracy": result.original_accuracy,
        "winner": result.winner.label, "baseline": result.baseline.label,
        "confirmed_speedup": result.confirmed_speedup, "confirm_p50_ms": result.confirm_p50_ms,
        "notes": result.notes, "candidates": rows,
    }
