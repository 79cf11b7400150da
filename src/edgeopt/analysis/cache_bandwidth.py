"""Bandwidth of each level of the memory hierarchy, per thread count: the cache-aware roofs.

The classic roofline has one memory roof (DRAM). The cache-aware roofline (Ilic, Pratas
& Sousa, "Cache-aware Roofline model: upgrading the loft", IEEE Computer Architecture
Letters 13(1), 2014) draws one roof per level, each the bandwidth the cores see when the
data lives there; a kernel whose working set fits in L2 is capped by the L2 roof, not by
DRAM's.

Measured here with the copy kernel ``b = a`` (numpy ``copyto``; bytes counted as STREAM
counts them, 2 x 8 per float64 element, write-allocate not counted), each thread on its
own pair of arrays, all threads started together; aggregate GB/s = bytes of all threads /
wall time of the slowest, fastest of ``runs``. numpy releases the GIL inside the copy, so
Python threads run on separate cores. Working set per thread (both arrays):

- L2: half the L2 (private per core on the CPUs we target);
- L3: half the L3 divided among the threads (it is shared);
- DRAM: ``dram_bytes`` (several times the last-level cache).

So the cache-resident rows are not re-fetched from DRAM and numpy's per-call overhead
stays out of the timing, the arrays are repeated by a zero-stride view: one ``copyto``
call walks the same cache-sized buffers ``reps`` times. L1 is not measured: at L1 sizes
(rows of a few KiB) numpy's per-row dispatch costs more than the copy itself (measured
here: 25 GB/s at 16 KiB against 50 GB/s at 256 KiB), so the figure would be numpy's, not
the cache's.
"""

from __future__ import annotations

import threading
import time
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ..errors import EdgeoptError

LEVELS = ("L2", "L3", "DRAM")
_KIB = 1024


def copy_bandwidth(working_set_bytes: int, threads: int = 1, *, total_bytes: float = 1e9,
                   runs: int = 5) -> float:
    """Aggregate copy bandwidth with ``threads`` threads, each copying within its own
    ``working_set_bytes`` (two float64 arrays of half that), GB/s (1e9 bytes/s).

    Args:
        working_set_bytes: bytes per thread, both arrays (>= 64 KiB: smaller rows measure
            numpy's overhead, module doc).
        threads: concurrent threads (>= 1).
        total_bytes: bytes all threads move per timed run (counted as STREAM does).
        runs: timed runs after one warm-up; the fastest is kept.

    Raises:
        EdgeoptError: a working set below 64 KiB, threads or runs below 1.
    """
    if working_set_bytes < 64 * _KIB or threads < 1 or runs < 1:
        raise EdgeoptError(f"copy bandwidth needs a working set >= 64 KiB, threads >= 1 and runs >= 1 (got "
                           f"{working_set_bytes} bytes, {threads} threads, {runs} runs)")
    n = working_set_bytes // 16
    reps = max(1, int(total_bytes / threads / (16 * n)))
    pairs = []
    for _ in range(threads):
        # np.full writes every page now, so page faults stay out of the timed runs.
        a, b = np.full(n, 1.0), np.full(n, 2.0)
        pairs.append((as_strided(a, shape=(reps, n), strides=(0, 8), writeable=False),
                      as_strided(b, shape=(reps, n), strides=(0, 8))))
    def copy(src: np.ndarray, dst: np.ndarray, start: threading.Barrier) -> None:
        start.wait()
        np.copyto(dst, src)

    best = float("inf")
    for run in range(runs + 1):
        # The barrier releases all threads at once: thread start-up (~50 us each) would
        # otherwise stagger them and understate the aggregate.
        start = threading.Barrier(threads + 1)
        workers = [threading.Thread(target=copy, args=(src, dst, start)) for src, dst in pairs]
        for w in workers:
            w.start()
        start.wait()
        t0 = time.perf_counter()
        for w in workers:
            w.join()
        if run:  # run 0 is the warm-up: it loads the buffers into their cache level
            best = min(best, time.perf_counter() - t0)
    return threads * reps * 16 * n / best / 1e9


def working_sets(caches: dict[str, int], threads: int, dram_bytes: int) -> dict[str, int]:
    """Bytes per thread that put the copy's data in each level (module doc); a level the
    OS does not report is left out."""
    sets = {}
    if caches.get("L2"):
        sets["L2"] = caches["L2"] // 2
    if caches.get("L3"):
        sets["L3"] = caches["L3"] // (2 * threads)
    sets["DRAM"] = dram_bytes
    return {k: v for k, v in sets.items() if v >= 64 * _KIB}


def measure_memory_roofs(caches: dict[str, int], threads: Sequence[int], *, dram_bytes: int,
                         total_bytes: float = 1e9, runs: int = 5,
                         on_step=None) -> dict[str, dict[int, float]]:
    """{level: {threads: GB/s}} for L2, L3 (those ``caches`` has) and DRAM.

    Args:
        caches: {"L2": bytes, "L3": bytes} as the OS reports them.
        threads: thread counts to measure.
        dram_bytes: working set per thread for DRAM (several times the last-level cache).
        total_bytes, runs: as :func:`copy_bandwidth`.
        on_step: called with a description before each measurement (progress bars).
    """
    roofs: dict[str, dict[int, float]] = {}
    for t in threads:
        for level, size in working_sets(caches, t, dram_bytes).items():
            if on_step:
                on_step(f"{level} copy bandwidth, {t} thread(s), {size // _KIB} KiB each")
            roofs.setdefault(level, {})[t] = copy_bandwidth(size, t, total_bytes=total_bytes, runs=runs)
    return roofs


def level_of(working_set_bytes: int, caches: dict[str, int]) -> str:
    """The smallest measured level whose capacity holds ``working_set_bytes``: "L2", "L3"
    or "DRAM" (a layer's weights + activations, the cache-aware roofline's choice of roof
    when per-level traffic is not counted by hardware counters)."""
    for level in ("L2", "L3"):
        if caches.get(level) and working_set_bytes <= caches[level]:
            return level
    return "DRAM"
