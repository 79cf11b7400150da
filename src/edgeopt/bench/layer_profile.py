"""Per-layer (per-op) time of benchmark cells: ``edgeopt bench --profile``, as OpenVINO's
benchmark_app ``-pc`` (performance counters), onnxruntime_perf_test ``-p`` (a profile trace)
and TFLite's benchmark_model ``--enable_op_profiling`` report it.

Each measured cell gets one profiled session after the sweep, outside its timed runs (a
profiler slows a run down, so timing and profiling are never the same runs), at the cell's
backend, threads and batch, fed the first batch of its real inputs when it had them. The
profiler is the roofline's (:func:`edgeopt.bench.machine.layer_times.measure_layer_times`):
the runtime's own per-node times mapped back through its fusions to the ONNX nodes, each
layer's median over the profiled runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from ..analysis.profile import ModelProfile, profile
from ..errors import EdgeoptError
from .._util.deadline import Deadline
from .machine.layer_times import BACKENDS, measure_layer_times
from .result import BenchResult

if TYPE_CHECKING:
    from ..model import Model
    from .real_inputs import RealInputs

PROFILE_RUNS = 20
"""Profiled runs each layer's median is over (after :data:`PROFILE_WARMUP` uncounted ones)."""
PROFILE_WARMUP = 3


def check_profile_backends(backends: Sequence[str]) -> None:
    """Refuse ``--profile`` for backends without a per-layer profiler here.

    Raises:
        EdgeoptError: one line naming them and the backends that have one.
    """
    others = [b for b in backends if b not in BACKENDS]
    if others:
        raise EdgeoptError(f"--profile times layers on {' and '.join(BACKENDS)} only ({', '.join(others)} has no "
                           f"per-layer profiler in edgeopt): drop --profile or pass --backend {','.join(BACKENDS)}")


def profile_cells(model: "Model", results: Sequence[BenchResult], *, inputs: "RealInputs | None" = None,
                  deadline: Deadline | None = None, runs: int = PROFILE_RUNS, warmup: int = PROFILE_WARMUP) -> None:
    """Set ``layers`` of every measured cell of ``results`` to its per-layer times
    (:meth:`~edgeopt.bench.machine.layer_times.LayerTimes.to_dict`, ms per run), or to
    {"error": why} when the profiler failed or the ``deadline`` had no room for it (a
    cell's estimate: its prepare plus ``runs + warmup + 1`` runs at its p50, twice over for
    the profiler's overhead). Cells with an error or no runs are left as they are.

    Raises:
        EdgeoptError: a measured cell's backend has no profiler (:func:`check_profile_backends`).
    """
    check_profile_backends(sorted({r.backend for r in results if r.ok}))
    profiles: dict[int, ModelProfile] = {}
    for r in results:
        if not r.ok:
            continue
        need_s = 2 * ((r.prepare_ms or 0.0) + (runs + warmup + 1) * r.stats.p50) / 1e3
        if deadline is not None and not deadline.allows(need_s):
            r.layers = {"error": deadline.why_not("profiled session", need_s=need_s)}
            continue
        if r.batch not in profiles:
            profiles[r.batch] = profile(model, batch=r.batch)
        feeds = inputs.feeds(model, r.batch, limit=1)[0] if inputs is not None else None
        try:
            times = measure_layer_times(model, profiles[r.batch], backend=r.backend, threads=r.threads,
                                        batch=r.batch, runs=runs, warmup=warmup, feeds=feeds)
        except EdgeoptError as e:  # one cell's profiler failing is that cell's note, not the run's end
            r.layers = {"error": str(e)}
            continue
        r.layers = times.to_dict()


def top_layers(layers: dict[str, Any], n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` layers of a cell's ``layers`` record that took the most time, slowest first.

    Returns:
        [{"name", "op_type", "ms" (median per run), "share" (of the sum over all layers,
        a fraction), "runtime_only"}]; layers fused into another (0 ms) are left out.
        [] for a record with an error or no time.
    """
    total = layers.get("kernel_ms") or 0.0
    rows = [t for t in layers.get("layers", []) if t["ms"] > 0]
    if total <= 0:
        return []
    rows.sort(key=lambda t: t["ms"], reverse=True)
    return [{"name": t["name"], "op_type": t["op_type"], "ms": t["ms"], "share": t["ms"] / total,
             "runtime_only": t["runtime_only"]} for t in rows[:n]]
