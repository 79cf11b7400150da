"""The plots answer their question honestly: log axes where values span decades, p50 with
its interval, no empty groups, the budget region readable with far trials off the plot,
labels that never overlap (measured from the renderer), points above a roof flagged."""

from __future__ import annotations

import copy
import json
from itertools import combinations

import numpy as np
import pytest
from matplotlib.text import Annotation, Text

from support import FIXTURES
from edgeopt.analysis.device import DeviceProfile
from edgeopt.analysis.roofline import above_roof_note, attainable_gflops
from edgeopt.bench.harness import BenchResult
from edgeopt.bench.machine.roofline import Roofline, RooflineRow
from edgeopt.report import plots, roofline_plot, suite_plots
from edgeopt.report.label_place import Label, place_labels
from edgeopt.report.plots import drop_window, per_image_interval
from edgeopt.suites.catalog import SuiteSpec
from edgeopt.suites.run import SuiteCell, SuiteRun


@pytest.fixture
def figures(monkeypatch):
    """The figures the plot functions would save, in order (nothing written)."""
    saved = []
    for module in (plots, suite_plots, roofline_plot):
        monkeypatch.setattr(module, "_save", lambda fig, path, **kw: saved.append(fig))
    return saved


def _boxes(fig, texts):
    """Each text's box in pixels, from the renderer (an Annotation's own extent would add
    its leader line, which may cross other labels' leader lines, never their text)."""
    renderer = fig.canvas.get_renderer()
    for t in texts:
        if isinstance(t, Annotation):
            t.update_positions(renderer)
    return [Text.get_window_extent(t, renderer) for t in texts]


def _no_overlap(boxes):
    return not [(a, b) for a, b in combinations(boxes, 2) if a.overlaps(b)]


# -- suite bars ---------------------------------------------------------------------------------
def _cell(ref, backend, ms, error=None):
    jitter = [0.98, 1.0, 1.02, 0.99, 1.01, 1.0, 0.97, 1.03]
    r = BenchResult(backend, "1", ref, "ab", batch=1, threads=1,
                    latencies_ms=[] if error else [ms * j for j in jitter], error=error)
    return SuiteCell(ref, "fp32", r)


def _suite(cells):
    models = tuple(dict.fromkeys(c.ref for c in cells))
    spec = SuiteSpec(name="t", title="test", source="test", models=models, backends=("ort", "tvm"),
                     threads=(1,), batches=(1,), metric="ms_per_image")
    return SuiteRun(spec, budget_s=1.0, cells=cells, machine={"cpu_model": "Test CPU"})


def test_suite_bars_are_panels_per_model_on_a_log_axis_without_empty_groups(figures, tmp_path):
    cells = [_cell("zoo:a", "ort", 55.0), _cell("zoo:a", "tvm", 6500.0),
             _cell("zoo:b", "ort", 2.0), _cell("zoo:b", "tvm", 0, error="compile failed"),
             _cell("zoo:c", "ort", 0, error="x"), _cell("zoo:c", "tvm", 0, error="y")]
    suite_plots.plot_suite(_suite(cells), tmp_path / "t")
    fig = figures[0]
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]          # zoo:c measured nothing: no panel
    a, b = fig.axes
    assert a.get_xscale() == "log" and b.get_xscale() == "log"       # 2 ms to 6.5 s
    assert [t.get_text() for t in a.get_yticklabels()] == ["ort t1", "tvm t1"]
    assert [t.get_text() for t in b.get_yticklabels()] == ["ort t1"]  # no empty slot for the failed tvm
    assert any(t.get_text() == "not measured: tvm t1 (failed)" for t in b.texts)
    assert "no cell measured (no panel): c" in fig._suptitle.get_text()
    # Each dot at the p50 per image, its whisker the p50's 95% interval.
    want = [per_image_interval(c.result) for c in cells[:2]]
    dots = a.collections[-1].get_offsets()
    assert list(dots[:, 0]) == pytest.approx([w[0] for w in want])
    whiskers = a.containers[0].lines[2][0]   # the errorbar's x-error segments
    assert [v for s in whiskers.get_segments() for v in sorted(s[:, 0])] == pytest.approx(
        [v for w in want for v in w[1:]])
    assert _no_overlap(_boxes(fig, [t for ax in fig.axes for t in ax.get_yticklabels()]))


def test_suite_bars_stay_linear_bars_within_a_decade(figures, tmp_path):
    cells = [_cell("zoo:a", "ort", 5.0), _cell("zoo:a", "tvm", 9.0)]
    suite_plots.plot_suite(_suite(cells), tmp_path / "t")
    ax = figures[0].axes[0]
    assert ax.get_xscale() == "linear" and ax.get_xlim()[0] == 0
    assert sorted(p.get_width() for p in ax.patches) == pytest.approx([5.0, 9.0])


