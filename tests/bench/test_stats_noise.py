"""The p50 with its bootstrap interval and CV, and the one rule that calls a cell noisy."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from edgeopt.bench.harness import BenchResult
from edgeopt.bench.noise import NOISY_CV, interference, noisy
from edgeopt.bench.stats import LatencyStats, bootstrap_p50s, p50_interval
from edgeopt.errors import EdgeoptError


def _result(latencies, **kw) -> BenchResult:
    return BenchResult("ort", "1", "m", "0" * 64, batch=kw.pop("batch", 1), threads=1,
                       latencies_ms=list(latencies), **kw)


def test_bootstrap_p50s_follow_the_exact_bootstrap_distribution():
    x = np.array([1.0, 2.0, 3.0])
    reps = bootstrap_p50s(x, np.random.default_rng(0), resamples=60000)
    # A resample of 3 draws has its p50 (sorted[1]) at 1.0 when two or three draws are 1.0:
    # 3 * (1/3)^2 * (2/3) + (1/3)^3 = 7/27; symmetrically 7/27 at 3.0, 13/27 at 2.0.
    shares = [float(np.mean(reps == v)) for v in x]
    assert shares == pytest.approx([7 / 27, 13 / 27, 7 / 27], abs=0.01)
    # Against brute-force Monte Carlo resampling of a skewed sample of 41 runs.
    rng = np.random.default_rng(4)
    y = 1 + rng.exponential(1.0, 41)
    brute = np.sort(y[rng.integers(0, 41, (40000, 41))], axis=1)[:, 20]
    exact = bootstrap_p50s(y, np.random.default_rng(1), resamples=40000)
    assert np.percentile(exact, [2.5, 50, 97.5]) == pytest.approx(np.percentile(brute, [2.5, 50, 97.5]),
                                                                   rel=0.03)
    assert bootstrap_p50s([5.0], np.random.default_rng(0), resamples=10).tolist() == [5.0] * 10
    with pytest.raises(EdgeoptError, match="empty"):
        bootstrap_p50s([], np.random.default_rng(0))


def test_p50_interval_brackets_the_p50_and_narrows_with_runs():
    rng = np.random.default_rng(7)
    few = list(10 + rng.normal(0, 1, 15))
    many = list(10 + rng.normal(0, 1, 1500))
    lo_few, hi_few = p50_interval(few)
    lo_many, hi_many = p50_interval(many)
    assert lo_few <= sorted(few)[7] <= hi_few
    assert lo_many <= sorted(many)[750] <= hi_many
    assert hi_many - lo_many < (hi_few - lo_few) / 3
    assert p50_interval(few) == p50_interval(few)  # seeded: the same numbers every time
    assert lo_few in few and hi_few in few  # bootstrap p50s are observed runs


def test_p50_interval_covers_the_true_median_about_95_percent_of_the_time():
    rng = np.random.default_rng(11)
    hits = 0
    for seed in range(300):
        lo, hi = p50_interval(10 + rng.standard_normal(51), seed=seed)
        hits += lo <= 10.0 <= hi
    # The percentile bootstrap of a median at n=51 covers close to its nominal 95%
    # (Efron & Tibshirani 1993, ch. 13); 300 trials put 95% within about +-3.8 points.
    assert 0.90 <= hits / 300 <= 0.99


def test_latency_stats_carry_cv_and_the_p50_interval():
    s = LatencyStats.from_latencies([2, 4, 4, 4, 5, 5, 7, 9])
    assert s.cv == pytest.approx(math.sqrt(32 / 7) / 5)
    assert s.p50 == 5 and s.p50_low <= 5 <= s.p50_high
    assert (s.p50_low, s.p50_high) == p50_interval([2, 4, 4, 4, 5, 5, 7, 9])
    assert LatencyStats.from_dict(s.to_dict()) == s
    one = LatencyStats.from_latencies([3.0])
    assert (one.cv, one.p50_low, one.p50_high) == (0.0, 3.0, 3.0)
    # A record written before the interval existed still reads.
    old = {k: v for k, v in s.to_dict().items() if k not in ("cv", "p50_low", "p50_high")}
    assert LatencyStats.from_dict(old).p50_low is None


def test_bench_result_json_carries_the_interval():
    r = _result([1.0, 1.1, 0.9, 1.0, 9.0], batch=2)
    d = r.to_dict()["stats"]
    assert d["p50"] == 1.0 and d["p50_low"] <= 1.0 <= d["p50_high"] and d["cv"] > 1.0
    assert BenchResult.from_dict(r.to_dict()).stats == r.stats
    assert r.ms_per_image == 0.5  # p50 / batch, not the mean (2.6 ms)


def test_noisy_rule_names_its_reasons():
    steady = _result([10.0, 10.1, 9.9, 10.0, 10.05])
    assert steady.stats.cv < NOISY_CV and noisy(steady) is None
    spiky = _result([0.9, 0.95, 0.94, 0.93, 12.0])  # the case: p50 ~0.94, mean inflated
    # Its median is steady (rcv small): the long run makes it noisy through std / mean.
    assert spiky.stats.rcv < NOISY_CV and noisy(spiky) == f"cv {spiky.stats.cv:.0%} > 50%"
    wide = _result([0.8, 0.9, 1.0, 1.1, 1.2, 1.0, 0.95])  # a spread median, no long run
    assert wide.stats.cv < 0.5 and noisy(wide) == f"rcv {wide.stats.rcv:.0%} > 10%"
    assert noisy(_result([], error="no runtime")) is None
    # The conditions record adds its interference (edgeopt.bench.conditions' thresholds);
    # absent, empty or quiet adds none.
    steady.conditions = {"other_cpu_pct": 62.0, "steal_pct": 0.0}
    assert noisy(steady) == "other processes used 62% of the CPU"
    spiky.conditions = {"other_cpu_pct": 3.0, "steal_pct": 12.0}
    assert noisy(spiky).endswith("> 50%; steal 12%")
    assert interference({}) is None and interference(None) is None
    assert interference({"other_cpu_pct": 5.0, "steal_pct": 0.0, "throttled": None}) is None
    assert noisy(SimpleNamespace(stats=steady.stats)) is None   # a record without conditions


def test_noise_reason_reads_any_record():
    from edgeopt.bench.noise import noise_reason

    assert noise_reason(None) is None and noise_reason(0.10) is None   # at the threshold: not above it
    assert noise_reason(0.1004) == "rcv 10.0% > 10%" and noise_reason(0.1051) == "rcv 11% > 10%"
    assert noise_reason(0.02, cv=0.5) is None and noise_reason(0.02, cv=1.61) == "cv 161% > 50%"
    assert noise_reason(0.2, cv=0.503) == "rcv 20% > 10%; cv 50.3% > 50%"
    assert noise_reason(None, {"throttled": 5, "throttled_raw": "0x50005"}) == "throttled (0x50005)"
