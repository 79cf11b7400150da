"""Decisions with confidence: quality bounds (Wilson), the too-small-set message, and the
choice among finalists re-timed in alternating rounds (fake timings: no real work)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from edgeopt.errors import EdgeoptError
from edgeopt.optimizer.choose import choose
from edgeopt.optimizer.confidence import (bootstrap_upper, check_tie_breaker, min_samples, round_ratio_interval,
                                          too_small, wilson_lower)
from edgeopt.optimizer.config import OptimizeConfig
from edgeopt.optimizer.measure import QualityVerdict
from edgeopt.optimizer.space import Point
from edgeopt.optimizer.study import TrialRecord

Z95 = 1.6448536269514722  # one-sided 95% normal quantile


def wilson_by_hand(k: int, n: int, z: float = Z95) -> float:
    p = k / n
    centre = p + z * z / (2 * n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - half) / (1 + z * z / n)


def test_wilson_lower_bound_matches_the_formula_and_known_values():
    # The demo's case: 131 of 132 images agree (99.2%), but the rate is only shown >= 96.7%.
    assert wilson_lower(131, 132) == pytest.approx(0.966760, abs=1e-5)
    assert wilson_lower(131, 132) == pytest.approx(wilson_by_hand(131, 132), rel=1e-9)
    assert wilson_lower(317, 324) == pytest.approx(wilson_by_hand(317, 324), rel=1e-9)
    # A perfect score's bound is n / (n + z^2).
    assert wilson_lower(132, 132) == pytest.approx(132 / (132 + Z95 ** 2), rel=1e-9)
    assert wilson_lower(0, 10) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(EdgeoptError, match="0 <= k <= n"):
        wilson_lower(5, 4)


def test_smallest_set_that_can_show_the_budget():
    assert min_samples(0.99) == 268  # 0.99 z^2 / 0.01 = 267.8
    assert wilson_lower(268, 268) >= 0.99 > wilson_lower(267, 267)
    assert min_samples(0.95) == 52 and wilson_lower(52, 52) >= 0.95 > wilson_lower(51, 51)
    with pytest.raises(EdgeoptError, match="--max-drop above 0"):
        min_samples(1.0)


def test_too_small_a_set_is_said_in_one_line():
    assert too_small(132, 1.0) == ("132 images cannot show 99% at 95% confidence (it takes 268): "
                                   "give more images or a larger --max-drop")
    assert too_small(268, 1.0) == ""
    assert too_small(132, 3.0) == ""  # 132 of 132 shows 98.0% >= 97%
    assert "cannot show 100%" in too_small(10_000, 0.0)


def test_bootstrap_upper_bound_of_a_per_sample_metric():
    losses = np.r_[np.zeros(90), np.ones(10)]  # mean 0.10
    upper = bootstrap_upper(losses)
    assert 0.12 < upper < 0.17  # normal approximation: 0.10 + 1.645 * 0.03 = 0.149
    assert bootstrap_upper(np.zeros(20)) == 0.0
    with pytest.raises(EdgeoptError):
        bootstrap_upper([])


def test_round_ratio_interval_pairs_rounds():
    ratio, low, high = round_ratio_interval([2.0, 2.1, 1.9, 2.0, 2.05], [1.0, 1.02, 0.98, 1.01, 1.0])
    assert ratio == pytest.approx(2.0) and 1.9 < low <= ratio <= high < 2.1
    ratio, low, high = round_ratio_interval([1.0, 1.1, 0.9, 1.05, 0.97], [1.0] * 5)
    assert low < 1.0 < high  # the rounds disagree on the order: not told apart
    assert all(math.isnan(x) for x in round_ratio_interval([], []))


def test_tie_breaker_names_are_checked():
    assert check_tie_breaker("runtime:openvino") == "runtime:openvino"
    with pytest.raises(EdgeoptError, match="passes, size or runtime:NAME"):
        check_tie_breaker("fastest")
    with pytest.raises(EdgeoptError, match="tie-breaker"):
        OptimizeConfig(tie_breaker="runtime:")
    with pytest.raises(EdgeoptError, match="confidence"):
        OptimizeConfig(confidence=1.0)


def test_verdict_judges_the_bound_when_there_is_one():
    assert QualityVerdict(0.76, {}, "", 3.3).judged == 3.3
    assert QualityVerdict(0.76, {}, "").judged == 0.76


# -- the choice among finalists, with fake timings -------------------------------------------------
def rec(number: int, precision: str, backend: str, ms: float, passes: list[str], size: int,
        origin: str = "grid") -> TrialRecord:
    point = Point(precision=precision, backend=backend, threads=2, batch=1)
    return TrialRecord(number=number, point=point, state="complete", feasible=True, per_image_ms=ms,
                       drop=0.0, size_bytes=size, origin=origin, attrs={"passes": passes})


class FakeBuilder:
    def build(self, recipe):
        return recipe


class FakeMeasurer:
    """Per-round p50s by label: the alternating re-timing without timing anything."""

    def __init__(self, rounds: dict[str, list[float]]) -> None:
        self.rounds, self.asked = rounds, []

    def confirm(self, entries, budget_s=None):
        self.asked.append([p.label for _, p in entries])
        return [self.rounds[p.label] for _, p in entries]


BASE = rec(0, "fp32", "ort", 10.0, [], 4_000_000, origin="hand-picked")
INT8_OV = rec(1, "int8-nncf", "openvino", 4.0, ["quantize-nncf"], 1_100_000)
FP32_OV = rec(2, "fp32", "openvino", 4.1, [], 4_000_000, origin="hand-picked")
FP16 = rec(3, "fp16", "ort", 9.0, ["fp16"], 2_000_000)
SLOW = rec(4, "int8-ort", "ort", 30.0, ["quantize-static"], 1_000_000)
RECS = [BASE, INT8_OV, FP32_OV, FP16, SLOW]


def test_overlapping_intervals_are_a_tie_chosen_by_the_tie_breaker():
    rounds = {BASE.label: [10.0, 10.2, 9.9, 10.1, 10.0],
              INT8_OV.label: [4.0, 4.3, 3.9, 4.2, 4.1],   # faster in 3 of 5 rounds only
              FP32_OV.label: [4.1, 4.0, 4.2, 4.0, 4.2],
              FP16.label: [9.0, 9.1, 9.0, 9.2, 9.1]}
    fake = FakeMeasurer(rounds)
    c = choose(RECS, BASE.point, FakeBuilder(), fake)
    # The three fastest within 1.5x of the best trial, plus the baseline; the hand-picked
    # best (fp32@openvino) is among them; the slow trial is never re-timed.
    assert sorted(fake.asked[0]) == sorted([INT8_OV.label, FP32_OV.label, BASE.label])
    assert c.tie == [INT8_OV.label, FP32_OV.label] or c.tie == [FP32_OV.label, INT8_OV.label]
    assert c.winner is FP32_OV  # default tie-breaker: fewer passes
    assert c.decision.startswith("tie: ") and "tie-breaker passes" in c.decision
    assert c.decision in c.notes
    by_size = choose(RECS, BASE.point, FakeBuilder(), FakeMeasurer(rounds), tie_breaker="size")
    assert by_size.winner is INT8_OV and "tie-breaker size" in by_size.decision
    by_runtime = choose(RECS, BASE.point, FakeBuilder(), FakeMeasurer(rounds), tie_breaker="runtime:openvino")
    assert by_runtime.winner in (INT8_OV, FP32_OV)
    # Either way the speedup over the original is measured and its interval excludes 1.
    assert c.speedup_vs_baseline == pytest.approx(10.0 / 4.1, rel=0.03)
    assert 1.0 < c.speedup_interval[0] <= c.speedup_vs_baseline <= c.speedup_interval[1]


def test_a_clear_winner_is_named_with_its_margin():
    rounds = {BASE.label: [10.0, 10.2, 9.9, 10.1, 10.0],
              INT8_OV.label: [2.0, 2.1, 1.9, 2.0, 2.05],
              FP32_OV.label: [4.1, 4.0, 4.2, 4.0, 4.2],
              FP16.label: [9.0, 9.1, 9.0, 9.2, 9.1]}
    c = choose(RECS, BASE.point, FakeBuilder(), FakeMeasurer(rounds))
    assert c.winner is INT8_OV and c.tie == []
    assert c.decision.startswith(f"{INT8_OV.label} is the winner: the runner-up {FP32_OV.label} takes 2.0")
    runner = c.finalists[1]
    assert runner["label"] == FP32_OV.label and runner["low"] > 1.0 and not runner["tied"]
    assert c.speedup_vs_baseline == pytest.approx(5.0, rel=0.02)
    assert c.speedup_vs_hand_picked == pytest.approx(2.0, rel=0.03)


def test_a_gain_under_five_percent_is_a_tie_however_sure():
    rounds = {BASE.label: [10.0] * 5,
              INT8_OV.label: [4.0, 4.01, 4.0, 4.02, 4.0],   # 3% faster than fp32@openvino in every round
              FP32_OV.label: [4.12, 4.13, 4.12, 4.14, 4.12],
              FP16.label: [9.0] * 5}
    c = choose(RECS, BASE.point, FakeBuilder(), FakeMeasurer(rounds))
    runner = c.finalists[1]
    assert runner["label"] == FP32_OV.label and runner["low"] > 1.0 and runner["ratio"] < 1.05 and runner["tied"]
    assert c.winner is FP32_OV and "gain is under 5%" in c.decision


def test_a_tie_the_tie_breaker_cannot_split_keeps_the_original():
    # fp32 on OpenVINO: no passes and the original's size, re-timed first but not shown faster.
    fp32_ov = rec(5, "fp32", "openvino", 9.5, [], 4_000_000)
    rounds = {BASE.label: [10.0, 9.0, 10.5, 9.2, 10.1], fp32_ov.label: [9.5, 9.8, 9.6, 9.9, 9.4]}
    c = choose([BASE, fp32_ov], BASE.point, FakeBuilder(), FakeMeasurer(rounds))
    assert c.finalists[0]["label"] == fp32_ov.label and len(c.tie) == 2
    assert c.winner is BASE and c.speedup_vs_baseline == 1.0


def test_a_candidate_not_told_apart_from_the_original_loses_to_it():
    rounds = {BASE.label: [10.0, 9.0, 10.5, 9.2, 10.1],
              INT8_OV.label: [9.5, 9.8, 9.6, 9.9, 9.4],
              FP32_OV.label: [12.0, 12.1, 12.2, 12.0, 12.3],
              FP16.label: [11.0, 11.1, 11.0, 11.2, 11.1]}
    c = choose(RECS, BASE.point, FakeBuilder(), FakeMeasurer(rounds))
    assert c.winner is BASE and BASE.label in c.tie and INT8_OV.label in c.tie
    assert any("keeping the original" in n for n in c.notes)
    assert c.speedup_vs_baseline == 1.0


class BatchMeasurer(FakeMeasurer):
    """Serves batch k of every label's rounds on the k-th call; ticks a fake clock 3 s a batch."""

    def __init__(self, batches: list[dict[str, list[float]]], clock: list[float]) -> None:
        super().__init__(batches[0])
        self.batches, self.clock = batches, clock

    def confirm(self, entries, budget_s=None):
        self.rounds = self.batches[min(len(self.asked), len(self.batches) - 1)]
        self.clock[0] += 3.0
        return super().confirm(entries)