def test_a_sweep_has_no_panel_for_a_model_that_measured_nothing(figures, tmp_path):
    cells = [_cell("zoo:a", "ort", 5.0), _cell("zoo:c", "ort", 0, error="x")]
    run = _suite(cells)
    run.spec = SuiteSpec(**{**run.spec.__dict__, "batches": (1, 2)})
    suite_plots.plot_suite(run, tmp_path / "t")
    assert [ax.get_title() for ax in figures[0].axes] == ["a"]
    assert "no cell measured (no panel): c" in figures[0]._suptitle.get_text()


# -- latency vs quality -------------------------------------------------------------------------
@pytest.fixture
def far_summary():
    """The search fixture with three trials far over a 1-point budget (as pruned candidates
    that ended at 30-50% agreement)."""
    s = copy.deepcopy(json.loads((FIXTURES / "search_summary_example.json").read_text()))
    shown = [t for t in s["trials"] if t["state"] == "complete" and t["duplicate_of"] is None
             and t["per_image_ms"] is not None and t["drop"] is not None]
    for t, drop in zip([t for t in shown if t["label"] != s["winner"]][:3], (73.3, 49.2, 51.6)):
        t["drop"], t["feasible"] = drop, False
    s["max_drop"] = 1.0
    return s


def test_drop_window_keeps_the_budget_region_readable():
    assert drop_window([0.0, 0.5, 0.9], 1.0) == (None, None)          # nothing far: all on the axis
    assert drop_window([60.0, 70.0], 1.0) == (None, None)             # everything far: nothing to zoom on
    cutoff, (bottom, top) = drop_window([-0.3, 0.0, 1.7, 9.9, 73.0], 1.0)
    assert cutoff == 3.0
    pad = 0.12 * (1.7 + 0.3)
    assert (bottom, top) == pytest.approx((-0.3 - pad, 1.7 + pad))
    assert drop_window([0.0, 2.5, 40.0], 0.0)[0] == 3.0                # a zero budget still zooms


def test_far_trials_are_off_the_plot_and_labels_never_overlap(figures, far_summary, tmp_path):
    plots.plot_latency_vs_quality(far_summary, tmp_path / "p.png")
    fig = figures[0]
    ax = fig.axes[0]
    bottom, top = ax.get_ylim()
    assert top < 5 and bottom <= 0 <= far_summary["max_drop"] <= top  # not 0-75 with the budget a sliver
    # The far trials sit on the top edge; the key says so for exactly them.
    pinned = [tuple(c.get_offsets()[0]) for c in ax.collections if len(c.get_offsets()) == 1
              and c.get_offsets()[0][1] == top]
    far = sorted(t["per_image_ms"] for t in far_summary["trials"] if (t["drop"] or 0) > 3)
    assert sorted(x for x, _ in pinned) == pytest.approx(far)
    key = next(t.get_text() for t in ax.texts if not isinstance(t, Annotation)).splitlines()
    assert [float(line.split("drop ")[1].split()[0]) > 3 for line in key] == ["off the plot" in line for line in key]
    assert sum("off the plot" in line for line in key) == len(far) >= 3
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"{len(far)} off the plot: drop > 3 points (see the key)" in legend
    labels = [t for t in ax.texts if isinstance(t, Annotation)]
    assert labels[0].get_text() == f"#{next(t['number'] for t in far_summary['trials'] if t['label'] == far_summary['winner'])} chosen"
    assert len(labels) > 10 and _no_overlap(_boxes(fig, labels))


# -- label placer -------------------------------------------------------------------------------
def test_the_placer_never_overlaps_and_reports_what_did_not_fit():
    fig, ax = plots._figure((3, 2))
    ax.set_xlim(0, 10)
    ax.set_ylim(0, 10)
    rng = np.random.default_rng(0)
    xy = rng.uniform(4, 6, size=(60, 2))               # a crowd in the middle
    ax.scatter(xy[:, 0], xy[:, 1], s=16)
    labels = [Label(x, y, f"layer {i}") for i, (x, y) in enumerate(xy)]
    left_out = place_labels(ax, labels, points=[(x, y, 3.0) for x, y in xy])
    placed = [t for t in ax.texts]
    assert len(placed) + len(left_out) == 60 and left_out and len(placed) > 5
    boxes = _boxes(fig, placed)
    assert _no_overlap(boxes)
    frame = ax.get_window_extent(fig.canvas.get_renderer())
    assert all(frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1 for b in boxes)
    assert [t.get_text() for t in placed][0] == "layer 0"  # priority order: the first always fits
    naive = [ax.annotate(f"layer {i}", (x, y)) for i, (x, y) in enumerate(xy[:10])]
    assert not _no_overlap(_boxes(fig, naive))            # what the check catches without the placer


