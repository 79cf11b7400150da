"""The bootstrap bound of a drop computed from all samples at once (mAP, SNR, IoU)."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt._util.deadline import FakeClock
from edgeopt.optimizer.task_bootstrap import MIN_RESAMPLES, RESAMPLES, bootstrap_drop, rows_scorer, take_rows


class _Score:
    """drop = 100 x the share of samples whose candidate row differs from the reference's."""

    def __init__(self):
        self.calls = 0
        self.labels_seen = []

    def __call__(self, reference, candidate, labels=None):
        self.calls += 1
        self.labels_seen.append(labels)
        changed = np.any(reference[0] != candidate[0], axis=1)
        return type("S", (), {"drop": 100.0 * float(changed.mean())})()


def _outputs(n=400, flipped=8, seed=0):
    rng = np.random.default_rng(seed)
    ref = rng.normal(size=(n, 3)).astype(np.float32)
    cand = ref.copy()
    cand[rng.choice(n, flipped, replace=False)] += 1.0
    return [ref], [cand]


def test_the_bound_sits_above_the_point_estimate_as_a_binomial_would() -> None:
    ref, cand = _outputs()  # 8 of 400 samples changed: a 2.0-point drop
    score = _Score()
    b = bootstrap_drop(rows_scorer(score, ref, cand, None), ref, cand, None, score_s=0.001, confidence=0.95)
    assert b.resamples == RESAMPLES and score.calls == RESAMPLES and b.note == ""
    # a binomial's one-sided 95% bound for 8/400 is ~3.3 points; the bootstrap's is close to it
    assert 2.6 < b.bound < 3.6
    again = bootstrap_drop(rows_scorer(_Score(), ref, cand, None), ref, cand, None, score_s=0.001, confidence=0.95)
    assert again.bound == b.bound  # seeded: the same verdict every time


def test_labels_are_resampled_with_their_rows() -> None:
    ref, cand = _outputs(n=5, flipped=1)
    labels = ["a", "b", "c", "d", "e"]
    score = _Score()
    bootstrap_drop(rows_scorer(score, ref, cand, labels), ref, cand, labels, score_s=0.001, confidence=0.95)
    assert all(len(seen) == 5 and set(seen) <= set(labels) for seen in score.labels_seen)
    assert take_rows(np.arange(10) * 2, np.array([3, 3, 1])).tolist() == [6, 6, 2]
    assert take_rows(None, np.array([0])) is None


def test_a_slow_score_keeps_the_point_estimate_and_says_why() -> None:
    ref, cand = _outputs()
    score = _Score()
    b = bootstrap_drop(rows_scorer(score, ref, cand, None), ref, cand, None, score_s=0.5, confidence=0.95,
                       time_cap_s=10.0)
    assert b.bound is None and score.calls == 0
    assert b.note == f"point estimate: one score takes 0.50 s, so {MIN_RESAMPLES} resamples would exceed 10 s"


def test_resamples_stop_at_the_time_cap_on_the_clock() -> None:
    ref, cand = _outputs()
    clock = FakeClock()

    def slow(idx):  # the score was measured at 0.01 s but each resample takes 0.1 s
        clock.advance(0.1)
        return 1.0
    b = bootstrap_drop(slow, ref, cand, None, score_s=0.01, confidence=0.95, time_cap_s=3.0, clock=clock)
    assert b.bound is None and b.note == "point estimate: only 30 resamples fit 3 s"


@pytest.mark.parametrize("reference, candidate, labels, why", [
    ([np.zeros((4, 2))], [np.zeros((3, 2))], None, "the outputs do not have one row per sample"),
    ([np.float32(1.0)], [np.float32(1.0)], None, "an output has no per-sample axis to resample"),
    ([np.zeros((4, 2))], [np.zeros((4, 2))], {"boxes": []}, "the labels are not one per sample"),
    ([np.zeros((1, 2))], [np.zeros((1, 2))], None, "one sample cannot be resampled"),
])
def test_outputs_without_rows_keep_the_point_estimate(reference, candidate, labels, why) -> None:
    b = bootstrap_drop(lambda idx: 0.0, reference, candidate, labels, score_s=0.001, confidence=0.95)
    assert b.bound is None and b.note == f"point estimate: {why}"