def test_a_tie_is_re_timed_in_more_rounds_while_time_is_left():
    noisy = {BASE.label: [10.0, 10.2, 9.9, 10.1, 10.0], INT8_OV.label: [4.0, 4.3, 3.9, 4.2, 4.1],
             FP32_OV.label: [4.1, 4.0, 4.2, 4.0, 4.2]}
    clear = {BASE.label: [10.0] * 5, INT8_OV.label: [3.5, 3.6, 3.5, 3.6, 3.5], FP32_OV.label: [4.1] * 5}
    now = [0.0]
    asked_for = []
    fake = BatchMeasurer([noisy, clear, clear], now)
    c = choose(RECS, BASE.point, FakeBuilder(), fake, clock=lambda: now[0],
               may_extend=lambda s: asked_for.append(s) or True)
    # Tied after 5 rounds; 5 more re-time every contender and settle it after 10.
    assert len(fake.asked) == 2 and asked_for == [3.0]
    assert c.winner is INT8_OV and c.tie == [] and "is the winner" in c.decision
    # No time left for a batch: the tie stands after the first 5 rounds.
    stuck = choose(RECS, BASE.point, FakeBuilder(), BatchMeasurer([noisy, clear], [0.0]), may_extend=lambda s: False)
    assert stuck.winner is FP32_OV and len(stuck.tie) == 2
    # A tie whose intervals all end under 1.05 is settled: no batch more.
    equal = {BASE.label: [10.0] * 5, INT8_OV.label: [4.0, 4.02, 4.01, 4.0, 4.02],
             FP32_OV.label: [4.01, 4.0, 4.02, 4.01, 4.0]}
    settled = BatchMeasurer([equal], [0.0])
    c = choose(RECS, BASE.point, FakeBuilder(), settled, may_extend=lambda s: True)
    assert len(settled.asked) == 1 and len(c.tie) == 2
    # Never more than 3 batches, however long the tie lasts.
    always = BatchMeasurer([noisy], [0.0])
    choose(RECS, BASE.point, FakeBuilder(), always, may_extend=lambda s: True)
    assert len(always.asked) == 3


