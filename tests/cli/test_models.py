"""``edgeopt info`` on a model with ops no backend runs: described, with one warning line."""

from __future__ import annotations

import onnx

from hostile.test_inputs import custom_domain_model
from support import run_cli


def test_info_describes_a_model_no_backend_runs_with_a_warning(monkeypatch, capsys, tmp_path):
    path = tmp_path / "custom.onnx"
    onnx.save(custom_domain_model(), str(path))
    code, out, err = run_cli(monkeypatch, capsys, "info", str(path))
    assert code == 0, err
    assert "FancyRelu" in out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("edgeopt: warning: no backend runs")
    assert "FancyRelu (domain com.example.custom)" in lines[0]


def test_info_describes_a_model_too_large_to_run_without_running_it(monkeypatch, capsys, tmp_path):
    from hostile.test_inputs import huge_dims_model

    path = tmp_path / "huge.onnx"
    onnx.save(huge_dims_model(), str(path))
    code, out, err = run_cli(monkeypatch, capsys, "info", str(path))
    assert code == 0, err
    assert "3x50000x50000" in out and "Traceback" not in err
