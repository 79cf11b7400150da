"""The conditions of a set of benchmark cells in one line for a person."""

from __future__ import annotations

from typing import Any, Sequence

from ..bench.conditions import interference
from ..bench.harness import BenchResult


def _span(values: list[float], fmt: str) -> str:
    lo, hi = min(values), max(values)
    return fmt.format(lo) if lo == hi else f"{fmt.format(lo)}..{fmt.format(hi)}"


def conditions_line(results: Sequence[BenchResult]) -> str | None:
    """"conditions: other processes 3..61% of the CPU, load 0.4..6.2, 48..63 C, 1.2..1.8 GHz,
    pinned; 2 of 6 cells under interference" (ranges over the cells; parts the platform
    does not report are left out), or None when no cell has a record."""
    records = [r.conditions for r in results if r.conditions]
    if not records:
        return None

    def values(key: str) -> list[Any]:
        return [c[key] for c in records if c.get(key) is not None]

    parts = []
    for key, fmt, label in (("other_cpu_pct", "{:.0f}", "other processes {}% of the CPU"),
                            ("steal_pct", "{:.0f}", "steal {}%"), ("load1_end", "{:.1f}", "load {}"),
                            ("temp_c_end", "{:.0f}", "{} C"), ("freq_mhz_end", "{:.0f}", "{} MHz")):
        got = values(key)
        if got:
            parts.append(label.format(_span(got, fmt)))
    governors = sorted(set(values("governor")))
    if governors:
        parts.append("governor " + "/".join(governors))
    pinned = values("pinned")
    parts.append("pinned" if pinned and all(pinned) else "not pinned")
    noisy = sum(interference(c) is not None for c in records)
    tail = f"; {noisy} of {len(records)} cells under interference" if noisy else ""
    lost = sum(values("board_lost"))
    if lost:
        tail += f"; {lost} measurement{'s' * (lost > 1)} run again on another board (a board was lost mid-run)"
    return "conditions: " + ", ".join(parts) + tail