# -- through the command line, on a tiny classifier -----------------------------------------------
def test_optimize_writes_bounds_and_the_decision(monkeypatch, capsys, tmp_path):
    import json

    from hostile.harness import Sandbox
    from support import run_cli

    sb = Sandbox(tmp_path)
    monkeypatch.setenv("EDGEOPT_CACHE", str(sb.cache))
    code, out, err = run_cli(monkeypatch, capsys, "optimize", str(sb.model()), "--images", str(sb.images(12)),
                             "--backends", "ort", "--prune-targets", "",
                             "--seconds", "0.05", "--tie-breaker", "size", "--out", str(sb.out))
    assert code == 0, err
    summary = json.loads((sb.out / "candidates.json").read_text())
    deploy = json.loads((sb.out / "deploy.json").read_text())
    n = summary["n_eval"]
    # A few held-out images cannot show 99%: said before measuring, and in the results.
    assert summary["eval_too_small"] == (f"{n} images cannot show 99% at 95% confidence (it takes 268): "
                                         f"give more images or a larger --max-drop")
    assert summary["confidence"] == 0.95 and summary["tie_breaker"] == "size"
    assert summary["decision"] and summary["finalists"][0]["ratio"] == 1.0
    assert summary["winner"] in [f["label"] for f in summary["finalists"]]
    measured = [t for t in summary["trials"] if t["state"] == "complete" and t["label"] != summary["baseline"]]
    assert measured
    for t in measured:  # every measured candidate carries its bound beside the point estimate
        q = t["quality"]
        assert q["top1_agreement_lower"] < q["top1_agreement"] and q["drop_bound"] > 1.0
        assert t["status"] == "rejected"  # n images cannot show the budget, so none passes
    assert summary["winner"] == summary["baseline"]
    assert deploy["decision"]["tie_breaker"] == "size" and deploy["decision"]["reason"] == summary["decision"]


