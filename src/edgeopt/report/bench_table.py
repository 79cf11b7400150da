"""Terminal table of benchmark results."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console
from rich.table import Table

from ..bench.harness import BenchResult
from .conditions_text import conditions_line


def print_bench(results: Sequence[BenchResult], console: Console) -> None:
    """One row per cell: backend, batch, threads, runs, prepare/first ms, latency
    percentiles (ms), ms per image and images/s; a failed cell shows its error."""
    table = Table("backend", "batch", "thr", "runs", "prep ms", "first ms", "mean",
                  "p50", "p90", "p99", "ms/img", "img/s",
                  title="latency per inference (ms); warm-up excluded")
    for r in results:
        head = [r.backend, str(r.batch), str(r.threads)]
        if r.error:
            table.add_row(*head, "-", "-", "-", f"[red]{r.error}[/red]", *["-"] * 5)
            continue
        s = r.stats
        table.add_row(*head, str(s.n), f"{r.prepare_ms:.1f}", f"{r.first_ms:.2f}",
                      *(f"{v:.3f}" for v in (s.mean, s.p50, s.p90, s.p99)),
                      f"{r.ms_per_image:.3f}", f"{r.throughput:.1f}")
    console.print(table)
    if results and results[0].machine:
        m = results[0].machine
        console.print(f"machine: {m.get('cpu_model')} ({m.get('logical_cpus')} CPUs); "
                      f"flags: {' '.join(m.get('flags', []))}")
    line = conditions_line(results)
    if line:
        console.print(line)
