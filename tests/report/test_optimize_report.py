"""The report and the plot of ``optimize`` (grid or search), on a real summary
(tests/data/search_summary_example.json: a short search on the digits model)."""

from __future__ import annotations

import base64
import copy
import html
import json
import re
import struct
from pathlib import Path

import pytest

from edgeopt.report.optimize_report import render_html, render_markdown
from edgeopt.report.doc import RowMark
from edgeopt.report.optimize_rows import dimension_rows, measured_path, pareto_marks, trial_marks, trial_rows
from edgeopt.report.plots import plot_latency_vs_quality

from support import FIXTURES

EXAMPLE = FIXTURES / "search_summary_example.json"


@pytest.fixture()
def summary() -> dict:
    return json.loads(EXAMPLE.read_text())


def _md_tables(md: str) -> list[list[list[str]]]:
    """Every Markdown table as rows of cells (header included, separator left out)."""
    tables, current = [], []
    for line in md.splitlines() + [""]:
        if line.startswith("|"):
            if not line.startswith("|---"):
                current.append([c.strip().replace("**", "") for c in line.strip()[1:-1].split(" | ")])
        elif current:
            tables.append(current)
            current = []
    return tables


def _html_tables(page: str) -> list[list[list[str]]]:
    return [[[html.unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row)]
             for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)]
            for table in re.findall(r"<table>(.*?)</table>", page)]


@pytest.fixture()
def png(tmp_path) -> Path:
    """A real 3 x 2 PNG (the HTML embeds the plot's bytes)."""
    from PIL import Image

    path = tmp_path / "pareto.png"
    Image.new("RGB", (3, 2), (200, 10, 10)).save(path)
    return path


def _section(md: str, title: str) -> str:
    return md.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_markdown_names_the_winner_and_the_speedups(summary):
    md = render_markdown(summary, "pareto.png")
    verdict = _section(md, "Verdict")
    assert "Chosen: **int8-nncf-1fp@openvino t1 b1** (#16, 0.957 ms per image" in verdict
    assert "Best hand-picked choice: **int8-nncf@openvino t2 b1** (#3" in verdict
    assert "**fp32@ort t2 b1** (#0" in verdict
    # confirm_ms: 0.912403 / 0.990519 / 1.223503; speedups 1.0856 and 1.3410
    assert "chosen 0.912, hand-picked 0.991, baseline 1.224" in verdict
    assert "**1.09x** faster than the best hand-picked choice" in verdict
    assert "**1.34x** faster than the baseline" in verdict
    assert "/features/features.0/Conv" in verdict  # the winner's layer kept in float
    assert "int8 may be no faster than float32 here" in verdict  # the notes
    assert "![per-image latency vs quality drop](pareto.png)" in md


def test_header_states_machine_budget_and_quality(summary):
    md = render_markdown(summary, None)
    head = md.split("## Verdict", 1)[0]
    assert "AMD EPYC" in head and "avx2" in head
    assert "int8 may not pay here" in head  # isa_int8 is null
    assert "batch 1, 2 threads" in head
    assert "Strategy: search: Optuna's multi-objective TPE sampler" in head
    assert "budget 150 s, used 136.8 s" in head
    assert "at most 0.1 points below the original's 98.89%" in head
    assert "359 held-out inputs" in head and "360 other inputs" in head
    assert "![" not in md  # no plot, no image

    summary["isa_int8"], summary["quality_metric"] = "AVX-512 VNNI", "agreement"
    head = render_markdown(summary, None).split("## Verdict", 1)[0]
    assert "int8 dot product: AVX-512 VNNI" in head and "may not pay" not in head
    assert "agreement >= 99.9%" in head

    # The grid's summary: the same report, no time budget.
    summary["strategy"], summary["budget_s"] = "grid", None
    head = render_markdown(summary, None).split("## Verdict", 1)[0]
    assert "Strategy: grid: every recipe x backend" in head and "no time budget, used 136.8 s" in head


