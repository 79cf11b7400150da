"""The bench table and plots lead with the p50 and its interval, and mark noisy cells."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from edgeopt.bench.harness import BenchResult
from edgeopt.report.bench_table import interval, ms, print_bench


def _result(latencies, *, backend="ort", batch=1, error=None) -> BenchResult:
    return BenchResult(backend, "1", "m", "0" * 64, batch=batch, threads=2, latencies_ms=list(latencies),
                       prepare_ms=None if error else 12.5, first_ms=None if error else 3.25, error=error)


def _render(results, width=80) -> str:
    buf = io.StringIO()
    print_bench(results, Console(file=buf, width=width, color_system=None, force_terminal=True))
    return buf.getvalue()


def test_number_formats():
    assert [ms(v) for v in (0.94321, 21.26, 7.0, 1234.5, None)] == ["0.943", "21.3", "7", "1234", "-"]
    assert interval(0.91, 0.97) == "0.91-0.97" and interval(None, 1.0) == "-"


def test_the_table_shows_the_p50_interval_and_cv_and_marks_noise_at_80_columns():
    spiky = _result([0.90, 0.92, 0.93, 0.94, 0.94, 0.95, 0.96, 0.97, 0.99, 30.0, 0.91])  # one slow run
    steady = _result([8.0, 8.1, 7.9, 8.0, 8.05, 7.95], batch=8)
    out = _render([spiky, steady, _result([], backend="tvm", error="tvm: not installed")])
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 80
    row = next(line for line in lines if line.startswith("ort") and " 1 " in line[:12])
    s = spiky.stats
    assert s.p50 == 0.94 and s.mean == pytest.approx(39.41 / 11)
    assert s.p50_low < 0.94 < s.p50_high < 1.0  # the slow run moves the mean, not the p50's interval
    cells = row.split()
    # backend b t runs p50 interval cv mean p99 ms/img img/s: the p50 leads, the mean follows.
    assert cells[:6] == ["ort", "1", "2", "11", "0.94", interval(s.p50_low, s.p50_high)]
    assert cells[6] == f"{s.rcv:.0%}!" and cells[7] == "3.58" and cells[9] == "0.94"
    assert cells[10] == f"{1000 / 0.94:.4g}"
    steady_row = next(line for line in lines if line.startswith("ort") and " 8 " in line[:12]).split()
    assert steady_row[4] == "8" and steady_row[6] == f"{steady.stats.rcv:.0%}" and steady_row[9] == "1"
    assert f"ort b1 t2: cv {s.cv:.0%} > 50%" in out and "ort b8" not in out.split("noisy:")[1]
    assert "failed tvm b1 t2: tvm: not installed" in out
    assert "ort b1 t2 12.5 / 3.25" in out


def test_a_quiet_table_prints_no_noise_legend():
    out = _render([_result([5.0, 5.1, 4.9, 5.0])])
    assert "noisy" not in out and "!" not in out


def test_the_batch_sweep_plots_the_p50_with_its_interval(monkeypatch, tmp_path):
    from edgeopt.report import plots

    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, **kw: figures.append(fig))
    spiky = _result([4.0, 4.1, 3.9, 4.0, 4.2, 3.8, 40.0], batch=4)   # p50 4.0, mean 9.1
    steady = _result([1.0, 1.01, 0.99, 1.0, 1.02])
    plots.plot_batch_sweep([spiky, steady], tmp_path / "b")
    per_image, throughput = (f.axes[0] for f in figures)
    line = per_image.lines[0]
    assert list(line.get_xdata()) == [1, 4]
    assert list(line.get_ydata()) == pytest.approx([1.0, 1.0])      # p50 / batch, not 9.1 / 4
    assert list(throughput.lines[0].get_ydata()) == pytest.approx([1000.0, 1000.0])
    # The error bars span the p50 interval (per image): one vertical segment per point.
    bars = per_image.collections[0].get_segments()
    lo, hi = spiky.stats.p50_low / 4, spiky.stats.p50_high / 4
    assert [tuple(seg[:, 1]) for seg in bars][1] == pytest.approx((lo, hi))
    assert lo < 1.0 < hi
    labels = [t.get_text() for t in per_image.get_legend().get_texts()]
    assert labels[1:] == ["95% interval of the p50", "noisy (rcv > 10%, CV > 50% or interference)"]
    assert per_image.get_ylabel() == "ms per image (p50 latency / batch)"


def test_the_optimize_plot_draws_each_p50_interval(monkeypatch, tmp_path):
    import copy
    import json

    from support import FIXTURES
    from edgeopt.report import plots

    summary = json.loads((FIXTURES / "search_summary_example.json").read_text())
    figures = []
    monkeypatch.setattr(plots, "_save", lambda fig, path, **kw: figures.append(fig))
    plots.plot_latency_vs_quality(summary, tmp_path / "old.png")   # trials from before the interval
    assert figures[0].axes[0].collections and not any(
        len(c.get_segments()) for c in figures[0].axes[0].collections if hasattr(c, "get_segments"))
    s = copy.deepcopy(summary)
    shown = [t for t in s["trials"] if t["state"] == "complete" and t["duplicate_of"] is None
             and t["per_image_ms"] is not None and t["drop"] is not None]
    for t in shown:
        b = t["point"]["batch"]
        t["latency_stats"] = {**t["latency_stats"], "p50_low": 0.9 * t["per_image_ms"] * b,
                              "p50_high": 1.2 * t["per_image_ms"] * b}
    plots.plot_latency_vs_quality(s, tmp_path / "new.png")
    bars = [seg for c in figures[1].axes[0].collections if hasattr(c, "get_segments") for seg in c.get_segments()]
    spans = sorted(v for seg in bars for v in (seg[0, 0], seg[1, 0]))
    assert len(bars) == len(shown) > 3
    assert spans == pytest.approx(sorted(v for t in shown for v in (0.9 * t["per_image_ms"], 1.2 * t["per_image_ms"])))


def test_the_table_says_where_the_numbers_were_measured():
    from edgeopt.report.bench_table import measured_on

    def cell(device=None, ok=True):
        machine = {"cpu_model": "x"} if device is None else {"cpu_model": "x", "device": device}
        return BenchResult("ort", "1", "m", "0", 1, 1, machine=machine, latencies_ms=[1.0] if ok else [],
                           error=None if ok else "lost")
    assert measured_on([cell(), cell()]) == "measured here"
    a, b = {"name": "rpi-a", "kind": "rpi4"}, {"name": "rpi-b", "kind": "rpi4"}
    assert measured_on([cell(a), cell(a)]) == "measured on board rpi-a (kind rpi4)"
    assert measured_on([cell(b), cell(a), cell({"name": "x", "kind": "rpi4"}, ok=False)]) == \
        "measured on boards rpi-a, rpi-b (kind rpi4)"
