"""The CLI on models that are not image classifiers: --inputs folders of samples and audio,
--shape batch axes, a graph that fixes its batch, and one line where a pass cannot work."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from support import assert_one_line_error, reshape_to_one_row, run_cli, two_inputs_and_state


@pytest.fixture
def state_model(tmp_path):
    path = tmp_path / "state.onnx"
    path.write_bytes(two_inputs_and_state().SerializeToString())
    return path


@pytest.fixture
def state_samples(tmp_path):
    root = tmp_path / "samples"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        np.savez(root / f"{i}.npz", a=rng.standard_normal(4).astype(np.float32),
                 b=rng.standard_normal(4).astype(np.float32))
    np.savez(root / "fixed.npz", h=np.zeros((2, 1, 3), np.float32))
    return root


def test_info_shows_each_inputs_batch_axis(monkeypatch, capsys, state_model):
    code, out, err = run_cli(monkeypatch, capsys, "info", str(state_model))
    assert code == 0, err
    assert "input  h: 2xNx3 float32 (N: the batch, axis 1)" in out and "batch: any" in out
    code, out, err = run_cli(monkeypatch, capsys, "info", str(state_model), "--shape", "h=2x1x3:nobatch")
    assert code == 0, err
    assert "input  h: 2x1x3 float32 (no batch axis: fed as is)" in out
    assert "batch: any" in out  # (N, 3) + a state summed to (1, 3) broadcasts at any batch


def test_info_says_a_graph_fixes_its_batch(monkeypatch, capsys, tmp_path):
    path = tmp_path / "fixed.onnx"
    path.write_bytes(reshape_to_one_row().SerializeToString())
    code, out, err = run_cli(monkeypatch, capsys, "info", str(path))
    assert code == 0, err
    assert "batch: 1 only (Reshape 'flatten_batch1' sets the batch axis to the literal 1" in out
    assert "evaluated and timed at batch 1" in out
    assert "onnxruntime" not in err  # the failing batch-2 run logs nothing


def test_apply_on_a_model_with_several_inputs(monkeypatch, capsys, tmp_path, state_model, state_samples):
    out_file = tmp_path / "dyn.onnx"
    code, out, err = run_cli(monkeypatch, capsys, "apply", str(state_model), "--passes", "int8-dynamic",
                             "--out", str(out_file))
    assert code == 0, err
    assert onnx.load(str(out_file)).graph.input[2].name == "h"
    code, _, err = run_cli(monkeypatch, capsys, "apply", str(state_model), "--passes", "int8-static",
                           "--images", str(state_samples), "--out", str(tmp_path / "static.onnx"))
    assert_one_line_error(code, err, "pass int8-static calibrates single-input models", "int8-dynamic or fp16")
    assert not (tmp_path / "static.onnx").exists()


def test_preprocessing_options_for_samples_are_refused(monkeypatch, capsys, tmp_path, state_model, state_samples):
    code, _, err = run_cli(monkeypatch, capsys, "apply", str(state_model), "--passes", "int8-static", "--images",
                           str(state_samples), "--mean", "0.5", "--out", str(tmp_path / "o.onnx"))
    assert_one_line_error(code, err, "--mean preprocess images", "drop it")


def test_images_and_inputs_together_are_refused(monkeypatch, capsys, tmp_path, state_model, state_samples):
    code, _, err = run_cli(monkeypatch, capsys, "optimize", str(state_model), "--images", str(state_samples),
                           "--inputs", str(state_samples), "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "give one")


def test_a_bad_sample_file_is_one_line(monkeypatch, capsys, tmp_path, state_model, state_samples):
    np.savez(state_samples / "99.npz", a=np.zeros(5, np.float32), b=np.zeros(4, np.float32))
    code, _, err = run_cli(monkeypatch, capsys, "optimize", str(state_model), "--inputs", str(state_samples),
                           "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "99.npz holds 5 for input 'a', which takes 4 per sample")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_optimize_a_fixed_batch_graph_on_npy_samples(monkeypatch, capsys, tmp_path):
    """The issue's raw traceback (batch 8 packed into one row by a literal Reshape) is now a
    note and a run at batch 1."""
    path = tmp_path / "fixed.onnx"
    path.write_bytes(reshape_to_one_row().SerializeToString())
    root = tmp_path / "x"
    root.mkdir()
    x = np.random.default_rng(0).standard_normal((30, 2, 2)).astype(np.float32)
    for i, xi in enumerate(x):
        np.save(root / f"{i}.npy", xi[None])  # at batch 1: (1, 2, 2)
    code, out, err = run_cli(monkeypatch, capsys, "optimize", str(path), "--inputs", str(root), "--batch", "8",
                             "--backends", "ort", "--prune-targets", "", "--seconds", "0.1",
                             "--out", str(tmp_path / "out"))
    assert code == 0, err
    summary = json.loads((tmp_path / "out" / "candidates.json").read_text())
    assert summary["batch"] == 1 and any("runs at batch 1 only" in n for n in summary["notes"])
    assert all(t["label"].endswith(" b1") for t in summary["trials"])
    deploy = json.loads((tmp_path / "out" / "deploy.json").read_text())
    assert deploy["inputs"][0]["batch_axis"] == 0 and deploy["batch"] == 1