def test_every_trial_appears_once_and_says_why_it_lost(summary):
    md = render_markdown(summary, None)
    table = _md_tables(_section(md, "All trials"))[0]
    assert table[0][0] == "#" and table[0][-1] == "why not chosen"
    numbers = [int(r[0]) for r in table[1:]]
    assert numbers == list(range(30))
    why = {int(r[0]): r[-1] for r in table[1:]}
    assert why[16] == "chosen"
    assert why[8] == why[11] == "repeat of #3"
    assert why[21] == why[22] == why[24] == "repeat of #16"
    assert why[14] == "repeat of #13"
    assert why[2] == "quality drop 0.28 points > budget by 0.18"
    assert why[6].startswith("hopeless: short timing 3.76 ms per image")
    # trial 0: 1.5752 ms per image vs the chosen's 0.956585
    assert why[0] == "slower than the chosen (1.575 ms vs 0.957 ms)"


def test_a_short_timed_rejection_says_its_latency_is_from_a_few_runs(summary):
    rejected = next(t for t in summary["trials"] if t["state"] == "complete" and not t["feasible"]
                    and t["duplicate_of"] is None)
    rejected["timing"] = "short"
    why = {int(r[0]): r[-1] for r in _md_tables(_section(render_markdown(summary, None), "All trials"))[0][1:]}
    assert why[rejected["number"]] == rejected["reason"] + ("; its latency is from a short timing (a few runs: "
                                                             "quality had already ruled it out)")


def test_what_each_change_bought(summary):
    # Baseline fp32@ort t2 (#0) -> openvino (#1) -> int8-nncf (#3) -> 1 thread (#13) -> 1 layer in float (#16).
    assert [t["number"] for t in measured_path(summary)] == [0, 1, 3, 13, 16]
    md = render_markdown(summary, None)
    section = _section(md, "What each change bought")
    path, dims = _md_tables(section)
    # backend: 1.331605 - 1.5752 = -0.243595 ms
    assert path[1][1] == "backend ort -> openvino" and path[1][6] == "-0.244"
    assert path[2][1].startswith("precision fp32 -> int8-nncf (brings cleanup off -> on)")
    # float_layers alone: winner #16 0.956585 - #13 1.026075 = -0.069490 ms, both drop 0
    by_dim = {r[0]: r for r in dims[1:]}
    assert by_dim["float_layers"][3] == "#13 int8-nncf@openvino t1 b1"
    assert by_dim["float_layers"][5:] == ["-0.069", "+0.00"]
    assert by_dim["backend"][3].startswith("not measured")
    assert by_dim["precision"][3].startswith("not measured (#20 fp32-clean@openvino t1 b1 pruned")
    assert "not separable" in by_dim["cleanup"][3]
    assert set(by_dim) == {"cleanup", "precision", "float_layers", "backend", "threads"}
    assert dimension_rows(summary) == [r for r in dims[1:]]


def test_pareto_and_fallback_sections(summary):
    md = render_markdown(summary, None)
    pareto = _md_tables(_section(md, "Pareto front"))[0]
    assert pareto[1] == ["16", "int8-nncf-1fp@openvino t1 b1", "0.957", "4.280", "0.00", "0.95", "chosen"]
    fallback = _section(md, "Accuracy-aware fallback")
    assert "pruned-50+kd/int8-nncf@openvino t1 b1: 0.66 ms but drop 2.79 points" in fallback
    assert "| int8-ort-2fp@openvino t2 b1 | /features/features.0/Conv, /features/features.3/Conv |" in fallback


def test_markdown_and_html_tables_carry_the_same_rows(summary, png):
    md_tables = _md_tables(render_markdown(summary, png))
    html_tables = _html_tables(render_html(summary, png))
    assert len(md_tables) == len(html_tables) == 5
    assert md_tables == html_tables
    assert html_tables[-1][1:] == [[c.replace("**", "") for c in r] for r in trial_rows(summary)]


