"""A model saved with its weights as ONNX external data works in every command that reads
a model (issue 15: it used to be refused as "not regular file")."""

from __future__ import annotations

import json

import onnx

from hostile.harness import conv_model
from support import run_cli


def _external(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    path = folder / "net.onnx"
    onnx.save(conv_model(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="net.weights", size_threshold=0)
    return path


def test_info_bench_and_apply_run_a_model_with_external_data(monkeypatch, capsys, tmp_path):
    path = _external(tmp_path)
    files = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    code, out, err = run_cli(monkeypatch, capsys, "info", str(path))
    assert code == 0, err
    assert "Conv" in out and "Gemm" in out
    code, out, err = run_cli(monkeypatch, capsys, "bench", str(path), "--budget", "10", "--out", str(tmp_path / "b"))
    assert code == 0, err
    cell = json.loads((tmp_path / "b" / "bench.json").read_text())["results"][0]
    assert cell["error"] is None and cell["latencies_ms"]
    out_file = tmp_path / "applied" / "net.onnx"
    code, out, err = run_cli(monkeypatch, capsys, "apply", str(path), "--passes", "cleanup", "--out", str(out_file))
    assert code == 0, err
    # The model written carries its weights inside: it loads with no data file beside it.
    assert sorted(p.name for p in out_file.parent.iterdir()) == ["net.onnx"]
    proto = onnx.load(str(out_file), load_external_data=False)
    assert not any(t.external_data for t in proto.graph.initializer)
    onnx.checker.check_model(proto)
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == files
