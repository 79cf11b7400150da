"""Issue 16, item 6: does a command end within +5% of its budget, quiet and under load?

Runs each command as a user would (the CLI in a subprocess), once with the machine as it
is and once with one busy-loop process per core started by this script, and records the
wall time against the budget and how many cells were measured:

- ``sweep``: ``edgeopt bench zoo:seednet --backend ort,openvino --batch 1,2,...,64
  --threads 1,2 --budget 20``;
- ``suite``: ``edgeopt suite seed-rpi --budget 60s --no-history`` (one model, every runtime
  installed, batch 1 to 256).

Target: wall time <= 1.05 x budget in both conditions (process start-up and the model's
first load included, so a short budget is the hard case). Writes JSON and a Markdown table:

    python benchmarks/budgets_under_load.py [--commands sweep,suite] [--loads quiet,busy]
        [--out results/budgets_under_load.json]

Not a test: it depends on the machine on purpose (tests use an injected clock).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results  # noqa: E402

HERE = Path(__file__).parent
EDGEOPT = [sys.executable, "-m", "edgeopt.cli"]


def _commands(tmp: Path) -> dict[str, tuple[list[str], float, Path]]:
    """name -> (argv, budget in s, the JSON file that lists its cells)."""
    return {
        "sweep": (EDGEOPT + ["bench", "zoo:seednet", "--backend", "ort,openvino", "--batch", "1,2,4,8,16,32,64",
                             "--threads", "1,2", "--budget", "20", "--out", str(tmp / "bench")],
                  20.0, tmp / "bench" / "bench.json"),
        "suite": (EDGEOPT + ["suite", "seed-rpi", "--budget", "60s", "--no-history", "--out", str(tmp / "suite")],
                  60.0, tmp / "suite" / "suite.json"),
    }


def _busy() -> None:
    while True:
        pass


def _run(argv: list[str], budget: float, cells: Path) -> dict:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    results = json.loads(cells.read_text())["results"] if cells.exists() else []
    measured = sum(1 for r in results if not r.get("error"))
    return {"budget_s": budget, "wall_s": wall, "ratio": wall / budget, "within_5pct": wall <= 1.05 * budget,
            "cells": len(results), "measured": measured, "exit": proc.returncode,
            "stderr_tail": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--commands", default="sweep,suite")
    ap.add_argument("--loads", default="quiet,busy", help="quiet, busy (one busy loop per core) or both")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "budgets_under_load.json")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        commands = _commands(Path(tmp))
        for load in args.loads.split(","):
            hogs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(os.cpu_count() or 1)
                    ] if load == "busy" else []
            for h in hogs:
                h.start()
            try:
                for name in args.commands.split(","):
                    argv, budget, cells = commands[name]
                    rows.append({"command": name, "load": load, **_run(argv, budget, cells)})
            finally:
                for h in hogs:  # only the processes this script started
                    h.terminate()
                    h.join()
    md = ["| command | load | budget s | wall s | wall / budget | within +5% | cells measured |",
          "|---|---|---|---|---|---|---|"]
    md += [f"| {r['command']} | {r['load']} | {r['budget_s']:.0f} | {r['wall_s']:.1f} | {r['ratio']:.3f} | "
           f"{'yes' if r['within_5pct'] else 'NO'} | {r['measured']} of {r['cells']} |" for r in rows]
    write_results(args.out, {"rows": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