def test_html_is_escaped_and_self_contained(summary, png):
    s = copy.deepcopy(summary)
    s["model"] = "<script>alert(1)</script>"
    s["notes"] = ["a < b & c"]
    page = render_html(s, png)
    assert "<script>" not in page
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;</code>" in page  # the model's `name` as code
    assert "a &lt; b &amp; c" in page
    embedded = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
    assert f'<img src="{embedded}"' in page and 'src="pareto.png"' not in page
    assert "<strong>1.34x</strong>" in page
    assert "http" not in page and "@import" not in page  # nothing fetched from elsewhere
    text = re.sub(r"<pre>.*?</pre>", "", page, flags=re.S)
    assert "`" not in text and "**" not in text  # Markdown marks all turned into HTML


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_plot_latency_vs_quality(summary, tmp_path):
    out = plot_latency_vs_quality(summary, tmp_path / "sub" / "pareto.png")
    assert out == tmp_path / "sub" / "pareto.png"
    assert out.stat().st_size > 0
    assert _png_size(out) == (1210, 550)  # 11 x 5 inches at 110 dpi


def test_plot_latency_vs_quality_without_complete_trials(summary, tmp_path):
    s = copy.deepcopy(summary)
    for t in s["trials"]:
        t["state"], t["per_image_ms"], t["drop"] = "pruned", None, None
    s["pareto"] = []
    assert plot_latency_vs_quality(s, tmp_path / "pareto.png") is None
    assert not (tmp_path / "pareto.png").exists()


def test_every_report_states_the_baseline_quality(summary):
    # A summary from before baseline_quality: the classifier's accuracy stands in.
    assert "Baseline quality: the original's top-1 accuracy is **98.89%** on the 359 held-out inputs." \
        in render_markdown(summary, None)
    summary["baseline_quality"] = {"task": "detect", "original": 41.5, "unit": "%", "n": 12}
    assert "the original's mAP@0.5 is **41.50%** on the 12 held-out inputs" in render_markdown(summary, None)
    summary["baseline_quality"] = {"task": "regress", "original": 1.25, "unit": "px", "n": 30}
    page = html.unescape(render_html(summary, None))
    assert "the original's mean error is <strong>1.25 px</strong>" in page
    summary["baseline_quality"] = {"task": "outputs", "original": None, "unit": "dB", "n": 30}
    md = render_markdown(summary, None)
    assert "Baseline quality: not stated: the 30 held-out inputs carry no ground truth" in md


def test_trial_rows_are_marked_chosen_rejected_stopped_or_repeat(summary):
    marks = {int(r[0]): m for r, m in zip(trial_rows(summary), trial_marks(summary))}
    assert marks[16] == RowMark("chosen", "the chosen model")
    assert marks[2] == RowMark("rejected", "quality drop 0.28 points > budget by 0.18")
    assert marks[6].kind == "stopped" and marks[6].reason.startswith("hopeless: short timing 3.76 ms")
    assert marks[21] == RowMark("muted", "repeat of #16")
    assert marks[0] is None  # feasible, only slower
    kinds = [m.kind if m else None for m in marks.values()]
    assert kinds.count("chosen") == 1 and kinds.count("stopped") == 3  # #6, #12, #20 stopped early
    # The Pareto front: the chosen row, alone.
    assert [m and m.kind for m in pareto_marks(summary)] == ["chosen"]


def test_the_search_says_when_the_chosen_ran_on_one_runtime_only(summary):
    howto = render_markdown(summary, None).split("## How to run it\n", 1)[1].split("\n## ", 1)[0]
    assert "The chosen model runs on **OpenVINO** with 1 thread at batch 1." in howto
    assert "The chosen model was not measured on another runtime in this run." in howto
    assert "Warning" not in howto
