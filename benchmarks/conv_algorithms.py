"""Do the seed's convolution-algorithm claims hold on this machine? (issue 6, part 5)

The seed article (004, algorithm-hardware co-optimization) says: im2col + GEMM is simple
but duplicates the input; FFT "suits large kernels" (its transforms do not pay off for
small ones); Winograd "suits small kernels" (3x3). This times edgeopt's NumPy
implementations (direct, im2col + GEMM, Winograd F(2x2,3x3) and F(4x4,3x3), full-image
FFT; :mod:`edgeopt.analysis.convalgo`) on a sweep of synthetic stride-1 "same" layers:
kernel 3, 5, 7, 9, 11 x channels (C = M) 16, 32, 64 x spatial 28, 56, 112,
plus four wider 3x3 layers (128 and 256 channels, as in ResNet-18's later stages) to see whether
Winograd's saving overtakes its transform overhead there; batch 1, best of 5 runs, BLAS on
1 thread by default (numpy's FFT is single-threaded, so this is
the like-for-like comparison). It reports per layer which algorithm is fastest and, per
claim, how many layers agree, with the speed-ups. It also measures each algorithm's
float32 error against the ONNX reference Conv in float64 (max |error| / output range),
including Winograd F(4x4,3x3)'s precision loss.

    python benchmarks/conv_algorithms.py [--threads 1] [--budget 240]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from _results import write_results

from edgeopt.analysis.convalgo import ALL, ConvSpec, measure_errors
from edgeopt.analysis.convalgo.analyze import blas_threads
from edgeopt.analysis.convalgo.measure import Budget, measure_layer
from edgeopt.bench.environment import machine_info

KERNELS = (3, 5, 7, 9, 11)
CHANNELS = (16, 32, 64)
SIZES = (28, 56, 112)
WIDE_3X3 = ((128, 28), (128, 56), (256, 14), (256, 28))  # (C = M, spatial): beyond the 16-64 sweep
LARGE_KERNEL = 7  # "large" for the FFT claim: 7x7 and up (the seed gives no number)
PRECISION_LAYERS = [((1, c, 28, 28), (c, c, 3, 3)) for c in (16, 64, 256)] + [((1, 64, 28, 28), (64, 64, 7, 7))]


def sweep_specs() -> list[tuple[str, ConvSpec]]:
    """(set, layer): stride-1 layers with "same" padding (k // 2), C = M, square maps; set
    "sweep" is the kernel x channels x size grid, "wide-3x3" the wider 3x3 layers."""
    same = lambda c, s, k: ConvSpec.of((1, c, s, s), (c, c, k, k), padding=k // 2)  # noqa: E731
    grid = [("sweep", same(c, s, k)) for k in KERNELS for c in CHANNELS for s in SIZES]
    return grid + [("wide-3x3", same(c, s, 3)) for c, s in WIDE_3X3]


def run_sweep(specs: list[tuple[str, ConvSpec]], budget_s: float, repeats: int) -> list[dict]:
    budget = Budget(budget_s, len(specs) * len(ALL))
    rows = []
    for group, spec in specs:
        results = measure_layer(spec, ALL, budget, repeats=repeats)
        ms = {r.algorithm: r.ms for r in results if r.ms is not None}
        rows.append({"set": group, "label": spec.label, "k": spec.kh, "c": spec.c, "size": spec.h,
                     "spec": spec.to_dict(),
                     "ms": ms, "fastest": min(ms, key=ms.get) if ms else None,
                     "mults": {r.algorithm: r.cost.mults for r in results if r.cost},
                     "skipped": {r.algorithm: r.skipped for r in results if r.skipped},
                     "results": [r.to_dict() for r in results]})
    return rows


def _speedup(row: dict, mine: tuple[str, ...]) -> float | None:
    """Best time of the others over the best time of ``mine`` (> 1: ``mine`` is faster)."""
    own = [v for a, v in row["ms"].items() if a in mine]
    rest = [v for a, v in row["ms"].items() if a not in mine]
    return min(rest) / min(own) if own and rest else None


def _claim(rows: list[dict], mine: tuple[str, ...], text: str) -> dict:
    timed = [r for r in rows if r["fastest"]]
    won = [r for r in timed if r["fastest"] in mine]
    speedups = [s for r in timed if (s := _speedup(r, mine)) is not None]
    return {"claim": text, "layers": len(timed), "wins": len(won), "held": len(won) > len(timed) / 2,
            "median_speedup": statistics.median(speedups) if speedups else None,
            "min_speedup": min(speedups, default=None), "max_speedup": max(speedups, default=None)}


def verdicts(all_rows: list[dict]) -> dict:
    """The two seed claims on the sweep, the Winograd claim on the wide 3x3 layers, wins per
    kernel size and the FFT crossover kernel (sweep only)."""
    rows = [r for r in all_rows if r["set"] == "sweep"]
    wide = [r for r in all_rows if r["set"] == "wide-3x3"]
    per_kernel = {}
    for k in KERNELS:
        ks = [r for r in rows if r["k"] == k and r["fastest"]]
        per_kernel[k] = {a: sum(r["fastest"] == a for r in ks) for a in ALL}
    crossover = next((k for k in KERNELS if per_kernel[k]["fft"] * 2 > sum(per_kernel[k].values())), None)
    return {
        "fft_large_kernels": _claim([r for r in rows if r["k"] >= LARGE_KERNEL], ("fft",),
                                    f"FFT is fastest for large kernels ({LARGE_KERNEL}x{LARGE_KERNEL} and up)"),
        "fft_small_kernels": _claim([r for r in rows if r["k"] < LARGE_KERNEL], ("fft",),
                                    f"(counter-check) FFT is fastest for kernels below {LARGE_KERNEL}x{LARGE_KERNEL}"),
        "winograd_3x3": _claim([r for r in rows if r["k"] == 3], ("winograd2", "winograd4"),
                               "Winograd is fastest for 3x3 kernels (16-64 channels)"),
        "winograd_3x3_wide": _claim(wide, ("winograd2", "winograd4"),
                                    "Winograd is fastest for wide 3x3 layers (128-256 channels)"),
        "wins_per_kernel": per_kernel,
        "fft_crossover_kernel": crossover,
    }


def precision() -> list[dict]:
    """Each algorithm's float32 error vs the float64 reference, worst of 3 seeds per layer."""
    out = []
    for x_shape, w_shape in PRECISION_LAYERS:
        spec = ConvSpec.of(x_shape, w_shape, padding=w_shape[2] // 2)
        runs = [measure_errors(spec, seed=s) for s in range(3)]
        worst = {a: max(r[a]["vs_float64"] for r in runs) for a in runs[0]}
        out.append({"label": spec.label, "error_vs_float64": worst})
    return out


def _fmt_ms(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def markdown(rows: list[dict], claims: dict, prec: list[dict], meta: dict) -> str:
    lines = [f"# Convolution algorithms on this machine ({meta['cpu']}, {meta['threads']} BLAS thread(s), "
             f"NumPy {meta['numpy']}, batch 1, best of {meta['repeats']})", "",
             "## Verdict on the seed claims", ""]
    for key in ("fft_large_kernels", "winograd_3x3", "winograd_3x3_wide", "fft_small_kernels"):
        c = claims[key]
        med = "-" if c["median_speedup"] is None else f"{c['median_speedup']:.2f}x"
        rng = "" if c["min_speedup"] is None else f" (range {c['min_speedup']:.2f}-{c['max_speedup']:.2f}x)"
        lines.append(f"- {c['claim']}: **{'held' if c['held'] else 'did not hold'}** - fastest on {c['wins']} of "
                     f"{c['layers']} layers; its best time vs the best other algorithm: median {med}{rng}.")
    lines.append(f"- FFT crossover: the smallest kernel where FFT wins most layers is "
                 f"{claims['fft_crossover_kernel'] or 'none'}.")
    lines += ["", "## Wins per kernel size", "", "| kernel | " + " | ".join(ALL) + " |",
              "|---|" + "---|" * len(ALL)]
    for k, w in claims["wins_per_kernel"].items():
        lines.append(f"| {k}x{k} | " + " | ".join(str(w[a]) for a in ALL) + " |")
    lines += ["", "## Per layer (ms; multiplications relative to direct in brackets)", "",
              "| layer | " + " | ".join(ALL) + " | fastest |", "|---|" + "---|" * (len(ALL) + 1)]
    for r in rows:
        cells = []
        for a in ALL:
            if a not in r["mults"]:
                cells.append("n/a")
                continue
            ratio = r["mults"][a] / r["mults"]["direct"]
            cells.append(f"{_fmt_ms(r['ms'].get(a))} [{ratio:.2f}]" + (" skipped" if a in r["skipped"] else ""))
        lines.append(f"| {r['label']} | " + " | ".join(cells) + f" | {r['fastest'] or '-'} |")
    skips = [f"- {r['label']} {a}: {why}" for r in rows for a, why in r["skipped"].items()
             if not why.startswith("Winograd")]
    if skips:
        lines += ["", "Skipped runs:", *skips]
    lines += ["", "## float32 error vs the ONNX reference in float64 (max |error| / output range, worst of 3 seeds)",
              "", "| layer | " + " | ".join(ALL) + " |", "|---|" + "---|" * len(ALL)]
    for p in prec:
        e = p["error_vs_float64"]
        lines.append(f"| {p['label']} | " + " | ".join(f"{e[a]:.1e}" if a in e else "n/a" for a in ALL) + " |")
    w = [p["error_vs_float64"] for p in prec if "winograd4" in p["error_vs_float64"]]
    if w:
        ratios = [e["winograd4"] / e["winograd2"] for e in w]
        vs_direct = [e["winograd4"] / e["direct"] for e in w]
        lines.append(f"\nWinograd F(4x4,3x3) error is {min(ratios):.1f}-{max(ratios):.1f}x F(2x2,3x3)'s and "
                     f"{min(vs_direct):.1f}-{max(vs_direct):.1f}x direct's on these layers.")
    lines.append(f"\nSweep time {meta['elapsed_s']:.0f} s.")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "conv_algorithms.json")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--budget", type=float, default=240.0, help="seconds for the timing sweep")
    args = ap.parse_args()
    import numpy as np

    t0 = time.perf_counter()
    with blas_threads(args.threads):
        rows = run_sweep(sweep_specs(), args.budget, args.repeats)
    prec = precision()
    machine = machine_info()
    meta = {"cpu": machine["cpu_model"], "threads": args.threads, "numpy": np.__version__, "repeats": args.repeats,
            "elapsed_s": time.perf_counter() - t0}
    claims = verdicts(rows)
    data = {"machine": machine, "meta": meta, "claims": claims, "precision": prec, "rows": rows}
    write_results(args.out, data, markdown(rows, claims, prec, meta))


if __name__ == "__main__":
    main()
