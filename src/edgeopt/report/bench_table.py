"""Terminal table of benchmark results: the p50 is the headline, with its 95% interval and
the robust CV; a noisy cell (:func:`edgeopt.bench.noise.noisy`) is marked and explained below."""

from __future__ import annotations

from typing import Sequence

from rich.console import Console

from ..bench.harness import BenchResult
from ..bench.noise import LEGEND, noisy
from .bench_extras import inputs_line, memory_line
from .conditions_text import conditions_line
from .console_table import ConsoleTable, Printer, Styled, columns
from .where import where_measured

NOISY_MARK = "!"
"""Appended to the CV of a noisy cell; the legend line under the table says what it means."""


def ms(v: float | None) -> str:
    """A latency in ms at three significant digits ("0.943", "21.3", "1234"); "-" for None."""
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 1000 else f"{v:.3g}"


def interval(low: float | None, high: float | None) -> str:
    """"low-high" in ms (:func:`ms` each), "-" when the interval is unknown."""
    return "-" if low is None or high is None else f"{ms(low)}-{ms(high)}"


def bench_table(results: Sequence[BenchResult]) -> ConsoleTable:
    """One row per cell: backend, batch, threads, runs, the p50 latency (ms) with its 95%
    bootstrap interval and the robust CV (rcv, marked when the cell is noisy), the mean and p99, ms per
    image and images/s (both at the p50); a failed cell says so. Under the table: the
    prepare and first-inference times, the inputs and peak RSS (:mod:`.bench_extras`), the
    errors, what the noisy mark means (when a cell has it) and the machine. Fits 80 columns
    (p90, min, max and std are in bench.json/csv)."""
    table = ConsoleTable("latency per inference (ms), p50 with its 95% interval; warm-up excluded",
                         columns(("backend", "name"), "b", "t", "runs", "p50", "95% int.", "rcv", "mean", "p99",
                                 "ms/img", "img/s"))
    reasons: list[str] = []
    failed: list[str] = []
    for r in results:
        head = [r.backend, str(r.batch), str(r.threads)]
        if r.error or r.stats is None:
            # The error goes under the table: in a column it would squeeze every number out.
            table.add_row(*head, "0", Styled("-", "red"), *["-"] * 6)
            failed.append(f"{r.backend} b{r.batch} t{r.threads}: {r.error or 'no timed runs'}")
            continue
        s, why = r.stats, noisy(r)
        if why:
            reasons.append(f"{r.backend} b{r.batch} t{r.threads}: {why}")
        cv = ("-" if s.rcv is None else f"{s.rcv:.0%}", Styled(NOISY_MARK if why else "", "yellow"))
        table.add_row(*head, str(s.n), Styled(ms(s.p50), "bold"), interval(s.p50_low, s.p50_high), cv,
                      ms(s.mean), ms(s.p99), ms(r.ms_per_image), f"{r.throughput:.4g}")
    ran = [r for r in results if r.prepare_ms is not None and r.first_ms is not None]
    if ran:
        table.notes.append("prepare / first inference (ms): " + ", ".join(
            f"{r.backend} b{r.batch} t{r.threads} {r.prepare_ms:.1f} / {r.first_ms:.2f}" for r in ran))
    table.notes += [line for line in (inputs_line(results), memory_line(results)) if line]
    table.notes += [(Styled("failed", "red"), f" {line}") for line in failed]
    if reasons:
        table.notes += [f"{NOISY_MARK} {LEGEND}:", *(f"  {line}" for line in reasons)]
    if results and results[0].machine:
        m = results[0].machine
        table.notes.append(f"{measured_on(results)}: {m.get('cpu_model')} ({m.get('logical_cpus')} CPUs); "
                           f"flags: {' '.join(m.get('flags', []))}")
    line = conditions_line(results)
    if line:
        table.notes.append(line)
    return table


def print_bench(results: Sequence[BenchResult], console: Console) -> None:
    """:func:`bench_table` on the console."""
    Printer(console).table(bench_table(results))


def measured_on(results: Sequence[BenchResult]) -> str:
    """Where the numbers were measured (:func:`~edgeopt.report.where.where_measured` of the
    measured cells' machines)."""
    return where_measured(r.machine for r in results if r.ok)
