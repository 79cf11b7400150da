"""The optimizer's one measurer: quality against the original, latency, feasibility, and
the interleaved confirmation of the final choice.

Quality is judged on held-out real images against the original fp32 model run on ONNX
Runtime (the reference outputs). One rule, whatever the strategy:

- a classifier must keep top-1 agreement with the original >= 100 - ``max_drop``, and, when
  the images have labels, lose at most ``max_drop`` points of top-1 accuracy; the drop is
  the larger of the two losses, in points;
- another model must keep an output SNR of at least ``min_snr_db``; the drop is the dB
  below that floor.

Latency comes from the bench harness (warm-up excluded, adaptive repetitions, p50/p90) at
the point's backend, threads and batch. The confirmation re-times the finalists in
alternating rounds (:func:`edgeopt.bench.alternating.alternating_p50`), so the speedups
reported are ratios measured in one run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..bench.alternating import alternating_p50
from ..bench.harness import BenchResult, benchmark
from ..evaluate.metrics import compare
from ..evaluate.runner import predict

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from ..model import Model
    from .space import Point

METRICS = ("accuracy", "agreement", "snr")


@dataclass(frozen=True)
class QualityVerdict:
    """The quality of one candidate against the original.

    Attributes:
        drop: the quality drop (points of accuracy/agreement, or dB below the SNR floor).
        quality: the :class:`~edgeopt.evaluate.metrics.QualityReport` as a dict.
        reason: why the drop breaks the budget, in words ("" when within it).
    """

    drop: float
    quality: dict
    reason: str


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
    """Measures candidates against the original on the held-out images.

    Args:
        model: the original model (it has a preprocess).
        held_out: the held-out images; their labels, when present and the model is a
            classifier, make accuracy part of the quality rule.
        max_drop: the quality budget in points (or dB for non-classifiers).
        min_snr_db: the SNR floor of non-classifiers, dB.
        threads: threads of the reference run on ONNX Runtime.
        quick_images: held-out images of the cheap early quality check.
        seed: seed of the random choice of those images.
        timing: the latency measurement settings.

    Raises:
        EdgeoptError: the original cannot run on ONNX Runtime, or the images do not fit it.
    """

    def __init__(self, model: "Model", held_out: "ImageSet", *, max_drop: float, min_snr_db: float = 20.0,
                 threads: int = 2, quick_images: int = 32, seed: int = 0, timing: Timing = Timing()) -> None:
        self.model, self.held_out, self.max_drop, self.min_snr_db = model, held_out, max_drop, min_snr_db
        self.timing = timing
        self.reference = predict(model, "ort", held_out, threads=threads)
        self.classifier = model.task == "classification"
        self.labels = None
        self.original_accuracy = None
        if held_out.labels is not None and self.classifier:
            self.labels = np.asarray(held_out.labels)
            self.original_accuracy = compare(self.reference, self.reference, labels=self.labels).accuracy
        self.metric = ("accuracy" if self.original_accuracy is not None else
                       "agreement" if self.classifier else "snr")
        # A random subset, so an ordered set (say, one source after another) is sampled evenly.
        n = min(quick_images, len(held_out))
        self.quick_idx = np.sort(np.random.default_rng(seed).permutation(len(held_out))[:n])
        self.quick = held_out.subset(self.quick_idx)

    # quality ------------------------------------------------------------------------------
    def outputs(self, model: "Model", point: "Point", *, quick: bool = False) -> np.ndarray:
        """The candidate's first output on the held-out images (or the quick subset)."""
        return predict(model, point.backend, self.quick if quick else self.held_out, threads=point.threads)

    def quality(self, outputs: np.ndarray) -> QualityVerdict:
        """The quality verdict of outputs on all held-out images (see the module docstring)."""
        q = compare(self.reference, outputs, labels=self.labels, task=self.model.task)
        if self.metric == "snr":
            drop = max(0.0, self.min_snr_db - q.snr_db)
            reason = f"output SNR {q.snr_db:.1f} dB < {self.min_snr_db:g} dB" if drop > 0 else ""
            return QualityVerdict(drop, q.to_dict(), reason)
        floor = 100.0 - self.max_drop
        losses = [(100.0 - q.top1_agreement,
                   f"top-1 agreement {q.top1_agreement:.1f}% < {floor:.1f}% (--max-drop {self.max_drop:g})")]
        if self.metric == "accuracy":
            lost = self.original_accuracy - q.accuracy
            losses.append((lost, f"accuracy {q.accuracy:.1f}% is {lost:.1f} points below the original's "
                                 f"{self.original_accuracy:.1f}% (--max-drop {self.max_drop:g})"))
        drop = max(loss for loss, _ in losses)
        reason = "; ".join(why for loss, why in losses if loss > self.max_drop)
        return QualityVerdict(drop, q.to_dict(), reason)

    def hopeless(self, quick_outputs: np.ndarray) -> str:
        """Why the quick subset already proves the budget broken on the whole set ("" if not).

        Wrong answers on the subset are wrong answers on the whole set too, so when the
        subset's errors beyond what the original gets wrong on the whole set exceed the
        allowed count, no result on the other images can save the candidate.
        """
        if self.metric == "snr":
            return ""
        n_all, n = len(self.held_out), len(quick_outputs)
        cand = quick_outputs.argmax(1)
        excess = int((cand != self.reference[self.quick_idx].argmax(1)).sum())
        if self.metric == "accuracy":
            wrong = int((cand != self.labels[self.quick_idx]).sum())
            excess = max(excess, wrong - int((self.reference.argmax(1) != self.labels).sum()))
        if 100.0 * excess / n_all > self.max_drop:
            return (f"hopeless: {excess} more wrong answers on {n} of the {n_all} held-out images "
                    f"already make a drop of {100.0 * excess / n_all:.1f} points > {self.max_drop:g}")
        return ""

    # latency ------------------------------------------------------------------------------
    def latency(self, model: "Model", point: "Point", *, short: bool = False) -> BenchResult:
        """The bench harness's result at the point's backend, threads and batch: the full
        measurement, or a short one (5 runs, 0.2-1 s) for the early check."""
        t = self.timing
        runs = (5, 0.2, 1.0) if short else (t.min_runs, t.min_time_s, t.max_time_s)
        return benchmark(model, point.backend, batch=point.batch, threads=point.threads,
                         min_runs=runs[0], min_time_s=runs[1], max_time_s=runs[2])

    def confirm(self, entries: Sequence[tuple["Model", "Point"]]) -> list[float]:
        """p50 latency per image (ms) of each (model, point), re-timed in alternating
        rounds in this one run; nan for an entry that failed."""
        t = self.timing
        p50 = alternating_p50([(m, p.backend, p.threads, p.batch) for m, p in entries], rounds=t.confirm_rounds,
                              min_runs=max(5, t.min_runs // 2), min_time_s=t.min_time_s / 2,
                              max_time_s=t.max_time_s / 2)
        return [v / p.batch for v, (_, p) in zip(p50, entries)]


def constraint_values(drop: float, latency_ms: float, size_bytes: int, *, max_drop: float,
                      max_latency_ms: float | None, max_size_bytes: int | None) -> list[float]:
    """The three constraint values Optuna reads (<= 0: satisfied): quality, latency, size;
    an absent limit is always satisfied (-1)."""
    return [drop - max_drop,
            -1.0 if max_latency_ms is None else latency_ms - max_latency_ms,
            -1.0 if max_size_bytes is None else float(size_bytes - max_size_bytes)]


def measured_attrs(bench: BenchResult, verdict: QualityVerdict, model: "Model", point: "Point",
                   objective: str) -> dict[str, Any]:
    """The user attributes of a fully measured trial."""
    stats = bench.stats
    latency = stats.p50 if objective == "p50" else stats.p90
    return {"p50_ms": stats.p50, "p90_ms": stats.p90, "latency_ms": latency, "per_image_ms": latency / point.batch,
            "size_bytes": model.size_bytes, "drop": verdict.drop, "quality": verdict.quality,
            "quality_reason": verdict.reason, "latency_stats": stats.to_dict(),
            "throughput_ips": bench.throughput, "passes": list(model.passes)}