# -- roofline -----------------------------------------------------------------------------------
def _row(name, macs, moved, ms, level=None):
    ai = 2 * macs / moved
    roof = attainable_gflops(ai, 40.0, 10.0)
    achieved = 2 * macs / ms / 1e6
    extra = {}
    if level:
        lvl_roof = attainable_gflops(ai, 40.0, 100.0)
        extra = {"level": level, "level_attainable_gflops": lvl_roof, "level_roof_pct": 100 * achieved / lvl_roof,
                 "level_bound": "memory"}
    return RooflineRow(name, "Conv", macs, moved, ai, roof, ms, achieved, 100 * achieved / roof,
                       "compute" if ai >= 4 else "memory", "timed", **extra)


def _roof(source, rows):
    device = DeviceProfile(name="test box", source=source, cores=1, peak_gflops={"fp32": {1: 40.0}},
                           bandwidth_gbs={"copy": 10.0, "triad": 10.0})
    return Roofline("m", "ort", 1, 1, 10, device, "fp32", 40.0, 10.0, 1.0, tuple(rows),
                    {"L2": 100.0} if any(r.level != "-" for r in rows) else {})


def test_layers_above_their_roof_are_flagged_in_the_result_and_on_the_plot(figures, tmp_path):
    rows = [_row("/conv1/Conv", 10_000_000, 100_000, 0.25),   # AI 200, 80 GFLOP/s under a 40 roof: 200%
            _row("/conv2/Conv", 10_000_000, 100_000, 1.0),    # 20 GFLOP/s: 50%, fine
            _row("/fc/Gemm", 1_000_000, 1_000_000, 0.05)]     # AI 2, 40 GFLOP/s under a 20 roof: 200%
    roof = _roof("measured", rows)
    assert [r.name for r in roof.above_roof] == ["/conv1/Conv", "/fc/Gemm"]
    assert roof.note == ("2 layers measured above the roof (up to 200% of it): the roof (peak GFLOP/s or "
                         "bandwidth) was under-measured; re-run `edgeopt machine`")
    assert roof.to_dict()["note"] == roof.note and roof.to_dict()["above_roof"] == ["/conv1/Conv", "/fc/Gemm"]
    roofline_plot.plot_roofline(roof, tmp_path / "r.png")
    fig = figures[0]
    ax = fig.axes[0]
    rings = [c for c in ax.collections if len(c.get_offsets()) and not len(c.get_facecolors())]
    assert len(rings) == 1
    assert sorted(map(tuple, rings[0].get_offsets())) == sorted((r.intensity, r.achieved_gflops)
                                                               for r in roof.above_roof)
    assert "2 layers above their roof (see the note below)" in [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.get_text() == "note: " + roof.note for t in fig.texts)
    assert _no_overlap(_boxes(fig, [t for t in ax.texts]))


def test_a_layer_under_its_cache_level_roof_is_not_above_the_roof():
    # Above the DRAM roof (its data stays in L2), under the L2 roof: the cache explains it.
    roof = _roof("measured", [_row("/fc/Gemm", 1_000_000, 1_000_000, 0.05, level="L2")])
    assert roof.rows[0].roof_pct > 100 and roof.above_roof == () and roof.note is None


def test_a_datasheet_roof_is_not_called_under_measured():
    note = above_roof_note(1, 442.0, "datasheet")
    assert note.startswith("1 layer measured above the roof (up to 442% of it): the datasheet roofs")
    assert "re-run" not in note and above_roof_note(0, 0.0, "measured") is None


# -- prune plots --------------------------------------------------------------------------------
def test_utilization_panels_share_one_range_and_count_whole_channels(figures, tmp_path):
    util = {"a": np.array([0.0, 0.02, 0.5, 0.6]), "b": np.array([0.9, 1.4, 1.5])}
    plots.plot_utilization_histograms(util, tmp_path / "u.png")
    axes = figures[0].axes
    assert axes[0].get_xlim() == axes[1].get_xlim() and axes[0].get_xlim()[1] >= 1.5
    assert all(float(v).is_integer() for ax in axes for v in ax.get_yticks())
    assert "pruning threshold 0.05" in figures[0]._suptitle.get_text()
    # No bar straddles the threshold; the bars left of it count exactly the pruned channels.
    bars = [b for b in axes[0].patches if b.get_height() > 0]
    assert not any(b.get_x() < 0.05 < b.get_x() + b.get_width() - 1e-9 for b in bars)
    assert sum(b.get_height() for b in bars if b.get_x() < 0.05) == 2


def test_sensitivity_legend_lists_the_most_sensitive_layer_first_in_distinct_hues(figures, tmp_path):
    from edgeopt.passes.diagnostics.sensitivity import SensitivityResult

    res = SensitivityResult(baseline=100.0, ratios=(0.1, 0.5), quality={"x": [99.0, 95.0], "y": [90.0, 60.0]},
                            channels={"x": 8, "y": 16})
    plots.plot_sensitivity(res, tmp_path / "s.png")
    ax = figures[0].axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["y (16 ch)", "x (8 ch)"]
    assert ax.lines[0].get_color() != ax.lines[1].get_color()
