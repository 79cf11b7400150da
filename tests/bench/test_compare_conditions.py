"""compare weighs the recorded interference: synthetic results, no timing."""

from __future__ import annotations

import numpy as np
import pytest
from rich.console import Console

from edgeopt.bench.compare import compare_results
from edgeopt.bench.harness import BenchResult
from edgeopt.report.compare_table import print_compare

QUIET = {"other_cpu_pct": 2.0, "steal_pct": 0.0, "throttled": None, "pinned": False}
BUSY = {**QUIET, "other_cpu_pct": 96.0}


def _cell(latencies, model, conditions) -> BenchResult:
    return BenchResult(backend="ort", backend_version="1", model=model, model_sha256="ab", batch=1, threads=2,
                       latencies_ms=list(latencies), conditions=dict(conditions))


def test_interference_that_differs_makes_a_cell_not_comparable():
    rng = np.random.default_rng(4)
    base = list(5 + rng.exponential(0.2, 100))
    slow = [v * 2.5 for v in base]
    a = [_cell(base, "loaded", QUIET), _cell(base, "both-busy", BUSY), _cell(base, "old", {}),
         _cell(base, "same", QUIET)]
    b = [_cell(slow, "loaded", BUSY), _cell(slow, "both-busy", BUSY), _cell(slow, "old", QUIET),
         _cell(base, "same", {**QUIET, "other_cpu_pct": 15.0})]
    got = {c.model: c for c in compare_results(a, b)}
    # 2.5x slower, but B ran beside other programs: the ratio is kept, the verdict withheld
    loaded = got["loaded"]
    assert loaded.verdict == "not comparable" and loaded.ratio == pytest.approx(2.5)
    assert loaded.note == "other processes used 2% of the CPU in A, 96% in B"
    assert loaded.interference_checked is True
    # the same interference on both sides: still no verdict (equal load is not equal noise)
    assert got["both-busy"].verdict == "not comparable" and got["both-busy"].ratio == pytest.approx(2.5)
    assert got["both-busy"].note == ("measured under interference (A: other processes used 96% of the CPU; "
                                     "B: other processes used 96% of the CPU): compare runs made on a quieter machine")
    # a side without conditions (a file from before): compared as before, marked unchecked
    assert got["old"].verdict == "B slower" and got["old"].interference_checked is False
    assert got["same"].verdict == "within noise" and got["same"].interference_checked is True

    console = Console(record=True, width=250)
    print_compare(list(got.values()), "a.json", "b.json", console)
    text = console.export_text()
    assert "not comparable (other processes used 2% of the CPU in A, 96% in B)" in text
    assert "1 cell(s) compared without checking interference" in text


def test_runs_fed_different_inputs_keep_their_verdict_and_say_what_each_was_fed():
    rng = np.random.default_rng(5)
    base = list(5 + rng.exponential(0.2, 100))
    a = [_cell(base, "m", QUIET)]
    b = [_cell([v * 2.5 for v in base], "m", QUIET)]
    b[0].inputs = {"kind": "images", "source": "photos/", "samples": 40, "in_folder": 40, "batches": 40}
    (c,) = compare_results(a, b)
    assert c.verdict == "B slower"  # a CNN's time seldom depends on the values: the verdict stands
    assert c.note == "inputs differ (A: random inputs; B: 40 images from photos/)"
    (same,) = compare_results(a, a)
    assert same.note == ""
