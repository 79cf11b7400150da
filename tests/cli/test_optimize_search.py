"""`edgeopt optimize --search` through the real entry point: outputs, resume, bad input."""

from __future__ import annotations

import json

import pytest

from edgeopt.data.digits import digits_set
from edgeopt.data.images import save_image_folder

from support import assert_one_line_error, run_cli



@pytest.fixture(scope="module")
def digit_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("digits")
    test = save_image_folder(digits_set("test").subset(range(0, 359, 3)), root / "test")
    train = save_image_folder(digits_set("train").subset(range(0, 1438, 10)), root / "train")
    return test, train


@pytest.mark.slow
def test_search_writes_the_front_and_refuses_to_overwrite_a_study(monkeypatch, capsys, tmp_path, digit_folders,
                                                                  one_torch_thread):
    test, train = digit_folders
    out = tmp_path / "out"
    args = ["optimize", "zoo:seednet-digits", "--images", str(test), "--calib", str(train), "--search",
            "--budget", "45s", "--backends", "ort", "--threads", "1", "--prune-targets", "", "--seconds", "0.2",
            "--out", str(out)]
    code, stdout, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    # The same kinds of outputs as the grid's, and the study to resume.
    for name in ("model.onnx", "deploy.json", "candidates.json", "pareto.json", "latency_vs_quality.png",
                 "report.md", "report.html", "study.db"):
        assert (out / name).exists(), name
    summary = json.loads((out / "candidates.json").read_text())
    assert summary["strategy"] == "search"
    assert json.loads((out / "pareto.json").read_text())["pareto"] == summary["pareto"]
    deploy = json.loads((out / "deploy.json").read_text())
    assert deploy["backend"] == "ort" and deploy["threads"] == 1 and deploy["batch"] == 1
    assert deploy["recipe"] == summary["winner"].split("@")[0]
    assert summary["task"] == "classify" and summary["quality_metric"] == "top-1 agreement and accuracy"
    # How closely the budget holds is tested on an injected clock (tests/optimizer/test_engine.py:
    # test_a_trial_that_does_not_fit_the_time_left_is_not_started), not on this machine's load.
    assert summary["budget_s"] == 45 and summary["elapsed_s"] > 0
    labels = [t["label"] for t in summary["trials"]]
    assert "fp32@ort t1 b1" in labels and "int8-ort-defaults@ort t1 b1" in labels
    assert all(t["feasible"] for t in summary["pareto"])
    measured = {t["label"] for t in summary["trials"] if t["state"] == "complete" and t["duplicate_of"] is None}
    assert len(measured) >= 3  # the hand-picked pair and at least one sampled point, each timed once
    assert "measured in full" in stdout and "alternating re-timing" in stdout
    assert "## Verdict" in (out / "report.md").read_text()
    # The same study again without --resume: one line, nothing replaced.
    before = (out / "deploy.json").read_bytes()
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "already exists", "--resume")
    assert (out / "deploy.json").read_bytes() == before


@pytest.mark.parametrize("option,value,needle", [("--budget", "ten", "bad --budget duration"),
                                                  ("--max-size", "2parsecs", "bad size"),
                                                  ("--objective", "p75", "p50 or p90")])
def test_search_bad_options(monkeypatch, capsys, tmp_path, digit_folders, option, value, needle):
    test, _ = digit_folders
    code, _, err = run_cli(monkeypatch, capsys, "optimize", "zoo:seednet-digits", "--images", str(test),
                           "--search", option, value, "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "out").exists()
