"""Speed ratios measured in one run: time several models in alternating rounds.

On a noisy machine (shared cores, thermal drift) two measurements taken minutes apart
differ by more than the effect being measured. Timing A, B, A, B, ... in short rounds
exposes both to the same drift, so their ratio is trustworthy even when the absolute
numbers are not.
"""

from __future__ import annotations

from typing import Sequence

from .harness import benchmark
from .stats import percentile


def alternating_rounds(
    entries: Sequence[tuple],
    *,
    batch: int = 1,
    threads: int = 2,
    rounds: int = 5,
    min_runs: int = 10,
    min_time_s: float = 0.5,
    max_time_s: float = 2.0,
) -> list[list[list[float]] | None]:
    """Per-run latencies (ms) of each entry, round by round, from ``rounds`` alternating
    rounds (entries and settings as in :func:`alternating_p50`): per entry a list of one
    list of run latencies per round, or None for an entry that failed. Round i of every
    entry saw about the same machine state, so per-round ratios pair them."""
    runs: list[list[list[float]]] = [[] for _ in entries]
    failed = [False] * len(entries)
    for _ in range(rounds):
        for i, entry in enumerate(entries):
            if failed[i]:
                continue
            model, backend = entry[0], entry[1]
            t = entry[2] if len(entry) > 2 else threads
            b = entry[3] if len(entry) > 3 else batch
            res = benchmark(model, backend, batch=b, threads=t, min_runs=min_runs,
                            min_time_s=min_time_s, max_time_s=max_time_s)
            if res.error:
                failed[i] = True
                continue
            runs[i].append(list(res.latencies_ms))
    return [None if failed[i] or not r else r for i, r in enumerate(runs)]


def alternating_p50(entries: Sequence[tuple], **settings) -> list[float]:
    """p50 latency (ms) of each (model, backend) from alternating rounds.

    An entry is ``(model, backend)``, ``(model, backend, threads)`` or
    ``(model, backend, threads, batch)``; the last two override ``threads`` and ``batch``
    for that entry (a search may pick other settings than the baseline's). ``settings``
    are :func:`alternating_rounds`' (batch=1, threads=2, rounds=5, min_runs=10,
    min_time_s=0.5, max_time_s=2.0).

    Each round times every entry once with :func:`edgeopt.bench.harness.benchmark`
    (``min_runs`` runs and ``min_time_s`` seconds, capped at ``max_time_s``); the runs
    of all rounds are pooled per entry and their p50 (MLPerf LoadGen rule) returned.

    Returns:
        one p50 in ms per entry, in order; ``float("nan")`` for an entry that failed
        (its benchmark result had an error).
    """
    per_round = alternating_rounds(entries, **settings)
    return [float("nan") if r is None else percentile([x for one in r for x in one], 50) for r in per_round]
