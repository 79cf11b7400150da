"""A suite's report and plots show each cell at its p50 with the interval, and the noisy ones."""

from __future__ import annotations

import pytest

from edgeopt.bench.harness import BenchResult
from edgeopt.report import plots, suite_plots
from edgeopt.report.bench_table import ms
from edgeopt.report.suite_report import suite_markdown
from edgeopt.suites.catalog import SuiteSpec
from edgeopt.suites.run import SuiteCell, SuiteRun


def _cell(latencies, batch, backend="ort") -> SuiteCell:
    return SuiteCell("zoo:seednet", "fp32", BenchResult(backend, "1", "seednet", "ab", batch=batch, threads=1,
                                                        latencies_ms=list(latencies)))


def _run(batches=(1, 2)) -> SuiteRun:
    spec = SuiteSpec(name="t", title="test", source="test study", models=("zoo:seednet",), backends=("ort",),
                     threads=(1,), batches=batches, metric="ms_per_image")
    steady = _cell([2.0, 2.02, 1.98, 2.0, 2.01, 1.99], 1)
    spiky = _cell([3.0, 3.1, 2.9, 3.0, 3.05, 2.95, 60.0], 2)   # p50 3.0, mean 11.1
    return SuiteRun(spec, budget_s=10.0, elapsed_s=5.0, cells=[steady, spiky][:len(batches)],
                    machine={"cpu_model": "Test CPU"})


def test_the_report_shows_p50_intervals_and_names_the_noisy_cells():
    run = _run()
    md = suite_markdown(run, [])
    s1, s2 = run.cells[0].result.stats, run.cells[1].result.stats
    assert f"| ort t1 | 2 [{s1.p50_low:.3g}-{s1.p50_high:.3g}] (6) | " \
           f"1.5 [{s2.p50_low / 2:.3g}-{s2.p50_high / 2:.3g}] (7) ! |" in md
    assert "## zoo" not in md and "## seednet: ms per image (p50 latency / batch)" in md
    assert f"- seednet fp32 ort t1 b2: cv {s2.cv:.0%} > 50%" in md
    assert "b1:" not in md.split("## Noisy cells")[1]
    assert "| seednet | 2 | ort t1 | 1.5 |" in md   # the winner's value is the p50 per image, not 11.1 / 2


def test_a_quiet_run_has_no_noisy_section():
    assert "Noisy cells" not in suite_markdown(_run(batches=(1,)), [])


@pytest.mark.parametrize("batches", [(1, 2), (1,)])
def test_suite_plots_draw_the_p50_interval(monkeypatch, tmp_path, batches):
    figures = []
    monkeypatch.setattr(suite_plots, "_save", lambda fig, path, **kw: figures.append(fig))
    run = _run(batches)
    suite_plots.plot_suite(run, tmp_path / "t")
    ax = figures[0].axes[0]
    want = [plots.per_image_interval(c.result) for c in run.cells]
    if len(batches) == 1:
        bar = ax.patches[0]   # horizontal bars: the value is the width
        assert bar.get_width() == pytest.approx(want[0][0])
        segs = [v for seg in ax.collections[0].get_segments() for v in sorted(seg[:, 0])]
    else:
        assert list(ax.lines[0].get_ydata()) == pytest.approx([w[0] for w in want])
        segs = [v for seg in ax.collections[0].get_segments() for v in sorted(seg[:, 1])]
    assert segs == pytest.approx([v for w in want for v in (w[1], w[2])])
    assert want[-1][1] < want[-1][0] < want[-1][2]  # bars of real height
    assert ms(want[0][0]) == "2"


def test_who_wins_gives_the_runner_up_ratio_with_its_interval_and_calls_ties():
    run = _run(batches=(1,))
    quick = [1.0, 1.01, 0.99, 1.0, 1.02, 0.98]
    run.cells += [_cell(quick, 1, backend="openvino"), _cell([v * 1.001 for v in quick], 1, backend="tvm")]
    md = suite_markdown(run, [])
    # openvino and tvm are 0.1% apart: a tie; ort is twice as slow.
    assert "| seednet | 1 | openvino t1 | 1 | tie: 1.00x [" in md and "(tvm t1) | 2.00x (ort t1) |" in md
    run.cells.pop()
    md = suite_markdown(run, [])
    assert "| seednet | 1 | openvino t1 | 1 | 2.00x [1.9" in md and "tie" not in md.split("## Who")[1].split("\n\n")[1]
