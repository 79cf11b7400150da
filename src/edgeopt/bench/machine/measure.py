"""The machine model: measure this CPU's roofs, or read a board's from its datasheet.

The roofline (Williams, Waterman & Patterson, CACM 2009) needs a peak arithmetic rate
and a memory bandwidth; the energy and dataflow models need the cache sizes. This module
fills a :class:`~edgeopt.analysis.device.DeviceProfile` with them:

- **Peak GEMM throughput** per thread count, measured with ONNX Runtime (the runtime our
  benchmarks use, through the same ``ort`` backend and the same timing harness): one
  MatMul ``(n x n) @ (n x n)`` in fp32, and one MatMulInteger ``u8 x s8 -> int32`` for
  int8. Rate = 2*M*N*K / best time (1 MAC = 2 FLOPs / OPs).
- **Memory bandwidth**, STREAM-like (McCalpin, "Memory bandwidth and machine balance in
  current high performance computers", IEEE TCCA newsletter 1995; www.cs.virginia.edu/stream):
  copy ``b = a`` and triad ``a = b + s*c`` on float64 arrays far larger than the last-level
  cache, bytes counted as STREAM counts them (copy 2 arrays, triad 3; write-allocate
  traffic not counted), best of N runs.
- **Cache-aware memory roofs**: STREAM scale bandwidth per thread count with the data in
  L2, L3 and DRAM (:mod:`edgeopt.bench.machine.cache_bandwidth`).
- **Caches** from the OS (:func:`edgeopt.bench.environment.read_caches`).

Profiles of boards we cannot run here (Raspberry Pi 3/4/5, Jetson Nano CPU) ship as JSON
in ``analysis/devices/``, written by hand from datasheets (``source="datasheet"``; the
derivation of every number is in the file's ``notes``).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ...errors import BackendUnavailable, EdgeoptError
from ...shapes import InputSpec
from ...model import Model
from ...backends import registry
from ..harness import time_session
from ..environment import machine_info, read_caches
from ..._util.progress import progress_bar
from ..isa import int8_dot_product
from .cache_bandwidth import measure_memory_roofs
from ...analysis.device import (DeviceProfile, builtin_device, builtin_names, default_path, load_profile,
                                save_profile)

PRECISIONS = ("fp32", "int8")
_CACHE_KEYS = ("L1d", "L2", "L3")
_MIB = 1024 ** 2
# When the OS reports no cache sizes, size the STREAM arrays as if the last level were
# 32 MiB (the largest L3 slice of common desktop/server parts), so they still overflow it.
_FALLBACK_LLC = 32 * _MIB
# The triad's scaled temporary is computed block by block so it stays on chip: a
# whole-array ``s*c`` temporary would add a write and a read of one array to DRAM,
# 5 array passes where STREAM counts 3. 256 KiB fits the L2 of every CPU we target while
# keeping numpy's per-call overhead (~1-3 us) under ~5% of the block's time.
_TRIAD_BLOCK = 32 * 1024  # float64 elements = 256 KiB


@dataclass(frozen=True)
class _Plan:
    """Sizes and repeats of one measurement mode (internal)."""

    mode: str
    gemm_n: int
    gemm_warmup: int
    gemm_min_runs: int
    gemm_min_time_s: float
    gemm_max_time_s: float
    stream_min_bytes: int
    stream_llc_factor: int
    stream_runs: int
    roof_bytes: float  # bytes moved per timed run of a cache-aware roof
    roof_runs: int


# Full: STREAM's own rule (each array >= 4x the last-level cache), at least 64 MiB.
_FULL = _Plan("full", gemm_n=1024, gemm_warmup=3, gemm_min_runs=10, gemm_min_time_s=0.5, gemm_max_time_s=4.0,
              stream_min_bytes=64 * _MIB, stream_llc_factor=4, stream_runs=10, roof_bytes=5e8, roof_runs=20)
# Quick: a few seconds for other commands and tests; arrays still twice the LLC so the
# copy and triad measure DRAM, not cache.
_QUICK = _Plan("quick", gemm_n=512, gemm_warmup=1, gemm_min_runs=3, gemm_min_time_s=0.0, gemm_max_time_s=0.5,
               stream_min_bytes=32 * _MIB, stream_llc_factor=2, stream_runs=3, roof_bytes=2.5e8, roof_runs=5)


# -- measurement ---------------------------------------------------------------------------
def matmul_model(n: int, precision: str):
    """The ONNX GEMM the peak is measured with, as an edgeopt Model.

    ``A`` (the graph input, shape ``(rows, n)``, rows = the "batch" dimension) times the
    constant ``B`` (``n x n``, an initializer, so ONNX Runtime pre-packs it as it does
    conv weights): MatMul in fp32; MatMulInteger ``uint8 x int8 -> int32`` for int8
    (ONNX operator spec, opset 10+; ONNX Runtime's CPU kernel takes u8 activations and
    s8 weights).

    Args:
        n: K = N of the product (positive int).
        precision: "fp32" or "int8".

    Returns:
        a Model with one input spec ``A: (1, n)``; time it at ``batch=n`` for an
        ``n x n x n`` GEMM (2*n^3 FLOPs or OPs).

    Raises:
        EdgeoptError: unknown precision or non-positive n.
    """
    from onnx import TensorProto, helper, numpy_helper


    if precision not in PRECISIONS:
        raise EdgeoptError(f"unknown precision {precision!r}: choose one of {', '.join(PRECISIONS)}")
    if n < 1:
        raise EdgeoptError(f"GEMM size {n} must be positive")
    rng = np.random.default_rng(0)
    if precision == "fp32":
        op, a_type, a_dtype, y_type = "MatMul", TensorProto.FLOAT, "float32", TensorProto.FLOAT
        b = rng.standard_normal((n, n), dtype=np.float32)
    else:
        op, a_type, a_dtype, y_type = "MatMulInteger", TensorProto.UINT8, "uint8", TensorProto.INT32
        b = rng.integers(-128, 128, size=(n, n), dtype=np.int8)
    graph = helper.make_graph(
        [helper.make_node(op, ["A", "B"], ["Y"])], f"matmul_{precision}_{n}",
        [helper.make_tensor_value_info("A", a_type, ["N", n])],
        [helper.make_tensor_value_info("Y", y_type, ["N", n])],
        initializer=[numpy_helper.from_array(b, "B")],
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="edgeopt.machine")
    # onnx stamps its newest IR version, which ONNX Runtime releases can lag behind;
    # IR 8 covers opset 13 and every runtime we support.
    proto.ir_version = 8
    return Model(proto=proto, inputs=[InputSpec("A", (1, n), a_dtype, layout="")], task="other",
                 source=f"machine:matmul-{precision}-{n}")


def measure_gemm(precision: str, threads: int, *, n: int = 1024, warmup: int = 3, min_runs: int = 10,
                 min_time_s: float = 0.5, max_time_s: float = 4.0) -> float:
    """Best GEMM throughput of ONNX Runtime on ``threads`` intra-op threads.

    Times :func:`matmul_model` with :func:`edgeopt.bench.harness.time_session` (first run
    and ``warmup`` runs untimed, garbage collector off) and keeps the fastest run: the
    peak is what the runtime reaches at best, not on average.

    Args:
        precision: "fp32" (result in GFLOP/s) or "int8" (GOP/s).
        threads: intra_op_num_threads (>= 1).
        n: GEMM size, M = N = K = n.
        warmup, min_runs, min_time_s, max_time_s: as in
            :func:`~edgeopt.bench.harness.time_session`.

    Returns:
        2*n^3 / best seconds / 1e9.

    Raises:
        BackendUnavailable: onnxruntime missing, or it cannot load this graph.
        EdgeoptError: bad settings, or the runtime failed while running it.
    """

    model = matmul_model(n, precision)
    session = registry.require("ort").prepare(model, threads=threads)
    try:
        # Model.example_feeds casts standard-normal floats to the input dtype; for uint8
        # the negative ones are out of range, which ARM's FCVTZU flags as "invalid". The
        # values do not matter to a GEMM's speed.
        with np.errstate(invalid="ignore"):
            result = time_session(session, model, batch=n, warmup=warmup, min_runs=min_runs,
                                  min_time_s=min_time_s, max_time_s=max_time_s)
    finally:
        session.close()
    if not result.ok:
        raise EdgeoptError(f"ONNX Runtime failed on the {precision} {n}x{n} GEMM: {result.error}: "
                           f"check the onnxruntime install (`python -c 'import onnxruntime'`)")
    return 2.0 * n ** 3 / (min(result.latencies_ms) / 1e3) / 1e9


def _best_seconds(fn: Callable[[], object], runs: int) -> float:
    fn()  # warm-up: faults in pages and fills TLBs outside the timed runs
    best = math.inf
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def measure_bandwidth(array_bytes: int, *, runs: int = 10) -> dict[str, float]:
    """STREAM-like sustained memory bandwidth of one core (McCalpin 1995).

    Three float64 arrays of ``array_bytes`` each; copy is ``b = a`` (``np.copyto``),
    triad is ``a = b + 3*c`` (``np.multiply`` into a cache-sized block, then ``np.add``).
    Bytes are counted as STREAM does: copy 2 x 8 bytes per element, triad 3 x 8.
    numpy runs each call on one thread, so this is one core's bandwidth; on many CPUs a
    single core cannot saturate the memory controller, so the socket's is higher.

    Args:
        array_bytes: size of each array in bytes; make it several times the last-level
            cache or the result is cache bandwidth.
        runs: timed runs per kernel (after one warm-up); the best is kept.

    Returns:
        {"copy": GB/s, "triad": GB/s}, GB = 1e9 bytes.

    Raises:
        EdgeoptError: array_bytes below 1 MiB or runs < 1.
    """
    if array_bytes < _MIB or runs < 1:
        raise EdgeoptError(f"bandwidth needs arrays of at least 1 MiB and runs >= 1 (got {array_bytes} bytes, "
                           f"{runs} runs): pass larger arrays")
    n = array_bytes // 8
    # np.full writes every page now, so page faults stay out of the timed runs.
    a, b, c = np.full(n, 1.0), np.full(n, 2.0), np.full(n, 0.5)
    block = np.empty(min(_TRIAD_BLOCK, n))
    scalar = 3.0
    return {"copy": 2 * 8 * n / _best_seconds(lambda: np.copyto(b, a), runs) / 1e9,
            "triad": 3 * 8 * n / _best_seconds(lambda: triad(a, b, c, scalar, block), runs) / 1e9}


def triad(a: np.ndarray, b: np.ndarray, c: np.ndarray, scalar: float, block: np.ndarray) -> None:
    """STREAM's triad ``a = b + scalar*c`` into ``a``, the product computed one ``block``
    at a time so it stays in cache instead of going to DRAM.

    Args:
        a, b, c: 1-D float arrays of one length (a is overwritten).
        scalar: the multiplier.
        block: scratch array of the same dtype, any length >= 1 (its contents are lost).
    """
    n = a.size
    for start in range(0, n, block.size):
        stop = min(start + block.size, n)
        tmp = block[: stop - start]
        np.multiply(c[start:stop], scalar, out=tmp)
        np.add(b[start:stop], tmp, out=a[start:stop])


def _stream_bytes(plan: _Plan, caches: dict[str, int], memory: int | None) -> int:
    llc = max(caches.values(), default=_FALLBACK_LLC)
    size = max(plan.stream_min_bytes, plan.stream_llc_factor * llc)
    if memory:
        # Three arrays must fit in RAM with room to spare (a 1 GB Raspberry Pi 3).
        size = min(size, memory // 16)
    return size


def _check_threads(threads: Sequence[int] | None, usable: int) -> list[int]:
    if threads is None:
        return list(range(1, usable + 1))
    out = sorted(set(threads))
    bad = [t for t in out if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or t < 1]
    if not out or bad:
        raise EdgeoptError(f"bad thread counts {list(threads)!r}: give positive integers, e.g. 1,2")
    if out[-1] > usable:
        raise EdgeoptError(f"{out[-1]} threads exceed the {usable} CPUs this process may use: "
                           f"measure at most {usable} (more threads only time-share the cores)")
    return [int(t) for t in out]


def measure_device(*, threads: Sequence[int] | None = None, quick: bool = False,
                   progress: bool = False) -> DeviceProfile:
    """Measure this machine's roofs: peak fp32/int8 GEMM rate per thread count,
    STREAM copy/triad bandwidth, the cache-aware memory roofs per thread count, cache sizes.

    Full mode takes ~5-30 s (1024^3 GEMMs, >= 10 timed runs each; arrays of
    max(64 MiB, 4 x last-level cache)); ``quick`` takes a few seconds (512^3 GEMMs,
    3 runs; arrays of max(32 MiB, 2 x LLC)), for other commands and tests.

    Args:
        threads: thread counts to measure the GEMMs at (default 1 .. the CPUs this
            process may use).
        quick: the short mode.
        progress: show a transient progress bar on stderr.

    Returns:
        a profile with source "measured", peak_gflops {"fp32": {t: GFLOP/s},
        "int8": {t: GOP/s}} ("int8" absent, and the reason in ``notes``, when ONNX Runtime
        cannot run MatMulInteger), bandwidth_gbs {"copy", "triad"} in GB/s,
        memory_roofs_gbs {"L2", "L3", "DRAM": {t: GB/s}}, caches
        {"L1d", "L2", "L3"} in bytes (those the OS reports), notes (method, sizes,
        library version, date).

    Raises:
        EdgeoptError: a thread count is not positive or exceeds the usable CPUs.
        BackendUnavailable: onnxruntime is not installed.
    """

    plan = _QUICK if quick else _FULL
    info = machine_info()
    load = _load_average()
    counts = _check_threads(threads, info["usable_cpus"] or 1)
    ort = registry.require("ort")
    caches = {k: v for k, v in read_caches().items() if k in _CACHE_KEYS}
    notes: list[str] = []
    with progress_bar("machine", len(counts) * len(PRECISIONS) + 2, enabled=progress) as bar:
        peaks = _measure_peaks(plan, counts, bar, notes)
        stream_bytes = _stream_bytes(plan, caches, info.get("memory_bytes"))
        bar.describe(f"STREAM copy/triad, {stream_bytes // _MIB} MiB arrays")
        bandwidth = measure_bandwidth(stream_bytes, runs=plan.stream_runs)
        bar.advance()
        roofs = measure_memory_roofs(caches, counts, dram_bytes=stream_bytes, total_bytes=plan.roof_bytes,
                                     runs=plan.roof_runs, on_step=bar.describe)
        bar.advance()

    notes[:0] = _method_notes(plan, ort.version(), info["flags"], peaks, stream_bytes, caches)
    if load is not None:
        # Other processes time-share the cores: on a busy machine every rate above is low.
        notes.append(f"1-minute load average when the measurement started: {load:.2f} on "
                     f"{info['usable_cpus']} usable CPUs.")
    return DeviceProfile(
        name=f"this machine: {info['cpu_model']}", source="measured",
        cores=info["physical_cores"] or info["logical_cpus"] or len(counts),
        peak_gflops=peaks, bandwidth_gbs=bandwidth, caches=caches, notes=" ".join(notes), memory_roofs_gbs=roofs)


def _measure_peaks(plan: _Plan, counts: list[int], bar: Any, notes: list[str]) -> dict[str, dict[int, float]]:
    """Peak GEMM rate per precision and thread count, {precision: {threads: GFLOP/s or GOP/s}};
    ``bar`` is the :func:`~edgeopt._util.progress.progress_bar` advanced once per GEMM.

    int8 is optional (measured where the runtime exposes it): when ONNX Runtime cannot run
    MatMulInteger, "int8" is left out and the reason appended to ``notes``.

    Raises:
        BackendUnavailable: ONNX Runtime cannot run the fp32 GEMM.
    """
    peaks: dict[str, dict[int, float]] = {p: {} for p in PRECISIONS}
    for precision in PRECISIONS:
        try:
            for t in counts:
                bar.describe(f"{precision} GEMM, {t} thread(s)")
                peaks[precision][t] = measure_gemm(
                    precision, t, n=plan.gemm_n, warmup=plan.gemm_warmup, min_runs=plan.gemm_min_runs,
                    min_time_s=plan.gemm_min_time_s, max_time_s=plan.gemm_max_time_s)
                bar.advance()
        except BackendUnavailable as e:
            if precision == "fp32":
                raise
            del peaks[precision]
            notes.append(f"int8: not measured, ONNX Runtime cannot run MatMulInteger here ({e}).")
    return peaks


def _method_notes(plan: _Plan, ort_version: str, flags: Any, peaks: dict[str, dict[int, float]],
                  stream_bytes: int, caches: dict[str, int]) -> list[str]:
    """The profile's notes on how each number was measured (mode, sizes, library versions,
    date), one entry per roof; ``flags`` are the CPU flags of :func:`machine_info`."""

    n = plan.gemm_n
    dot = int8_dot_product(flags)
    return [
        f"Measured by `edgeopt machine` ({plan.mode} mode) on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"with onnxruntime {ort_version}, numpy {np.__version__}.",
        f"Peak: ONNX Runtime MatMul {n}x{n} @ {n}x{n} fp32 (B a constant initializer, pre-packed) and "
        f"MatMulInteger u8 x s8 -> int32 of the same size, intra_op_num_threads = t, fastest of >= "
        f"{plan.gemm_min_runs} runs after {plan.gemm_warmup} warm-up; rate = 2*M*N*K / time "
        f"(GFLOP/s for fp32, GOP/s for int8).",
        ("int8: this CPU has " + dot + ", so the u8s8 GEMM should beat fp32." if dot else
         "int8: this CPU has no int8 dot-product instruction (VNNI / AMX / SDOT), so ONNX Runtime's u8s8 "
         "GEMM widens through 16-bit multiply-adds (VPMADDUBSW on x86, which can saturate) and may not beat "
         "fp32.") + (f" Measured int8/fp32 at 1 thread: {peaks['int8'][1] / peaks['fp32'][1]:.2f}x."
                     if 1 in peaks.get("int8", {}) else ""),
        f"Bandwidth: STREAM-like (McCalpin 1995) copy b = a and triad a = b + s*c on float64 arrays of "
        f"{stream_bytes // _MIB} MiB each (last-level cache {max(caches.values(), default=0) // _MIB} MiB), "
        f"fastest of {plan.stream_runs} runs; bytes counted as STREAM does (copy 2 arrays, triad 3, "
        f"write-allocate not counted). numpy's copy and ufuncs are single-threaded, so this is one core's "
        f"bandwidth, a lower bound on the socket's.",
        f"Cache-aware roofs (Ilic et al. 2014): STREAM scale b = 3a (numpy ufunc) within a working set "
        f"per thread of half the L2, half the L3 shared by the threads, or {stream_bytes // _MIB} MiB for "
        f"DRAM, each thread pinned to a CPU, all released at once, aggregate GB/s, alternating rounds, fastest of {plan.roof_runs} runs of {plan.roof_bytes / 1e9:g} GB; L1 not measured "
        f"(numpy's per-call overhead exceeds an L1-sized kernel). On a virtual machine the L3 is shared with "
        f"other tenants, so its roof varies run to run.",
        "Caches: /sys/devices/system/cpu/cpu0/cache (L1d and L2 per core, L3 shared).",
    ]


def _load_average() -> float | None:
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return None


# -- where profiles live --------------------------------------------------------------------


def default_device(path: str | os.PathLike | None = None) -> DeviceProfile:
    """This machine's profile: the one saved at ``path`` (default :func:`default_path`),
    else a quick measurement (a few seconds), saved there for next time.

    Run ``edgeopt machine`` once to replace a quick profile with a full measurement.

    Raises:
        EdgeoptError: the saved file is unreadable or not a device profile (it is never
            silently re-measured over).
        BackendUnavailable: nothing saved and onnxruntime is not installed.
    """
    path = Path(path) if path is not None else default_path()
    if path.exists():
        return load_profile(path)
    profile = measure_device(quick=True)
    save_profile(profile, path)
    return profile


def resolve_device(spec: str | None) -> DeviceProfile:
    """A device profile from a command-line value.

    Args:
        spec: None (this machine: :func:`default_device`), a builtin name
            ("raspberry-pi-4"), or the path of a JSON profile.

    Raises:
        EdgeoptError: neither a builtin nor an existing file (the message lists the
            builtins), or the file is not a device profile.
    """
    if spec is None:
        return default_device()
    if spec in builtin_names():
        return builtin_device(spec)
    if Path(spec).expanduser().is_file():
        return load_profile(Path(spec).expanduser())
    raise EdgeoptError(f"unknown device {spec!r}: give a builtin ({', '.join(builtin_names())}), "
                       f"a JSON file from `edgeopt machine --out FILE`, or nothing for this machine")
