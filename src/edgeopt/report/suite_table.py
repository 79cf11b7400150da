"""Terminal table of a suite run (``edgeopt suite``): one row per cell, the p50 with its 95%
interval; report.md and the plots group the same cells per model."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..bench.noise import LEGEND, noisy
from .bench_table import NOISY_MARK, interval, ms
from .console_table import ConsoleTable, Styled, columns

if TYPE_CHECKING:
    from ..suites.result import SuiteRun


def suite_table(run: "SuiteRun") -> ConsoleTable:
    """One row per cell in grid order: model (zoo:NAME), precision, backend, batch, threads,
    timed runs, p50 latency (ms) and its 95% interval, ms per image and images/s at the
    p50, and the state (measured, noisy, skipped or failed: the reason is a note)."""
    table = ConsoleTable(f"suite {run.spec.name}: latency per inference (ms), p50 with its 95% interval",
                         columns(("model", "name"), ("precision", "name"), ("backend", "name"), "b", "t", "runs",
                                 "p50", "95% int.", "ms/img", "img/s", ("state", "name")))
    failed, shaky = [], []
    for c in run.cells:
        r = c.result
        head = [c.ref, c.variant, r.backend, str(r.batch), str(r.threads)]
        where = f"{c.ref} {c.variant} {r.backend} b{r.batch} t{r.threads}"
        if not r.ok or r.stats is None:
            table.add_row(*head, "0", "-", "-", "-", "-", Styled("skipped" if c.skipped else "failed", "red"))
            failed.append(f"{where}: {r.error or 'no timed runs'}")
            continue
        why = noisy(r)
        shaky += [f"  {where}: {why}"] if why else []
        table.add_row(*head, str(r.stats.n), Styled(ms(r.stats.p50), "bold"),
                      interval(r.stats.p50_low, r.stats.p50_high), ms(r.ms_per_image), f"{r.throughput:.4g}",
                      Styled("noisy", "yellow") if why else "measured")
    table.notes += [f"not measured: {line}" for line in failed]
    if shaky:
        table.notes += [f"{NOISY_MARK} {LEGEND}:", *shaky]
    return table
