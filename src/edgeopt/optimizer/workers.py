"""Extra worker processes for ``edgeopt optimize --search --workers N``.

The first process creates the Optuna study; each extra worker is the same command line
started again with ``--resume --trials-only`` and the time left as its budget, so it adds
trials to the shared study and exits. The first process then chooses and writes. Workers
share this machine's cores, so their timings interfere: the results say so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence


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


class WorkerPool:
    """The extra workers of one search, kept inside its wall-time budget.

    Created when the search starts (the budget's clock starts then). The search calls
    :meth:`start` once the study exists (its ``on_ready``) and :meth:`wait_trials` after
    its sampled trials (``on_trials_done``); the caller calls :meth:`stop` at the end,
    also after an error.

    Args:
        budget_s: the search's whole wall-time budget, seconds.
        reserve_s: the part of it kept for the fallback and the confirmation, seconds:
            workers get the budget minus the reserve, and are stopped half way into it.
        log_dir: folder of the workers' logs (``worker-K.log``).
    """

    def __init__(self, budget_s: float, reserve_s: float, log_dir: Path) -> None:
        self.budget_s, self.reserve_s, self.log_dir = budget_s, reserve_s, log_dir
        self.t0 = time.monotonic()
        self.procs: list[subprocess.Popen] = []

    def start(self, n: int, argv: Sequence[str]) -> None:
        """Start ``n`` workers running ``argv`` (this process's arguments) on the study,
        each with the budget left after the reserve."""
        left = self.budget_s - (time.monotonic() - self.t0) - self.reserve_s
        self.procs.extend(start_workers(n, argv, left, self.log_dir))

    def wait_trials(self) -> list[int]:
        """Wait for the workers' trials until half the reserve is left, then stop them.

        Returns:
            their exit codes (negative: killed).
        """
        return wait_workers(self.procs, self.t0 + self.budget_s - self.reserve_s / 2)

    def stop(self) -> list[int]:
        """Stop the workers still running now (exit codes of all; negative: killed)."""
        return wait_workers(self.procs, time.monotonic())
