"""The files ``edgeopt bench`` writes: the sweep as JSON and CSV, and its two plots."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .._util.atomic import write_staged
from ..bench.harness import BenchResult
from ..bench.sweep import write_csv, write_json
from ..bench.throughput import ThroughputResult
from .plots import plot_batch_sweep

# Every file write_bench_outputs may write (the plots only when a cell has timed runs).
BENCH_FILES = ("bench.json", "bench.csv", "bench_ms_per_image.png", "bench_throughput.png")


def write_bench_outputs(results: Sequence[BenchResult], out_dir: Path,
                        throughput: Sequence[ThroughputResult] = ()) -> tuple[Path, Path, list[Path]]:
    """Write ``bench.json`` (with the ``throughput`` cells of ``bench --streams`` under its
    "throughput" key when there are any), ``bench.csv`` and, when a cell has timed runs, the batch-sweep
    plots ``bench_ms_per_image.png`` and ``bench_throughput.png`` into ``out_dir`` (created
    if missing), all or none (:func:`edgeopt._util.atomic.write_staged`).

    Returns:
        (the JSON path, the CSV path, the plot paths: [] when no cell ran).

    Raises:
        OutputError: ``out_dir`` cannot take them (full, read-only, a folder in the way, ...).
    """
    def write(staging: Path) -> dict[str, Path]:
        extra = {"throughput": [r.to_dict() for r in throughput]} if throughput else None
        files = {"json": write_json(results, staging / "bench.json", extra=extra), "csv": write_csv(results, staging / "bench.csv")}
        if any(r.ok for r in results):
            files.update({f"plot{i}": p for i, p in enumerate(plot_batch_sweep(results, staging / "bench"))})
        return files

    final = write_staged(out_dir, write)
    return final["json"], final["csv"], [p for k, p in final.items() if k.startswith("plot")]
