"""The default evaluator: every output against the original's, with no task knowledge.

Per output: cosine similarity of the flattened per-sample values, SNR (dB, the
signal-to-quantization-noise ratio; formulas in :mod:`edgeopt.evaluate.metrics`), the
largest absolute error and, where the output is a score vector (N, K) with K >= 2, top-1
and top-5 agreement. The budget applies to the worst output: the drop is how many dB its
SNR falls below the floor (``snr_floor_db``, 20 dB by default).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..metrics import cosine_similarity, max_abs_error, snr_db
from .base import Evaluator, TaskScore, check_outputs

DEFAULT_FLOOR_DB = 20.0


def topk_agreement(ref: np.ndarray, cand: np.ndarray, k: int) -> float:
    """% of rows whose original top-1 class is among the candidate's top ``k``; (N, K) arrays."""
    r, c = ref.reshape(ref.shape[0], -1), cand.reshape(cand.shape[0], -1)
    k = min(k, c.shape[1])
    top = np.argpartition(-c, k - 1, axis=1)[:, :k]
    return float(100.0 * np.mean((top == r.argmax(1)[:, None]).any(axis=1)))


def is_score_vector(a: np.ndarray) -> bool:
    """(N, K) with K >= 2, or (N, K, 1, 1): one score per class and sample."""
    shape = [d for d in a.shape[1:] if d != 1]
    return len(shape) == 1 and shape[0] >= 2


def output_stats(names: Sequence[str], ref: Sequence[np.ndarray], cand: Sequence[np.ndarray]) -> list[dict]:
    """Per output: name, shape, cosine, snr_db, max_abs_error (and top1/top5 agreement %
    for score vectors)."""
    rows = []
    for name, r, c in zip(names, ref, cand):
        row = {"output": name, "shape": list(r.shape[1:]), "cosine": cosine_similarity(r, c),
               "snr_db": snr_db(r, c), "max_abs_error": max_abs_error(r, c)}
        if is_score_vector(r):
            row["top1_agreement"] = topk_agreement(r, c, 1)
            row["top5_agreement"] = topk_agreement(r, c, 5)
        rows.append(row)
    return rows


class OutputsEvaluator(Evaluator):
    """Every output's similarity to the original's; the worst output decides.

    Options:
        snr_floor_db: the SNR (dB) every output should keep (default 20).
    """

    task = "outputs"
    default_tolerance = 1.0
    summary = "every output against the original: cosine, SNR, top-k agreement; worst output's SNR decides"

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        floor = float(self.options.get("snr_floor_db", DEFAULT_FLOOR_DB))
        stats = output_stats(self.model.output_names, ref, cand)
        worst = min(stats, key=lambda s: s["snr_db"])
        return TaskScore(task=self.task, metric=f"worst-output SNR (floor {floor:g} dB)", unit="dB",
                         value=worst["snr_db"], drop=max(0.0, floor - worst["snr_db"]), drop_unit="dB",
                         details={"worst_output": worst["output"], "outputs": stats,
                                  "cosine": min(s["cosine"] for s in stats)})
