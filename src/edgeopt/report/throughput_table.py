"""Terminal table of throughput cells (``edgeopt bench --streams``): images/s with N
requests in flight, and the latency percentiles of those requests."""

from __future__ import annotations

from typing import Sequence

from ..bench.throughput import ThroughputResult
from .bench_table import ms
from .console_table import ConsoleTable, Styled, columns


def throughput_table(results: Sequence[ThroughputResult]) -> ConsoleTable:
    """One row per cell: backend, threads, streams (as run; "asked>run" where the runtime ran
    fewer), requests timed, images/s, and the p50/p90/p99 latency of a request (ms). Under
    the table: each cell's prepare time and the errors. Fits 80 columns."""
    table = ConsoleTable("img/s with N requests in flight; ms per request",
                         columns(("backend", "name"), "t", "streams", "requests", "img/s", "p50", "p90", "p99"))
    failed = []
    for r in results:
        streams = str(r.streams_asked) if r.streams in (0, r.streams_asked) else f"{r.streams_asked}>{r.streams}"
        head = [r.backend, str(r.threads), streams]
        if not r.ok:
            table.add_row(*head, "0", Styled("-", "red"), "-", "-", "-")
            failed.append(f"{r.backend} t{r.threads} streams {r.streams_asked}: {r.error or 'no timed requests'}")
            continue
        s = r.stats
        table.add_row(*head, str(s.n), Styled(f"{r.throughput:.4g}", "bold"), ms(s.p50), ms(s.p90), ms(s.p99))
    ran = [r for r in results if r.prepare_ms is not None]
    if ran:
        table.notes.append("prepare (ms): " + ", ".join(
            f"{r.backend} t{r.threads} s{r.streams_asked} {r.prepare_ms:.1f}" for r in ran))
    if any(r.streams and r.streams != r.streams_asked for r in results):
        table.notes.append("a>b: b streams ran where a were asked (the runtime caps its streams at the threads)")
    table.notes += [(Styled("failed", "red"), f" {line}") for line in failed]
    return table