# -- the bound on a per-sample task metric (landmark error), through the measurer ----------------
def test_a_mean_error_is_judged_on_its_bootstrap_upper_bound():
    from edgeopt.evaluate import tasks
    from edgeopt.optimizer.measure import Measurer

    from support import outputs_model

    model = outputs_model({"pts": (1, 10)})
    evaluator = tasks.make("regress", model, {})
    rng = np.random.default_rng(0)
    ref = [rng.normal(size=(40, 10)).astype(np.float32)]
    cand = [ref[0] + np.where(np.arange(40)[:, None] < 4, 8.0, 0.0).astype(np.float32)]  # 4 of 40 samples off by 8
    score = evaluator.score(ref, cand)
    assert score.drop == pytest.approx(0.8, rel=1e-5)
    assert score.per_sample.shape == (40,) and score.per_sample.mean() == pytest.approx(score.drop, rel=1e-6)
    assert "per_sample" not in score.to_dict()
    m = object.__new__(Measurer)  # the measurer's state without a model to run
    m.evaluator, m.reference, m.labels, m.held_out = evaluator, ref, None, list(range(40))
    m.task, m.unit, m.tolerance, m.confidence = "regress", "units", 1.0, 0.95
    verdict = m.quality(cand)
    # The point estimate (0.8) is within the budget of 1, its 95% upper bound is not.
    assert 1.0 < verdict.drop_bound < 1.8 and verdict.judged == verdict.drop_bound
    assert "upper bound" in verdict.reason and verdict.quality["drop_bound"] == verdict.drop_bound
    assert m.quality(cand, exact=True).drop_bound is None
    m.confidence = None
    assert m.quality(cand).reason == "" and m.quality(cand).judged == pytest.approx(0.8, rel=1e-5)


