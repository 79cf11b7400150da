"""Issue 6's measurement: the hardware-aware analysis of zoo:seednet, ResNet-18 and MobileNetV2.

Runs, as a user would, ``edgeopt machine`` (this CPU's profile, saved for the others),
then for each model ``edgeopt roofline``, ``edgeopt energy --compare int8,pruned50``,
``edgeopt dataflow --buffer 256KiB`` and ``edgeopt convalgo``, keeping each command's JSON
(and the roofline plot) under results/hardware/ and its printed tables in
results/hardware/MODEL.txt:

    python benchmarks/hardware_analysis.py [--models zoo:seednet,zoo:resnet18,zoo:mobilenet-v2]
        [--steps machine,roofline,energy,dataflow,convalgo]

``--steps`` re-runs a part (e.g. ``machine,roofline`` after a change to the roofs); a
step left out keeps its earlier files (the others read results/hardware/device.json).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

STEPS = ("machine", "roofline", "energy", "dataflow", "convalgo")


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
    ap.add_argument("--steps", default=",".join(STEPS), help="comma-separated subset of " + ",".join(STEPS))
    args = ap.parse_args()
    steps = args.steps.split(",")
    if unknown := set(steps) - set(STEPS):
        raise SystemExit(f"hardware_analysis: unknown steps {sorted(unknown)}: use {','.join(STEPS)}")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    device = out / "device.json"
    if "machine" in steps:
        with open(out / "machine.txt", "w") as log:
            run(["machine", "--out", str(device)], log)
    for ref in args.models.split(","):
        name = ref.removeprefix("zoo:")
        commands = {
            "roofline": [["roofline", ref, "--device", str(device), "--out", str(out / f"{name}-roofline")]],
            "energy": [["energy", ref, "--device", str(device), "--compare", "int8,pruned50",
                        "--out", str(out / f"{name}-energy.json")],
                       ["energy", ref, "--device", "raspberry-pi-4", "--out", str(out / f"{name}-energy-pi4.json")]],
            "dataflow": [["dataflow", ref, "--buffer", "256KiB", "--device", str(device),
                          "--out", str(out / f"{name}-dataflow.json")]],
            "convalgo": [["convalgo", ref, "--repeats", "5", "--out", str(out / f"{name}-convalgo.json")]],
        }
        # MODEL.txt keeps every step's printed tables: a partial run replaces only its own.
        sections = _sections(out / f"{name}.txt")
        for step, cmds in commands.items():
            if step not in steps:
                continue
            with open(out / f".{name}.{step}.txt", "w") as log:
                for cmd in cmds:
                    run(cmd, log)
            sections[step] = (out / f".{name}.{step}.txt").read_text()
            (out / f".{name}.{step}.txt").unlink()
        (out / f"{name}.txt").write_text("".join(sections[s] for s in STEPS[1:] if s in sections))


def _sections(path: Path) -> dict[str, str]:
    """A MODEL.txt split into its steps (each starts with a "$ edgeopt STEP" line)."""
    sections: dict[str, str] = {}
    if path.exists():
        step = None
        for line in path.read_text().splitlines(keepends=True):
            if line.startswith("$ edgeopt "):
                step = line.split()[2]
            if step:
                sections[step] = sections.get(step, "") + line
    return sections

if __name__ == "__main__":
    main()
