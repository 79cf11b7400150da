"""Cells timed in several fresh sessions: the cluster bootstrap over sessions, the harness
that pools them, and compare's A/A verdict (fake sessions and synthetic latencies: no
timing is asserted)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt.bench.compare import cell_ratio_interval, compare_results
from edgeopt.bench.harness import BenchResult, benchmark
from edgeopt.bench.session_stats import (EXACT_MAX, session_p50_distribution, session_p50_interval,
                                         session_ratio_interval, split_sessions)
from edgeopt.bench.stats import p50_interval, percentile
from edgeopt.errors import EdgeoptError

from bench.test_bench import FAST, CountingBackend, register, seednet  # noqa: F401  (fixtures)


def _sessions(centres, n=60, spread=0.01, seed=0) -> tuple[list[float], list[int]]:
    rng = np.random.default_rng(seed)
    values = [float(x) for c in centres for x in rng.normal(c, spread * c, n)]
    return values, [n] * len(centres)


def test_the_exact_distribution_enumerates_every_multiset_of_sessions():
    groups = split_sessions(*_sessions([1.0, 2.0, 3.0]))
    values, probs = session_p50_distribution(groups)
    assert values.size == 10 and probs.sum() == pytest.approx(1.0)
    # Drawing the same session three times: probability 1/27 each.
    assert sorted(probs)[:3] == pytest.approx([1 / 27] * 3)
    # Each session drawn once (6 orders of 27) pools back to the sample itself.
    all_runs = np.concatenate(groups)
    assert probs[np.isclose(values, percentile(all_runs, 50))].sum() >= 6 / 27
    many = split_sessions(*_sessions([1.0] * (EXACT_MAX + 1), n=10))
    v, p = session_p50_distribution(many, resamples=300)
    assert v.size == 300 and p.sum() == pytest.approx(1.0)


def test_sessions_that_disagree_widen_the_interval_runs_alone_would_not():
    values, sizes = _sessions([3.8, 7.2, 5.6])   # the three seednet ORT b8 processes of issue 16
    low, high = session_p50_interval(values, sizes)
    assert low < 4.0 and high > 7.0          # about the fastest to the slowest session
    run_low, run_high = p50_interval(values)
    assert run_high - run_low < 0.5 * (high - low)
    steady = _sessions([5.0, 5.05, 4.98])
    s_low, s_high = session_p50_interval(*steady)
    assert 4.9 < s_low <= s_high < 5.1
    with pytest.raises(EdgeoptError, match="do not cut 180 runs"):
        split_sessions(values, [60, 60])


def test_an_a_a_pair_is_within_noise_over_sessions_though_its_runs_say_slower():
    a_vals, sizes = _sessions([0.50, 0.55, 0.47], seed=1)
    b_vals, _ = _sessions([0.56, 0.52, 0.58], seed=2)   # the same cell, sessions of other luck
    a = BenchResult("ort", "1", "m", "ab", 1, 2, latencies_ms=a_vals, session_runs=sizes)
    b = BenchResult("ort", "1", "m", "ab", 1, 2, latencies_ms=b_vals, session_runs=sizes)
    ratio, low, high = cell_ratio_interval(a, b)
    assert ratio == pytest.approx(percentile(b_vals, 50) / percentile(a_vals, 50))
    assert low < 1.0 < high
    [cell] = compare_results([a], [b])
    assert cell.verdict == "within noise"
    # The same runs without their sessions: the interval over runs calls it slower.
    flat_a = BenchResult("ort", "1", "m", "ab", 1, 2, latencies_ms=a_vals)
    flat_b = BenchResult("ort", "1", "m", "ab", 1, 2, latencies_ms=b_vals)
    assert compare_results([flat_a], [flat_b])[0].verdict == "B slower"
    # A real 30% difference still shows through the sessions.
    slow = BenchResult("ort", "1", "m", "ab", 1, 2, latencies_ms=[x * 1.3 for x in a_vals], session_runs=sizes)
    assert compare_results([a], [slow])[0].verdict == "B slower"
    lo, hi = session_ratio_interval(a_vals, sizes, [x * 1.3 for x in a_vals], sizes)
    assert 1.0 < lo < 1.3 < hi  # A and B resampled independently: their session noise adds up


def test_benchmark_times_each_session_fresh_and_pools_them(register, seednet):
    fake = register("counting", CountingBackend())
    r = benchmark(seednet, "counting", threads=1, sessions=3, **{**FAST, "min_runs": 9})
    assert r.ok and len(fake.sessions) == 3 and all(s.closed for s in fake.sessions)
    assert len(r.session_runs) == 3 and sum(r.session_runs) == len(r.latencies_ms)
    assert all(n >= 3 for n in r.session_runs)           # ceil(9 / 3) each
    assert (r.stats.p50_low, r.stats.p50_high) == session_p50_interval(r.latencies_ms, r.session_runs)
    back = BenchResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back.session_runs == r.session_runs and back.stats == r.stats
    assert r.conditions["wall_s"] >= 0 and "other_cpu_pct" in r.conditions
    one = benchmark(seednet, "counting", threads=1, **FAST)
    assert one.session_runs == [] and len(fake.sessions) == 4
    with pytest.raises(EdgeoptError, match="sessions=0"):
        benchmark(seednet, "counting", sessions=0, **FAST)


def test_a_session_that_fails_fails_the_cell(register, seednet):
    fake = register("counting", CountingBackend())
    real = fake._prepare

    def second_fails(model, *, threads):
        if len(fake.sessions) == 1:
            raise RuntimeError("out of memory in session 2")
        return real(model, threads=threads)

    fake._prepare = second_fails
    r = benchmark(seednet, "counting", threads=1, sessions=3, **FAST)
    assert not r.ok and "out of memory in session 2" in r.error and r.latencies_ms == []
    assert r.stats is None
