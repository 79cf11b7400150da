"""The lean install a board takes: ``pip install 'edgeopt[device]'`` in a fresh venv."""

from __future__ import annotations

import os
import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = ("torch", "nncf", "tvm", "matplotlib", "openvino", "onnxruntime", "optuna", "scipy")


@pytest.mark.slow
def test_the_device_extra_installs_no_workstation_library(tmp_path):
    # The venv's own edgeopt, not this checkout's src on PYTHONPATH.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = partial(subprocess.run, env=env, cwd=tmp_path)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    py, cli = venv / "bin" / "python", venv / "bin" / "edgeopt"
    pip = run([py, "-m", "pip", "install", "-q", f"{ROOT}[device]"], capture_output=True, text=True,
                         timeout=900)
    assert pip.returncode == 0, pip.stderr[-3000:]
    found = run([py, "-c", "import importlib.util as u, sys; "
                                      f"print(' '.join(m for m in {LEFT_OUT!r} if u.find_spec(m)))"],
                           capture_output=True, text=True, timeout=120)
    assert found.returncode == 0 and found.stdout.strip() == "", found.stdout + found.stderr
    assert run([py, "-c", "import edgeopt, distributed"], timeout=120).returncode == 0
    help_ = run([cli, "device", "serve", "--help"], capture_output=True, text=True, timeout=120)
    assert help_.returncode == 0 and "--scheduler" in help_.stdout and "--kind" in help_.stdout
    # A workstation command names the extra it needs, in one line, exit 2.
    bench = run([cli, "bench", "zoo:seednet"], capture_output=True, text=True, timeout=120)
    assert bench.returncode == 2 and bench.stderr.count("\n") == 1, bench.stderr
    assert "pip install 'edgeopt[" in bench.stderr
