"""Issue 6's measurement: the hardware-aware analysis of zoo:seednet, ResNet-18 and MobileNetV2.

Runs, as a user would, ``edgeopt machine`` (this CPU's profile, saved for the others),
then for each model ``edgeopt roofline``, ``edgeopt energy --compare int8,pruned50``,
``edgeopt dataflow --buffer 256KiB`` and ``edgeopt convalgo``, keeping each command's JSON
(and the roofline plot) under results/hardware/ and its printed tables in
results/hardware/MODEL.txt:

    python benchmarks/hardware_analysis.py [--models zoo:seednet,zoo:resnet18,zoo:mobilenet-v2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def run(args: list[str], log) -> None:
    cmd = [sys.executable, "-m", "edgeopt.cli", *args]
    print("$", " ".join(args), flush=True)
    log.write(f"$ edgeopt {' '.join(args)}\n")
    log.flush()
    subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "200"})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="zoo:seednet,zoo:resnet18,zoo:mobilenet-v2")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "hardware")
    args = ap.parse_args()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = out / "device.json"
    with open(out / "machine.txt", "w") as log:
        run(["machine", "--out", str(device)], log)
    for ref in args.models.split(","):
        name = ref.removeprefix("zoo:")
        with open(out / f"{name}.txt", "w") as log:
            run(["roofline", ref, "--device", str(device), "--out", str(out / f"{name}-roofline")], log)
            run(["energy", ref, "--device", str(device), "--compare", "int8,pruned50",
                 "--out", str(out / f"{name}-energy.json")], log)
            run(["energy", ref, "--device", "raspberry-pi-4", "--out", str(out / f"{name}-energy-pi4.json")], log)
            run(["dataflow", ref, "--buffer", "256KiB", "--device", str(device),
                 "--out", str(out / f"{name}-dataflow.json")], log)
            run(["convalgo", ref, "--repeats", "5", "--out", str(out / f"{name}-convalgo.json")], log)


if __name__ == "__main__":
    main()
