"""The lean install a board takes: ``pip install 'edgeopt[device,ort]'`` in a fresh venv."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = ("torch", "nncf", "tvm", "matplotlib", "openvino", "optuna", "scipy", "PIL", "sklearn")


@pytest.mark.slow
def test_the_device_extra_installs_no_workstation_library(tmp_path):
    # The venv's own edgeopt, not this checkout's src on PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = partial(subprocess.run, env=env, cwd=tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py, cli = venv / "bin" / "python", venv / "bin" / "edgeopt"
    pip = run([py, "-m", "pip", "install", "-q", f"{ROOT}[device,ort]"], capture_output=True, text=True,
              timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    found = run([py, "-c", "import importlib.util as u, sys; "
                                      f"print(' '.join(m for m in {LEFT_OUT!r} if u.find_spec(m)))"],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and found.stdout.strip() == "", found.stdout + found.stderr
    assert run([py, "-c", "import edgeopt, distributed"], timeout=120).returncode == 0
    help_ = run([cli, "device", "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--scheduler" in help_.stdout and "--kind" in help_.stdout
    # The board measures a model as the workstation sends it (torch module left behind), its
    # statistics included, with only the lean install's libraries.
    from edgeopt import load_model
    from edgeopt.device.target import for_board

    (tmp_path / "model.pkl").write_bytes(pickle.dumps(for_board(load_model("zoo:seednet"), {"ort"})))
    measured = run([py, "-c", "import json, pickle; from edgeopt.device.board import measure; "
                              "r = measure(pickle.load(open('model.pkl', 'rb')), 'ort', {'batch': 1, 'threads': 1, "
                              "'min_runs': 5, 'min_time_s': 0.0, 'max_time_s': 10.0}); "
                              "print(json.dumps([r['error'], r['stats']['p50_low'] <= r['stats']['p50'] "
                              "<= r['stats']['p50_high'], r['machine']['device']['pid']]))"],
                   capture_output=True, text=True, timeout=300)
    assert measured.returncode == 0, measured.stderr[-3000:]
    error, bracketed, pid = json.loads(measured.stdout.strip().splitlines()[-1])
    assert error is None and bracketed and pid != os.getpid()
    # A workstation command names the extra it needs, in one line, exit 2.
    bench = run([cli, "bench", "zoo:seednet"], capture_output=True, text=True, timeout=120)
    assert bench.returncode == 2 and bench.stderr.count("\n") == 1, bench.stderr
    assert "pip install 'edgeopt[" in bench.stderr
