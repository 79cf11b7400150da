"""Roofline of a model on a device: per-layer arithmetic intensity, the roof, measured time.

The model itself (attainable = min(peak, bandwidth x AI), the ridge point, cache-aware
levels; Williams, Waterman & Patterson, CACM 2009) is static and lives in
:mod:`edgeopt.analysis.roofline`; this module places a model's measured layers under it.

Per layer (an ONNX node of :func:`edgeopt.profile`):

- FLOPs = 2 x MACs (1 MAC = a multiply and an add); layers without MACs (Relu, Add,
  pooling) have FLOPs = 0 here, so AI = 0: they appear with their time but have no
  point on the roofline.
- bytes = weight bytes + input and output activation bytes (``LayerProfile``): the
  compulsory traffic when nothing stays in cache between layers, i.e. the classic
  roofline's DRAM bytes with no cache reuse across layers. A layer whose working set
  fits in cache can therefore sit above the bandwidth roof.
- measured ms from the runtime's profiler (:mod:`edgeopt.bench.machine.layer_times`); a
  fused kernel's time (Conv+BN+Relu) is charged to the conv, so its achieved GFLOP/s
  includes the fused element-wise tail.
- achieved GFLOP/s = FLOPs / time, % of roof = achieved / attainable.

The roof is the device profile's fp32 peak at the thread count used (or int8 with
``precision="int8"``) and its best sustained bandwidth (:class:`DeviceProfile`).

**Cache-aware roofs** (Ilic, Pratas & Sousa, IEEE CAL 2014), when the device profile has
them (:mod:`edgeopt.bench.machine.cache_bandwidth`, measured by ``edgeopt machine``): each
layer is also placed under the roof of the level its working set (the bytes above) fits
in, L2, L3 or DRAM (:func:`~edgeopt.analysis.roofline.level_of`), at the thread
count used. A small layer that beats the DRAM roof because its data stays in L2 is then
judged against the L2 roof (``level_*`` fields). Which level really serves a layer takes
hardware counters to know; the working set is the model's estimate of it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from ...analysis.profile import ModelProfile, profile
from ...analysis.roofline import (above_roof, above_roof_note, arithmetic_intensity, attainable_gflops,
                                  is_memory_bound, roof_level)
from ...errors import EdgeoptError
from .layer_times import BACKENDS, LayerTimes, measure_layer_times

if TYPE_CHECKING:
    from ...analysis.device import DeviceProfile
    from ...model import Model


@dataclass(frozen=True)
class RooflineRow:
    """One layer on the roofline.

    Attributes:
        name, op_type: the ONNX node (or a runtime-only kernel, e.g. ORT's ReorderInput).
        macs: multiply-accumulates; flops = 2 x macs.
        bytes: weight + input + output activation bytes (0 for a runtime-only row).
        intensity: FLOPs per byte (0 without MACs).
        attainable_gflops: the roof at ``intensity``, GFLOP/s (0 without MACs).
        ms: measured time per run, ms (0 when fused into another layer).
        achieved_gflops: FLOPs / time, GFLOP/s; None without FLOPs or time.
        roof_pct: achieved / attainable x 100; None when achieved is.
        bound: "memory" or "compute" for a layer with FLOPs, "-" otherwise.
        status: "timed", "fused into NAME", "runtime-only" or "no kernel"
            (:attr:`edgeopt.bench.machine.layer_times.LayerTime.status`).
        level: cache-aware: "L2", "L3" or "DRAM", where ``bytes`` fits; "-" without
            MACs or without cache-aware roofs.
        level_attainable_gflops, level_roof_pct, level_bound: ``attainable_gflops``,
            ``roof_pct`` and ``bound`` under that level's bandwidth (None / "-" as ``level``).
    """

    name: str
    op_type: str
    macs: int
    bytes: int
    intensity: float
    attainable_gflops: float
    ms: float
    achieved_gflops: float | None
    roof_pct: float | None
    bound: str
    status: str
    level: str = "-"
    level_attainable_gflops: float | None = None
    level_roof_pct: float | None = None
    level_bound: str = "-"

    @property
    def flops(self) -> int:
        """2 x MACs."""
        return 2 * self.macs

    @property
    def judged_roof_pct(self) -> float | None:
        """% of the roof this layer is judged against: its cache level's when it has one,
        else the base roof's (None without a measured GFLOP/s)."""
        return self.level_roof_pct if self.level != "-" else self.roof_pct

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields plus ``flops``."""
        return {**asdict(self), "flops": self.flops}


def roofline_rows(prof: "ModelProfile", times: "LayerTimes", *, peak_gflops: float, bandwidth_gbs: float,
                  memory_roofs: dict[str, float] | None = None,
                  caches: dict[str, int] | None = None) -> list[RooflineRow]:
    """Roofline rows of ``prof``'s layers with ``times`` (same order; runtime-only rows last).

    Args:
        prof: the static profile (MACs, bytes per layer).
        times: measured per-layer times of the same model and batch.
        peak_gflops, bandwidth_gbs: the roofs (GFLOP/s, GB/s).
        memory_roofs: cache-aware roofs {"L2" | "L3" | "DRAM": GB/s} at the thread count
            used, or None (then the ``level_*`` fields stay empty).
        caches: {"L2": bytes, "L3": bytes}, the capacities that pick a layer's level.

    Raises:
        EdgeoptError: a bad roof, or ``times`` is for another batch than ``prof``.
    """
    if times.batch != prof.batch:
        raise EdgeoptError(f"times are at batch {times.batch}, the profile at batch {prof.batch}: "
                           f"measure and profile at one batch size")
    ridge = peak_gflops / bandwidth_gbs
    attainable_gflops(0.0, peak_gflops, bandwidth_gbs)  # validates the roof once
    measured = times.by_name()
    rows = []
    for layer in prof.layers:
        t = measured.get(layer.name)
        moved = layer.weight_bytes + layer.activation_bytes
        ai = arithmetic_intensity(layer.macs, moved)
        row = _row(layer.name, layer.op_type, layer.macs, moved, ai, t.ms if t else 0.0,
                   t.status if t else "no kernel", peak_gflops, bandwidth_gbs, ridge)
        rows.append(_cache_aware(row, peak_gflops, memory_roofs, caches or {}) if memory_roofs else row)
    rows += [_row(t.name, t.op_type, 0, 0, 0.0, t.ms, t.status, peak_gflops, bandwidth_gbs, ridge)
             for t in times.layers if t.runtime_only]
    return rows


def _row(name: str, op: str, macs: int, moved: int, ai: float, ms: float, status: str,
         peak: float, bandwidth: float, ridge: float) -> RooflineRow:
    roof = attainable_gflops(ai, peak, bandwidth) if macs else 0.0
    achieved = 2 * macs / ms / 1e6 if macs and ms > 0 else None  # FLOPs / ms / 1e6 = GFLOP/s
    return RooflineRow(
        name=name, op_type=op, macs=macs, bytes=moved, intensity=ai, attainable_gflops=roof, ms=ms,
        achieved_gflops=achieved, roof_pct=100 * achieved / roof if achieved is not None else None,
        bound=("memory" if is_memory_bound(ai, ridge) else "compute") if macs else "-", status=status,
    )


def _cache_aware(row: RooflineRow, peak: float, memory_roofs: dict[str, float],
                 caches: dict[str, int]) -> RooflineRow:
    """``row`` with its level fields: the roof of the level its working set fits in."""
    if not row.macs:
        return row
    level = roof_level(row.bytes, memory_roofs, caches)
    if level is None:  # DRAM not measured: no cache-aware roof for this row
        return row
    bandwidth = memory_roofs[level]
    roof = attainable_gflops(row.intensity, peak, bandwidth)
    return dataclasses.replace(
        row, level=level, level_attainable_gflops=roof,
        level_roof_pct=100 * row.achieved_gflops / roof if row.achieved_gflops is not None else None,
        level_bound="memory" if is_memory_bound(row.intensity, peak / bandwidth) else "compute")


@dataclass(frozen=True)
class Roofline:
    """A model's roofline on one device, backend and thread count.

    Attributes:
        model: the model's display name.
        backend, threads, batch, runs: how the times were measured.
        device: the device profile the roofs come from.
        precision: "fp32" or "int8" (which peak).
        peak_gflops: compute roof at ``threads``, GFLOP/s.
        bandwidth_gbs: memory roof, GB/s.
        model_ms: median wall-clock ms of one profiled run.
        rows: per layer, graph order, runtime-only rows last.
        memory_roofs_gbs: the cache-aware roofs used, {"L2" | "L3" | "DRAM": GB/s} at
            ``threads`` (empty when the device profile has none).
    """

    model: str
    backend: str
    threads: int
    batch: int
    runs: int
    device: "DeviceProfile"
    precision: str
    peak_gflops: float
    bandwidth_gbs: float
    model_ms: float
    rows: tuple[RooflineRow, ...]
    memory_roofs_gbs: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def ridge(self) -> float:
        """Ridge point, FLOPs per byte: peak / bandwidth."""
        return self.peak_gflops / self.bandwidth_gbs

    @property
    def flops(self) -> int:
        """Total FLOPs of a run (2 x MACs)."""
        return sum(r.flops for r in self.rows)

    @property
    def kernel_ms(self) -> float:
        """Sum of the per-layer times, ms per run."""
        return sum(r.ms for r in self.rows)

    @property
    def achieved_gflops(self) -> float:
        """Whole model: FLOPs / wall-clock time of a run, GFLOP/s."""
        return self.flops / self.model_ms / 1e6 if self.model_ms > 0 else 0.0

    @property
    def pct_of_peak(self) -> float:
        """Whole model achieved as % of the compute peak."""
        return 100 * self.achieved_gflops / self.peak_gflops

    @property
    def above_roof(self) -> tuple[RooflineRow, ...]:
        """Layers measured faster than their roof (:attr:`RooflineRow.judged_roof_pct` > 100)."""
        return tuple(r for r in self.rows if above_roof(r.judged_roof_pct))

    @property
    def note(self) -> str | None:
        """One line for the table and the report when layers sit above their roof
        (:func:`~edgeopt.analysis.roofline.above_roof_note`), else None."""
        over = self.above_roof
        return above_roof_note(len(over), max((r.judged_roof_pct for r in over), default=0.0), self.device.source)

    def share_ms(self, bound: str, *, cache_aware: bool = False) -> float:
        """Fraction (0..1) of the kernel time in rows whose ``bound`` (``level_bound``
        with ``cache_aware``) is "memory", "compute" or "-" (no MACs and runtime-only)."""
        total = self.kernel_ms
        key = (lambda r: r.level_bound) if cache_aware else (lambda r: r.bound)
        return sum(r.ms for r in self.rows if key(r) == bound) / total if total > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: settings, the device profile, roofs, totals and the rows."""
        return {
            "model": self.model, "backend": self.backend, "threads": self.threads, "batch": self.batch,
            "runs": self.runs, "device": self.device.to_dict(), "precision": self.precision,
            "peak_gflops": self.peak_gflops, "bandwidth_gbs": self.bandwidth_gbs, "ridge": self.ridge,
            "model_ms": self.model_ms, "kernel_ms": self.kernel_ms, "flops": self.flops,
            "achieved_gflops": self.achieved_gflops, "pct_of_peak": self.pct_of_peak,
            "memory_bound_share": self.share_ms("memory"), "compute_bound_share": self.share_ms("compute"),
            "no_macs_share": self.share_ms("-"),
            "memory_roofs_gbs": self.memory_roofs_gbs,
            "cache_aware_memory_bound_share": self.share_ms("memory", cache_aware=True),
            "above_roof": [r.name for r in self.above_roof], "note": self.note,
            "rows": [r.to_dict() for r in self.rows],
        }


def roofline(model: "Model", device: "DeviceProfile", *, backend: str = "ort", threads: int = 1,
             batch: int = 1, runs: int = 20, warmup: int = 5, precision: str = "fp32") -> Roofline:
    """Profile ``model``, time its layers on ``backend`` and place them under ``device``'s roofs.

    Args:
        model: the Model.
        device: roofs (:class:`~edgeopt.analysis.device.DeviceProfile`); the peak is taken
            at ``threads`` (the nearest measured count not above it).
        backend: "ort" (default) or "openvino" (best effort).
        threads, batch, runs, warmup: as :func:`edgeopt.bench.machine.layer_times.measure_layer_times`.
        precision: which peak, "fp32" or "int8" (a quantized model's MACs run on int8 units).

    Raises:
        EdgeoptError: the device has no peak for ``precision``, a bad roof or setting.
        BackendUnavailable: the runtime is missing or cannot run the model.
    """
    if backend not in BACKENDS:  # before the profile, which takes seconds on large models
        raise EdgeoptError(f"the roofline needs per-layer times from ort or openvino, got {backend!r}: pass --backend ort")
    peak = device.peak(precision, threads)
    if not device.bandwidth_gbs:
        raise EdgeoptError(f"device profile {device.name!r} has no bandwidth: re-run `edgeopt machine`")
    prof = profile(model, batch=batch)
    times = measure_layer_times(model, prof, backend=backend, threads=threads, batch=batch, runs=runs,
                                warmup=warmup)
    memory_roofs = device.memory_roofs(threads)
    rows = roofline_rows(prof, times, peak_gflops=peak, bandwidth_gbs=device.bandwidth, memory_roofs=memory_roofs,
                         caches=device.caches)
    return Roofline(model.name, backend, threads, batch, runs, device, precision, peak, device.bandwidth,
                    times.model_ms, tuple(rows), memory_roofs)
