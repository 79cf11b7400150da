"""The ``optimize --search`` side of the CLI: option parsing, worker processes, the summary.

Kept out of cli.py so the command module stays a thin list of commands.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence


from .errors import EdgeoptError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "kib": 1024, "mib": 1024 ** 2,
               "gib": 1024 ** 3}


def _parse_quantity(text: str, pattern: re.Pattern, units: dict[str, float], default_unit: str,
                    what: str, example: str) -> float:
    m = pattern.match(text or "")
    if not m or float(m.group(1)) <= 0:
        raise EdgeoptError(f"bad {what} {text!r}: give {example}")
    return float(m.group(1)) * units[(m.group(2) or default_unit).lower()]


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "10m", "1.5h".

    Raises:
        EdgeoptError: not a positive duration.
    """
    return _parse_quantity(text, _DURATION, _DURATION_UNITS, "s", "duration", "e.g. 600, 90s, 10m or 1h")


def parse_size(text: str) -> int:
    """Bytes from "2000000", "2MB", "500kB", "1.5MiB" (kB/MB/GB are powers of 1000).

    Raises:
        EdgeoptError: not a positive size.
    """
    return int(_parse_quantity(text, _SIZE, _SIZE_UNITS, "b", "size", "bytes or e.g. 500kB, 2MB, 1.5MiB"))


def worker_command(argv: Sequence[str], budget_s: float) -> list[str]:
    """The command line of one extra worker: the same command, resuming the same study,
    running trials only, with the time left as its budget (Click keeps an option's last
    value, so appending overrides)."""
    return [sys.executable, "-m", "edgeopt.cli", *argv, "--resume", "--trials-only",
            "--budget", f"{max(1.0, budget_s):.0f}s"]


def start_workers(n: int, argv: Sequence[str], budget_s: float, log_dir: Path) -> list[subprocess.Popen]:
    """Start ``n`` worker processes on the study the caller just created.

    Each worker's output goes to ``log_dir/worker-K.log``.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    procs = []
    for k in range(n):
        log = open(log_dir / f"worker-{k + 1}.log", "w")
        procs.append(subprocess.Popen(worker_command(argv, budget_s), stdout=log, stderr=subprocess.STDOUT,
                                      env={**os.environ, "EDGEOPT_WORKER": str(k + 1)}))
    return procs


def wait_workers(procs: list[subprocess.Popen], deadline: float) -> list[int]:
    """Wait for the workers until ``deadline`` (monotonic seconds), then stop the rest.

    Returns:
        their exit codes (negative: killed).
    """
    codes = []
    for p in procs:
        try:
            codes.append(p.wait(timeout=max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            p.terminate()
            codes.append(p.wait())
    return codes
