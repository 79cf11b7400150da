"""Deploy exactly what was measured: deploy.json carries the measured session's runtime
settings, and load_deployment in a fresh process reproduces the measured outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import edgeopt
from edgeopt.backends.registry import get
from edgeopt.data.digits import digits_set
from edgeopt.data.images import save_image_folder
from edgeopt.errors import EdgeoptError

SRC = str(Path(edgeopt.__file__).resolve().parents[1])

# Runs in a fresh interpreter: load the deployment, run the saved feeds, save the outputs
# and the settings the session reports.
_CHILD = """
import json, sys
import numpy as np
import edgeopt
session = edgeopt.load_deployment(sys.argv[1])
feeds = dict(np.load(sys.argv[2]))
outs = session.run(feeds)
np.savez(sys.argv[3], *outs)
print(json.dumps(session.settings()))
"""


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, one_torch_thread):
    """An optimize run of seednet-digits on ort and openvino into a temp folder."""
    root = tmp_path_factory.mktemp("deploy")
    images = save_image_folder(digits_set("test").subset(range(0, 359, 6)), root / "images")
    out = root / "out"
    mp = pytest.MonkeyPatch()
    try:  # support.run_cli needs capsys, which a module-scoped fixture cannot have
        code = _run_optimize(mp, images, out)
    finally:
        mp.undo()
    assert code == 0
    return out


def _run_optimize(mp, images: Path, out: Path) -> int:
    from edgeopt import cli

    mp.setattr(sys, "argv", ["edgeopt", "optimize", "zoo:seednet-digits", "--images", str(images),
                             "--backends", "ort,openvino", "--threads", "1", "--prune-targets", "",
                             "--seconds", "0.05", "--out", str(out)])
    try:
        cli.main()
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    return 0


@pytest.mark.slow
def test_a_fresh_process_reproduces_the_measured_outputs_and_settings(deployed, tmp_path):
    record = json.loads((deployed / "deploy.json").read_text())
    runtime = record["runtime"]
    assert record["schema"] == 2 and runtime["backend"] == record["backend"] in ("ort", "openvino")
    # The measured session, prepared in-process the way the measurement prepared it.
    model = edgeopt.load_model(str(deployed / "model.onnx"))
    measured = get(record["backend"]).prepare(model, threads=record["threads"])
    assert runtime["settings"] == measured.settings()
    if record["backend"] == "openvino":
        assert runtime["settings"]["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
    else:
        assert runtime["settings"]["graph_optimization_level"] == "ORT_ENABLE_ALL"
    feeds = model.example_feeds(1)
    expected = measured.run(feeds)
    np.savez(tmp_path / "feeds.npz", **feeds)
    child = subprocess.run([sys.executable, "-c", _CHILD, str(deployed / "deploy.json"), str(tmp_path / "feeds.npz"),
                            str(tmp_path / "outs.npz")], capture_output=True, text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": SRC})
    assert child.returncode == 0, child.stderr
    assert json.loads(child.stdout.strip().splitlines()[-1]) == runtime["settings"]
    got = np.load(tmp_path / "outs.npz")
    assert len(got.files) == len(expected)
    for i, want in enumerate(expected):
        np.testing.assert_allclose(got[f"arr_{i}"], want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_settings_round_trip_and_are_applied(backend):
    model = edgeopt.load_model("zoo:seednet")
    be = get(backend)
    settings = be.prepare(model, threads=1).settings()
    assert be.prepare_with(model, settings).settings() == settings
    # A setting other than edgeopt's default is applied, not replaced by the default.
    changed = json.loads(json.dumps(settings))
    if backend == "ort":
        changed["graph_optimization_level"] = "ORT_DISABLE_ALL"
        changed["intra_op_num_threads"] = 2
    else:
        changed["properties"]["INFERENCE_NUM_THREADS"] = "2"
    session = be.prepare_with(model, changed)
    assert session.settings() == changed and session.threads == 2


def test_openvino_records_the_fp32_precision_hint():
    settings = get("openvino").prepare(edgeopt.load_model("zoo:seednet"), threads=1).settings()
    assert settings["device"] == "CPU"
    assert settings["properties"]["INFERENCE_PRECISION_HINT"] == "f32"
    assert settings["properties"]["PERFORMANCE_HINT"] == "LATENCY"
    assert settings["properties"]["NUM_STREAMS"] == "1"


def test_unknown_settings_are_one_line_errors():
    model = edgeopt.load_model("zoo:seednet")
    with pytest.raises(EdgeoptError, match="unknown to onnxruntime"):
        get("ort").prepare_with(model, {"graph_optimization_level": "ORT_ENABLE_EVERYTHING",
                                        "execution_mode": "ORT_SEQUENTIAL", "intra_op_num_threads": 1,
                                        "inter_op_num_threads": 1})
    with pytest.raises(EdgeoptError, match="not a CPU session"):
        get("openvino").prepare_with(model, {"device": "GPU", "properties": {}})
    with pytest.raises(EdgeoptError, match="thread count"):
        get("reference").prepare_with(model, {})


def test_load_deployment_refuses_a_record_without_settings_and_a_swapped_model(tmp_path):
    model = edgeopt.load_model("zoo:seednet")
    model.save(tmp_path / "model.onnx")  # the file holds model.serialized(): its sha256 is model.sha256
    (tmp_path / "deploy.json").write_text(json.dumps({"schema": 1, "model_file": "model.onnx", "backend": "ort"}))
    with pytest.raises(EdgeoptError, match="no runtime settings"):
        edgeopt.load_deployment(tmp_path)
    settings = get("ort").prepare(model, threads=1).settings()
    record = {"schema": 2, "model_file": "model.onnx", "model_sha256": "0" * 64,
              "runtime": {"backend": "ort", "settings": settings}}
    (tmp_path / "deploy.json").write_text(json.dumps(record))
    with pytest.raises(EdgeoptError, match="not the model that was measured"):
        edgeopt.load_deployment(tmp_path / "deploy.json")
    record["model_sha256"] = model.sha256
    (tmp_path / "deploy.json").write_text(json.dumps(record))
    feeds = model.example_feeds(1)
    got = edgeopt.load_deployment(tmp_path).run(feeds)
    want = get("ort").prepare(model, threads=1).run(feeds)
    np.testing.assert_array_equal(got[0], want[0])
