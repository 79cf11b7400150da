"""The upper confidence bound of a task metric's drop that is not a mean over samples.

mAP, SNR over every output, mean IoU, embedding agreement: the drop is computed from all
N held-out samples at once, so there is no per-sample value to average. Its bound is a
percentile bootstrap over samples all the same (Efron & Tibshirani, "An Introduction to
the Bootstrap", 1993, ch. 6 and 13): draw N sample indices with replacement, score the
rows of the original's and the candidate's outputs (and the labels) at those indices with
the task's own evaluator, and take the ``confidence`` percentile of the drops. Each
resample costs one evaluator call (decoding, NMS and pycocotools for a detector), so the
number of resamples is what fits :data:`TIME_CAP_S` at the measured cost of the full
score, at most :data:`RESAMPLES`; when fewer than :data:`MIN_RESAMPLES` fit, or the
outputs or labels have no per-sample rows to draw, the verdict stays on the point
estimate and says why.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

RESAMPLES = 200
"""Resamples when time allows (the 95th percentile of 200 draws moves by ~1 draw's worth)."""
MIN_RESAMPLES = 50
"""Fewer resamples than this give no usable 95th percentile: the point estimate is kept."""
TIME_CAP_S = 10.0
"""Seconds of evaluator calls one candidate's bound may take."""


@dataclass(frozen=True)
class DropBound:
    """The bootstrap bound of a drop, or why there is none.

    Attributes:
        bound: one-sided upper bound of the drop, in the drop's unit (None: not bounded).
        resamples: resamples drawn (0 when not bounded).
        note: why the point estimate was kept ("" when bounded).
    """

    bound: float | None
    resamples: int
    note: str = ""


def bootstrap_drop(drop_of: Callable[[np.ndarray], float], reference: Sequence[np.ndarray],
                   candidate: Sequence[np.ndarray], labels: Any, *, score_s: float, confidence: float,
                   seed: int = 0, time_cap_s: float = TIME_CAP_S,
                   clock: Callable[[], float] = time.perf_counter) -> DropBound:
    """Upper ``confidence`` bound of the drop, over resamples of the N samples.

    Args:
        drop_of: indices (int64, shape (N,)) -> the drop scored on those rows
            (see :func:`rows_scorer`).
        reference, candidate: the outputs, one array per graph output, each (N, ...).
        labels: ground truth for the N samples or None (only checked for rows here).
        score_s: measured seconds of one full score (sets how many resamples fit).
        confidence: one-sided level, e.g. 0.95.
        seed: of the index draws (the bound is reproducible).
        time_cap_s: seconds the resamples may take; the loop also stops when they have
            (``clock``, injected by tests).

    Returns:
        a :class:`DropBound`.
    """
    n = _rows(reference, candidate, labels)
    if isinstance(n, str):
        return DropBound(None, 0, n)
    fits = int(time_cap_s / max(score_s, 1e-6))
    if fits < MIN_RESAMPLES:
        return DropBound(None, 0, f"point estimate: one score takes {score_s:.2f} s, so {MIN_RESAMPLES} "
                                  f"resamples would exceed {time_cap_s:g} s")
    rng = np.random.default_rng(seed)
    start, drops = clock(), []
    for _ in range(min(RESAMPLES, fits)):
        drops.append(float(drop_of(rng.integers(0, n, n))))
        if clock() - start >= time_cap_s:
            break
    if len(drops) < MIN_RESAMPLES:
        return DropBound(None, 0, f"point estimate: only {len(drops)} resamples fit {time_cap_s:g} s")
    return DropBound(float(np.percentile(drops, 100 * confidence)), len(drops))


def rows_scorer(score: Callable[..., Any], reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
                labels: Any) -> Callable[[np.ndarray], float]:
    """``idx -> score(reference rows, candidate rows, label rows).drop`` for :func:`bootstrap_drop`."""
    def drop_of(idx: np.ndarray) -> float:
        return score([a[idx] for a in reference], [a[idx] for a in candidate], take_rows(labels, idx)).drop
    return drop_of


def take_rows(labels: Any, idx: np.ndarray) -> Any:
    """The labels of samples ``idx``: None stays None, an array is indexed on axis 0, a
    list or tuple gives a list of its items."""
    if labels is None:
        return None
    if isinstance(labels, np.ndarray):
        return labels[idx]
    return [labels[i] for i in idx]


def _rows(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray], labels: Any) -> int | str:
    """N, the samples every output and the labels have one row each for; else why not."""
    arrays = [np.asarray(a) for a in (*reference, *candidate)]
    if not arrays or any(a.ndim == 0 for a in arrays):
        return "point estimate: an output has no per-sample axis to resample"
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        return "point estimate: the outputs do not have one row per sample"
    if labels is not None and not (isinstance(labels, (np.ndarray, list, tuple)) and len(labels) == n):
        return "point estimate: the labels are not one per sample"
    if n < 2:
        return "point estimate: one sample cannot be resampled"
    return n
