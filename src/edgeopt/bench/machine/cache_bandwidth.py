"""Bandwidth of each level of the memory hierarchy, per thread count: the cache-aware roofs.

The classic roofline has one memory roof (DRAM). The cache-aware roofline (Ilic, Pratas
& Sousa, "Cache-aware Roofline model: upgrading the loft", IEEE Computer Architecture
Letters 13(1), 2014) draws one roof per level, each the bandwidth the cores see when the
data lives there; a kernel whose working set fits in L2 is capped by the L2 roof, not by
DRAM's.

Measured here with STREAM's scale kernel ``b = 3a`` (McCalpin 1995; numpy's
``multiply`` ufunc, an AVX loop; bytes counted as STREAM counts them, 2 x 8 per float64
element, write-allocate not counted), each thread on its own pair of arrays and pinned to
its own CPU, all threads released together; aggregate GB/s = bytes of all threads / wall
time from the first start to the last end, fastest of ``runs`` (alternating over the
settings). numpy releases the GIL inside the ufunc, so Python threads run on separate
cores. Working set per thread (both arrays):

- L2: half the L2 (private per core on the CPUs we target);
- L3: half the L3 divided among the threads (it is shared);
- DRAM: ``dram_bytes`` (several times the last-level cache).

So the cache-resident rows are not re-fetched from DRAM and numpy's per-call overhead
stays out of the timing, the arrays are repeated by a zero-stride view: one ufunc call
walks the same cache-sized buffers ``reps`` times. Not ``copyto``: on such views it
takes a slower overlap-safe path (36 GB/s in L3 here against 68 for the ufunc), and
glibc's memcpy for 32-128 KiB blocks ran at 5.5 GB/s on this CPU. L1 is not measured: at
L1 sizes numpy's per-row dispatch costs more than the work (32 GB/s at 16 KiB against
85 GB/s at 256 KiB here), so the figure would be numpy's, not the cache's.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Sequence

import numpy as np
from numpy.lib.stride_tricks import as_strided

from ...analysis.roofline import LEVELS
from ...errors import EdgeoptError

SCALAR = 3.0  # STREAM's scale factor
_KIB = 1024


class _Scale:
    """The scale kernel at one working set and thread count; :meth:`seconds` times one run."""

    def __init__(self, working_set_bytes: int, threads: int, total_bytes: float) -> None:
        if working_set_bytes < 64 * _KIB or threads < 1 or total_bytes <= 0:
            raise EdgeoptError(f"bandwidth needs a working set >= 64 KiB, threads >= 1 and bytes > 0 (got "
                               f"{working_set_bytes} bytes, {threads} threads, {total_bytes} bytes per run)")
        self.n = working_set_bytes // 16
        self.reps = max(1, int(total_bytes / threads / (16 * self.n)))
        self.pairs = []
        for _ in range(threads):
            # np.full writes every page now, so page faults stay out of the timed runs.
            a, b = np.full(self.n, 1.0), np.full(self.n, 2.0)
            self.pairs.append((as_strided(a, shape=(self.reps, self.n), strides=(0, 8), writeable=False),
                               as_strided(b, shape=(self.reps, self.n), strides=(0, 8))))
        self.cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []

    @property
    def bytes(self) -> int:
        """Bytes one run moves, counted as STREAM does."""
        return len(self.pairs) * self.reps * 16 * self.n

    def seconds(self) -> float:
        """Wall time of one run: all threads released together, until the last is done."""
        start = threading.Barrier(len(self.pairs))
        spans: list[tuple[float, float]] = []
        workers = [threading.Thread(target=self._run, args=(src, dst, start, spans, self.cpus[i % len(self.cpus)]
                                                             if self.cpus else None))
                   for i, (src, dst) in enumerate(self.pairs)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        # The workers time themselves: the waiting main thread, a third thread on the
        # cores, may be scheduled late and would take its start time after they began.
        return max(end for _, end in spans) - min(begin for begin, _ in spans)

    @staticmethod
    def _run(src: np.ndarray, dst: np.ndarray, start: threading.Barrier, spans: list, cpu: int | None) -> None:
        if cpu is not None:
            # One thread per CPU, as STREAM's OMP_PROC_BIND does: Linux wakes the threads
            # on the waker's CPU and a 10 ms run can end before the load balancer moves one.
            os.sched_setaffinity(0, {cpu})
        np.multiply(src[0], SCALAR, out=dst[0])  # brings the buffers into this core's caches, untimed
        start.wait()
        t0 = time.perf_counter()
        np.multiply(src, SCALAR, out=dst)
        spans.append((t0, time.perf_counter()))


def scale_bandwidth(working_set_bytes: int, threads: int = 1, *, total_bytes: float = 1e9,
                   runs: int = 5) -> float:
    """Aggregate scale (``b = 3a``) bandwidth with ``threads`` threads, each within its own
    ``working_set_bytes`` (two float64 arrays of half that), GB/s (1e9 bytes/s).

    Args:
        working_set_bytes: bytes per thread, both arrays (>= 64 KiB: smaller rows measure
            numpy's overhead, module doc).
        threads: concurrent threads (>= 1), each pinned to its own CPU.
        total_bytes: bytes all threads move per timed run (counted as STREAM does).
        runs: timed runs; the fastest is kept.

    Raises:
        EdgeoptError: a working set below 64 KiB, threads or runs below 1.
    """
    if runs < 1:
        raise EdgeoptError(f"bandwidth needs runs >= 1, got {runs}")
    kernel = _Scale(working_set_bytes, threads, total_bytes)
    return kernel.bytes / min(kernel.seconds() for _ in range(runs)) / 1e9


def working_sets(caches: dict[str, int], threads: int, dram_bytes: int) -> dict[str, int]:
    """Bytes per thread that put the kernel's data in each level (module doc); a level the
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

    The runs alternate over all levels and thread counts (``runs`` rounds, one run of
    each per round) and each keeps its fastest: on a shared machine a core can run at
    half speed for seconds, so runs of one setting back to back may all land in such a
    spell (measured on this VM: best of 20 consecutive 2-thread runs at 1-thread speed
    in half the attempts).

    Args:
        caches: {"L2": bytes, "L3": bytes} as the OS reports them.
        threads: thread counts to measure.
        dram_bytes: working set per thread for DRAM (several times the last-level cache).
        total_bytes: bytes per timed run (:func:`scale_bandwidth`).
        runs: rounds.
        on_step: called with a description before each round (progress bars).
    """
    kernels = {(level, t): _Scale(size, t, total_bytes)
               for t in threads for level, size in working_sets(caches, t, dram_bytes).items()}
    best = {key: float("inf") for key in kernels}
    for r in range(runs):
        if on_step:
            on_step(f"L2/L3/DRAM bandwidth, round {r + 1} of {runs}")
        for key, kernel in kernels.items():
            best[key] = min(best[key], kernel.seconds())
    roofs: dict[str, dict[int, float]] = {}
    for (level, t), kernel in kernels.items():
        roofs.setdefault(level, {})[t] = kernel.bytes / best[(level, t)] / 1e9
    return {level: roofs[level] for level in LEVELS if level in roofs}