def test_the_fallback_steps_in_when_only_the_bound_breaks_the_budget():
    from edgeopt.optimizer.fallback import next_step
    from edgeopt.optimizer.space import SearchSpace

    fp32 = rec(0, "fp32", "ort", 2.0, [], 4_000_000)
    int8 = rec(1, "int8-nncf", "ort", 1.0, ["quantize-nncf"], 1_000_000)
    int8.feasible, int8.drop, int8.attrs["drop_bound"] = False, 0.5, 2.4  # 0.5 points lost, shown <= 2.4
    space = SearchSpace(float_layers=(0, 1, 2))
    assert int8.judged_drop == 2.4 and fp32.judged_drop == 0.0
    assert next_step(int8, [fp32, int8], space, max_drop=1.0) == Point(precision="int8-nncf", float_layers=1, threads=2)
    del int8.attrs["drop_bound"]  # judged on the point estimate, 0.5 is within 1: nothing to fix
    assert next_step(int8, [fp32, int8], space, max_drop=1.0) is None


def test_cer_shares_per_sample_average_to_the_corpus_cer():
    from edgeopt.evaluate.tasks.sequence import _edit_shares, character_error_rate

    read, truth = ["hallo", "world", "abc", ""], ["hello", "world", "abcd", "xy"]
    cer, edits = character_error_rate(read, truth)
    shares = _edit_shares(read, truth)
    assert edits == 4 and cer == pytest.approx(100 * 4 / 16)
    assert shares.tolist() == pytest.approx([25.0, 0.0, 25.0, 50.0]) and shares.mean() == pytest.approx(cer)


def test_the_confirmation_fits_the_time_left(monkeypatch):
    from types import SimpleNamespace

    from edgeopt.device.target import LocalTarget
    from edgeopt.optimizer.measure import Measurer, Timing

    asked = []
    target = LocalTarget()
    monkeypatch.setattr(target, "rounds", lambda entries, **kw: asked.append(kw) or [[[1.0]]] * len(entries))
    me = SimpleNamespace(timing=Timing(min_runs=20, min_time_s=1.0, max_time_s=4.0, confirm_rounds=5), target=target)
    point = Point(precision="fp32", backend="ort", threads=2, batch=1)
    entries = [(None, point)] * 4
    Measurer.confirm(me, entries)          # no budget: half the full measurement per round
    Measurer.confirm(me, entries, 6.0)     # 6 s over 5 rounds x 4 entries: 0.3 s each
    Measurer.confirm(me, entries, -2.0)    # spent: the harness's floor of runs only
    assert [(a["min_time_s"], a["max_time_s"]) for a in asked] == [(0.5, 2.0), (0.3, 0.3), (0.0, 0.0)]
    assert all(a["rounds"] == 5 and a["min_runs"] == 10 for a in asked)


def test_a_drop_over_all_samples_is_judged_on_the_task_scores_bootstrap():
    from edgeopt.evaluate import tasks
    from edgeopt.optimizer.measure import Measurer

    from support import outputs_model

    model = outputs_model({"y": (1, 16)})
    evaluator = tasks.make("outputs", model, {"snr_floor_db": 20.0})
    rng = np.random.default_rng(1)
    ref = [rng.normal(size=(60, 16)).astype(np.float32)]
    noise = rng.normal(size=(60, 16)).astype(np.float32) * 0.06  # ~21 dB SNR overall
    noise[:3] *= 5.0  # three samples carry most of the error: resamples that draw them twice fall below 20 dB
    cand = [ref[0] + noise]
    score = evaluator.score(ref, cand)
    assert score.per_sample is None and score.drop == 0.0 and score.value > 20.0
    m = object.__new__(Measurer)
    m.evaluator, m.reference, m.labels, m.held_out = evaluator, ref, None, list(range(60))
    m.task, m.unit, m.tolerance, m.confidence = "outputs", "dB", 0.5, 0.95
    verdict = m.quality(cand)
    # The point estimate passes (no drop below the floor); its 95% bound over resamples does not.
    assert verdict.drop_bound > 0.5 and verdict.quality["bound_resamples"] == 200
    assert "upper bound" in verdict.reason and "--metric-tolerance" in verdict.reason
    m.confidence = None
    assert m.quality(cand).drop_bound is None and m.quality(cand).reason == ""
