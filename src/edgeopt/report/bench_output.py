"""The files ``edgeopt bench`` writes: the sweep as JSON and CSV, and its two plots."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from ..bench.harness import BenchResult
from ..bench.sweep import write_csv, write_json
from .plots import plot_batch_sweep


def write_bench_outputs(results: Sequence[BenchResult], out_dir: Path) -> tuple[Path, Path, list[Path]]:
    """Write ``bench.json``, ``bench.csv`` and, when a cell has timed runs, the batch-sweep
    plots ``bench_ms_per_image.png`` and ``bench_throughput.png`` into ``out_dir``.

    Returns:
        (the JSON path, the CSV path, the plot paths: [] when no cell ran).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = write_json(results, out_dir / "bench.json")
    csv_path = write_csv(results, out_dir / "bench.csv")
    plots = plot_batch_sweep(results, out_dir / "bench") if any(r.ok for r in results) else []
    return json_path, csv_path, plots
