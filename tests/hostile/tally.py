"""Run every hostile case (``CASES`` of each ``tests/hostile/test_*.py``) and print, per
class, how many cases there are and how their outcomes split (Markdown table), plus one
line per case that broke the contract. Writes the per-case outcomes as JSON when given a
path.

    python tests/hostile/tally.py [results.json]

Run it with another checkout's sources first on PYTHONPATH to get the "before" column.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
sys.path.insert(0, str(HERE.parent))

from hostile.harness import run_case, skip_reason  # noqa: E402


def cases():
    for path in sorted(HERE.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"hostile_{path.stem}", path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        yield from getattr(mod, "CASES", [])


def main() -> None:
    rows = []
    for case in cases():
        reason = skip_reason(case)
        if reason:
            rows.append({"class": case.cls, "case": case.id, "verdict": f"skipped ({reason})", "stderr": ""})
            continue
        with tempfile.TemporaryDirectory() as tmp:
            try:
                o = run_case(case, Path(tmp))
            except pytest.skip.Exception as e:
                rows.append({"class": case.cls, "case": case.id, "verdict": f"skipped ({e})", "stderr": ""})
                continue
            except Exception as e:  # noqa: BLE001 - a builder that needs what this version lacks
                rows.append({"class": case.cls, "case": case.id, "verdict": "cannot build here",
                             "stderr": f"{type(e).__name__}: {e}"})
                continue
        lines = [s for s in o.stderr.strip().splitlines() if s.strip()]
        rows.append({"class": case.cls, "case": case.id, "verdict": o.verdict(), "stderr": lines[-1] if lines else ""})
        print(f"{case.cls:32.32} {case.id:40.40} {o.verdict()}", file=sys.stderr, flush=True)
    by_class = collections.defaultdict(collections.Counter)
    for r in rows:
        by_class[r["class"]][r["verdict"]] += 1
    print("| class | cases | outcomes |\n|---|---|---|")
    for cls, counts in by_class.items():
        print(f"| {cls} | {sum(counts.values())} | "
              + ", ".join(f"{v} {n}" for v, n in counts.most_common()) + " |")
    total = collections.Counter(r["verdict"] for r in rows)
    print(f"| all | {len(rows)} | " + ", ".join(f"{v} {n}" for v, n in total.most_common()) + " |")
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
