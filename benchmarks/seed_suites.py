"""Issue 5's measurement: the two seed studies reproduced here, each within its budget.

Runs ``edgeopt suite seed-rpi --budget 10m`` and ``edgeopt suite seed-nnpack --budget 20m``
exactly as a user would (one process each, so no state is shared), keeps each report,
suite.json and plots under results/suite-NAME/, and writes results/seed_suites.json with
the wall time of each command against its budget:

    python benchmarks/seed_suites.py [--suites seed-rpi,seed-nnpack]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from _results import write_results
from edgeopt._util.options import parse_duration

BUDGETS = {"seed-rpi": "10m", "seed-nnpack": "20m", "mobile": "10m"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suites", default="seed-rpi,seed-nnpack")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "seed_suites.json")
    args = ap.parse_args()
    rows = []
    for name in args.suites.split(","):
        out = args.out.parent / f"suite-{name}"
        cmd = [sys.executable, "-m", "edgeopt.cli", "suite", name, "--budget", BUDGETS[name], "--out", str(out)]
        print("$", " ".join(cmd), flush=True)
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True)
        wall = time.perf_counter() - t0
        doc = json.loads((out / "suite.json").read_text())
        cells = doc["results"]
        rows.append({"suite": name, "budget_s": parse_duration(BUDGETS[name]), "wall_s": wall,
                     "elapsed_s": doc["meta"]["elapsed_s"], "cells": len(cells),
                     "measured": sum(1 for c in cells if c["latencies_ms"]),
                     "skipped": sum(1 for c in cells if c["cell"]["skipped"])})
    md = ["| suite | budget s | command wall s | cells | measured | skipped |", "|---|---|---|---|---|---|"]
    md += [f"| {r['suite']} | {r['budget_s']:.0f} | {r['wall_s']:.0f} | {r['cells']} | {r['measured']} | "
           f"{r['skipped']} |" for r in rows]
    write_results(args.out, {"runs": rows}, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
