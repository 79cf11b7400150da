"""Two benchmark runs side by side: per-cell ratios with their noise, so a real difference
can be told from jitter.

Cells are matched by (model, backend, batch, threads). The ratio is B's p50 latency
over A's (below 1: B is faster), the same p50 (MLPerf LoadGen rule) that ``bench``
tables and plots show. Its noise is a 95% bootstrap interval (Efron & Tibshirani, "An
Introduction to the Bootstrap", 1993, the percentile method): both cells' per-run
latencies are resampled with replacement and the ratio of the p50s recomputed
(:func:`edgeopt.bench.stats.bootstrap_p50s`, the one implementation behind every
cell's p50 interval too). Runs inside one session cannot see what differs between
sessions (where the runtime's threads landed, its memory arena: on this project's VMs an
A/A pair of runs said "B 10-15% slower" in every cell with intervals under 1% wide), so
when both cells were timed in several fresh sessions (``bench --sessions``, 3 by
default) the sessions are resampled instead (:mod:`edgeopt.bench.session_stats`). Two
runs made at different times also differ by the machine's state (frequency, other
load), so a difference is called real only when the interval excludes 1 *and* the ratio
is at least ``min_effect`` away from 1.

What the machine was doing is recorded with each cell (:mod:`edgeopt.bench.conditions`):
when other processes' CPU share, steal or throttling differ materially between A and B
(:func:`~edgeopt.bench.conditions.interference_difference`), or either side was measured
under interference at all (:func:`~edgeopt.bench.conditions.interference`), the cell is
"not comparable", whatever its ratio, because the difference may be the load rather than
the code. Cells
without a record (files written before it) are compared as before, with a note.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import EdgeoptError
from .conditions import interference, interference_difference
from .harness import BenchResult
from .noise import noisy
from .session_stats import session_ratio_interval
from .stats import LEVEL, RESAMPLES, bootstrap_p50s, percentile

RESULTS_FILES = ("bench.json", "suite.json")
"""The results file in a run folder: ``edgeopt bench --out DIR`` and ``edgeopt suite --out DIR``."""


def results_file(ref: str | os.PathLike) -> Path:
    """The results file ``ref`` names: ``ref`` itself, or for a run folder the one of
    :data:`RESULTS_FILES` it holds (a missing path is passed on for the reader to refuse).

    Raises:
        EdgeoptError: a folder holding none of them, or both.
    """
    path = Path(ref)
    if not path.is_dir():
        return path
    found = [path / name for name in RESULTS_FILES if (path / name).is_file()]
    if len(found) != 1:
        problem = "holds no" if not found else "holds both"
        raise EdgeoptError(f"{path} {problem} {' or '.join(RESULTS_FILES)}: pass a bench or suite --out folder, "
                           f"or the results file itself")
    return found[0]


MIN_EFFECT = 0.05
"""Smallest relative difference called real between two runs made at different times:
alternating timing of one model against itself on this project's 2-core test machine
moved the ratio by up to ~5-10% between occasions."""


@dataclass(frozen=True)
class CellComparison:
    """One matched cell.

    Attributes:
        model, backend, batch, threads: the cell.
        a_ms, b_ms: p50 per-image latency in ms (p50 / batch) of each run, None when
            that run has no timed runs there (an error, or not measured).
        a_runs, b_runs: timed runs behind each number.
        a_cv, b_cv: robust coefficient of variation (rcv, 1.4826 MAD / median; std / mean for
            a record from before rcv existed) of each cell's latencies.
        ratio: b_ms / a_ms (below 1: B faster); low, high: its 95% bootstrap interval.
        verdict: "B faster", "B slower", "within noise", "not comparable" (the recorded
            interference differs, said in ``note``), "only in A", "only in B" or
            "not measured" (with a reason in ``note``).
        note: the error of a side that did not run, or the interference that differs;
            else "".
        interference_checked: False when a side has no recorded conditions (a file
            written before edgeopt recorded them: compared as before), True when both
            have, None for a cell not measured on both sides.
        a_noisy, b_noisy: why that side's cell is noisy (:func:`edgeopt.bench.noise.noisy`),
            else "".
    """

    model: str
    backend: str
    batch: int
    threads: int
    a_ms: float | None
    b_ms: float | None
    a_runs: int
    b_runs: int
    a_cv: float | None
    b_cv: float | None
    ratio: float | None
    low: float | None
    high: float | None
    verdict: str
    note: str = ""
    interference_checked: bool | None = None
    a_noisy: str = ""
    b_noisy: str = ""


def median_ratio_interval(a: Sequence[float], b: Sequence[float], *, resamples: int = RESAMPLES,
                          seed: int = 0) -> tuple[float, float, float]:
    """p50(b) / p50(a) (LoadGen rule) and its 95% percentile-bootstrap interval.

    Args:
        a, b: per-run latencies (ms), at least one each.

    Returns:
        (ratio, low, high).

    Raises:
        EdgeoptError: an empty sample.
    """
    if len(a) == 0 or len(b) == 0:
        raise EdgeoptError("a latency sample is empty: compare cells that have timed runs")
    rng = np.random.default_rng(seed)
    ma = bootstrap_p50s(a, rng, resamples=resamples)
    mb = bootstrap_p50s(b, rng, resamples=resamples)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(mb / ma, [tail, 100 - tail])
    return percentile(b, 50) / percentile(a, 50), float(low), float(high)


def cell_ratio_interval(ra: BenchResult, rb: BenchResult) -> tuple[float, float, float]:
    """p50(B) / p50(A) per image and its 95% interval: over sessions when both cells were
    timed in two or more fresh sessions (:func:`~edgeopt.bench.session_stats.
    session_ratio_interval`: the noise between sessions, which decides an A/A test on this
    project's VMs), else over runs (:func:`median_ratio_interval`)."""
    if len(ra.session_runs) >= 2 and len(rb.session_runs) >= 2:
        low, high = session_ratio_interval(ra.latencies_ms, ra.session_runs, rb.latencies_ms, rb.session_runs)
        return percentile(rb.latencies_ms, 50) / percentile(ra.latencies_ms, 50), low, high
    return median_ratio_interval(ra.latencies_ms, rb.latencies_ms)


def _under_interference(ra: BenchResult, rb: BenchResult) -> str | None:
    """Why a pair measured under interference on either side supports no verdict, or None.
    Two busy-loop processes beside an A/A pair of bench runs (3 sessions a cell) still gave
    "faster" or "slower" in 9 of 36 cells: equal load on both sides does not make equal
    noise, so a cell measured while other programs competed is not compared at all."""
    busy = [f"{side}: {why}" for side, r in (("A", ra), ("B", rb)) if (why := interference(r.conditions))]
    if not busy:
        return None
    return f"measured under interference ({'; '.join(busy)}): compare runs made on a quieter machine"


def compare_results(a: Sequence[BenchResult], b: Sequence[BenchResult], *,
                    min_effect: float = MIN_EFFECT) -> list[CellComparison]:
    """Match the cells of two runs and compare each pair (see the module docstring).

    Returns:
        one CellComparison per cell of either run: A's cells in A's order, then the
        cells only B has.

    Raises:
        EdgeoptError: the runs share no cell (the message names one key of each).
    """
    def key(r: BenchResult) -> tuple[str, str, int, int]:
        return (r.model, r.backend, r.batch, r.threads)

    by_b = {key(r): r for r in b}
    by_a = {key(r): r for r in a}
    if a and b and not set(by_a) & set(by_b):
        raise EdgeoptError(f"the two runs share no cell (A has {_show(next(iter(by_a)))}, B has "
                           f"{_show(next(iter(by_b)))}): compare runs of the same suite or models")
    out = [_pair(k, by_a[k], by_b.get(k), min_effect) for k in by_a]
    out += [_pair(k, None, r, min_effect) for k, r in by_b.items() if k not in by_a]
    return out


def _show(k: tuple) -> str:
    return f"{k[0]} on {k[1]} batch {k[2]} threads {k[3]}"


def _side(r: BenchResult | None) -> tuple[float | None, int, float | None]:
    if r is None or not r.ok:
        return None, 0 if r is None else len(r.latencies_ms), None
    s = r.stats
    return r.ms_per_image, s.n, s.rcv if s.rcv is not None else s.cv


def _fed(r: BenchResult) -> str:
    i = r.inputs
    return "random inputs" if not i else f"{i.get('samples')} {i.get('kind', 'samples')} from {i.get('source')}"


def _inputs_difference(ra: BenchResult, rb: BenchResult) -> str:
    """"" when both sides were fed alike, else what each was fed: a CNN's time rarely
    depends on the values, but a detector's post-processing (NMS over what it found) does,
    so the verdict stands and the difference is said beside it."""
    a, b = _fed(ra), _fed(rb)
    return "" if a == b else f"inputs differ (A: {a}; B: {b})"


def _pair(k: tuple, ra: BenchResult | None, rb: BenchResult | None, min_effect: float) -> CellComparison:
    (a_ms, a_n, a_cv), (b_ms, b_n, b_cv) = _side(ra), _side(rb)
    ratio = low = high = checked = None
    note = ""
    if ra is None:
        verdict = "only in B"
    elif rb is None:
        verdict = "only in A"
    elif a_ms is None or b_ms is None:
        verdict = "not measured"
        note = "; ".join(f"{side}: {r.error or 'no timed runs'}" for side, r in (("A", ra), ("B", rb))
                         if not r.ok)
    else:
        ratio, low, high = cell_ratio_interval(ra, rb)
        if high < 1.0 and ratio <= 1.0 - min_effect:
            verdict = "B faster"
        elif low > 1.0 and ratio >= 1.0 + min_effect:
            verdict = "B slower"
        else:
            verdict = "within noise"
        checked = bool(ra.conditions and rb.conditions)
        why = (interference_difference(ra.conditions, rb.conditions) or _under_interference(ra, rb)
               if checked else None)
        if why:
            verdict, note = "not comparable", why
        note = "; ".join(filter(None, [note, _inputs_difference(ra, rb)]))
    return CellComparison(*k, a_ms=a_ms, b_ms=b_ms, a_runs=a_n, b_runs=b_n, a_cv=a_cv, b_cv=b_cv,
                          ratio=ratio, low=low, high=high, verdict=verdict, note=note,
                          interference_checked=checked,
                          a_noisy=noisy(ra) or "", b_noisy=noisy(rb) or "")
