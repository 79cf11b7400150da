"""compare's table (each side's p50, its CV with the noisy mark, the ratio and its interval) and
optimize's candidate table (a noisy latency marked)."""

from __future__ import annotations

import io

from rich.console import Console

from edgeopt.bench.compare import compare_results
from edgeopt.bench.harness import BenchResult
from edgeopt.report.compare_table import print_compare


def _result(latencies, *, model="m", batch=1, error=None) -> BenchResult:
    return BenchResult("ort", "1", model, "ab", batch=batch, threads=2, latencies_ms=list(latencies), error=error)


def test_compare_reads_the_same_p50_as_bench_and_marks_noise_at_80_columns():
    quiet = [2.0, 2.02, 1.98, 2.0, 2.01, 1.99, 2.0, 2.03]
    spiky = [1.0, 1.02, 0.98, 1.0, 1.01, 0.99, 1.0, 25.0]   # p50 1.0, mean 4.0
    a = [_result(quiet, model="zoo:seednet"), _result(quiet, model="zoo:other"),
         _result([], model="zoo:third", error="tvm: not installed")]
    b = [_result(spiky, model="zoo:seednet"), _result(quiet, model="zoo:other"), _result(quiet, model="zoo:third")]
    rows = compare_results(a, b)
    seed = rows[0]
    assert (seed.a_ms, seed.b_ms) == (a[0].stats.p50, b[0].stats.p50) == (2.0, 1.0)  # the bench table's p50
    assert seed.ratio == 0.5 and seed.verdict == "B faster"
    assert seed.a_noisy == "" and seed.b_noisy == f"cv {b[0].stats.cv:.0%} > 50%"
    buf = io.StringIO()
    print_compare(rows, "a.json", "b.json", Console(file=buf, width=80, color_system=None, force_terminal=True))
    out = buf.getvalue()
    assert max(len(line) for line in out.splitlines()) <= 80
    row = next(line for line in out.splitlines() if line.startswith("zoo:seednet ") and "faster" in line).split()
    # each row names its model (the runs hold several): model, cell, then the numbers
    assert row[:4] == ["zoo:seednet", "ort", "b1", "t2"]
    assert row[4:11] == ["2", "1%", "1", f"{b[0].stats.rcv:.0%}!", "0.500", f"{seed.low:.3f}-{seed.high:.3f}", "B"]
    assert f"zoo:seednet ort b1 t2 B: cv {b[0].stats.cv:.0%} > 50%" in out
    assert "zoo:third ort b1 t2: not measured (A: tvm: not installed)" in out
    assert "\n1 B faster, 1 within noise, 1 not measured\n" in out


def test_optimize_candidates_mark_a_noisy_latency():
    from types import SimpleNamespace

    from edgeopt.report.optimize_table import print_optimize

    def trial(n, label, ms, cv):
        return SimpleNamespace(number=n, label=label, per_image_ms=ms, drop=0.1, size_bytes=2_000_000,
                               status="accepted", measured=True, attrs={"latency_stats": {"cv": cv}})

    steady, shaky = trial(0, "fp32@ort t2 b1", 1.5, 0.04), trial(1, "int8-ort@ort t2 b1", 0.9, 1.61)
    result = SimpleNamespace(strategy="grid", trials=[steady, shaky], elapsed_s=10.0, quality_metric="agreement",
                             winner=shaky, fallback=[], notes=[], hand_picked_best=shaky, baseline=steady,
                             confirm_ms={"winner": 0.9, "hand_picked": 0.9, "baseline": 1.5},
                             speedup_vs_hand_picked=1.0, speedup_vs_baseline=1.67, speedup_interval=(1.5, 1.8),
                             machine={"arch": "x86_64"})
    buf = io.StringIO()
    print_optimize(result, Console(file=buf, width=80, color_system=None))
    out = buf.getvalue()
    assert "1.67x" in out and "[1.50..1.80]" in out and "latencies and outputs measured here" in out
    assert "0.900!" in out and "1.500!" not in out and "1.500" in out
    assert "int8-ort@ort t2 b1: cv 161% > 50%" in out and "fp32@ort t2 b1:" not in out
