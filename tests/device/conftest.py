"""A real local device cluster on loopback: a TLS scheduler and two boards, each its own process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from edgeopt.device.certs import make_certs  # noqa: E402

EDGEOPT = [sys.executable, "-m", "edgeopt.cli"]
START_TIMEOUT_S = 60.0


class Process:
    """A command in its own process, its output in a file; waits for a line that starts with ``ready``."""

    def __init__(self, argv: list[str], log: Path, ready: str) -> None:
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=log.open("w"), stderr=subprocess.STDOUT,
                                     env={**os.environ, "COLUMNS": "200"})
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = next((x for x in log.read_text().splitlines() if x.startswith(ready)), None)
            if line is not None:
                self.line = line
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{' '.join(argv)} did not start:\n{log.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """(scheduler address, tls folder, {board name: its serve Process}): a TLS scheduler on
    loopback and two boards of kind "twin", board-b restricted to one core with taskset."""
    tmp = tmp_path_factory.mktemp("cluster")
    tls = make_certs(tmp / "tls", days=2)
    scheduler = Process([*EDGEOPT, "device", "scheduler", "--port", "0", "--tls", str(tls)],
                        tmp / "scheduler.log", "scheduler at ")
    address = scheduler.line.split()[-1]
    boards = {}
    try:
        for name, pin in (("board-a", []), ("board-b", ["taskset", "-c", "0"] if shutil.which("taskset") else [])):
            boards[name] = Process([*pin, *EDGEOPT, "device", "serve", "--name", name, "--kind", "twin",
                                    "--scheduler", address, "--tls", str(tls)], tmp / f"{name}.log", "board ")
        yield address, tls, boards
    finally:
        for p in (*boards.values(), scheduler):
            p.stop()
