"""The roofline model: arithmetic intensity, the attainable performance under the roofs,
and which cache level's roof a working set is placed under. Static: no measuring here
(the measured per-layer roofline is :mod:`edgeopt.bench.machine.roofline`).

The roofline model (Williams, Waterman & Patterson, "Roofline: an insightful visual
performance model for multicore architectures", CACM 52(4), 2009): a kernel that does
F FLOPs while moving B bytes between memory and the processor cannot run faster than

    attainable = min(peak, bandwidth x AI)   GFLOP/s,   AI = F / B   FLOPs per byte,

so a layer whose arithmetic intensity is below the ridge point ``peak / bandwidth`` is
memory-bound (the bandwidth roof caps it), one above it compute-bound.

**Cache-aware roofs** (Ilic, Pratas & Sousa, "Cache-aware Roofline model: upgrading the
loft", IEEE CAL 13(1), 2014): one memory roof per level of the hierarchy (L2, L3, DRAM;
measured by :mod:`edgeopt.bench.machine.cache_bandwidth`), and a kernel is placed under
the roof of the smallest level its working set fits in (:func:`level_of`). Which level
really serves a layer takes hardware counters to know; the working set is the model's
estimate of it.
"""

from __future__ import annotations

from ..errors import EdgeoptError

LEVELS = ("L2", "L3", "DRAM")  # the memory levels with a cache-aware roof, smallest first


def arithmetic_intensity(macs: int, moved_bytes: int) -> float:
    """FLOPs per byte: 2 x ``macs`` / ``moved_bytes`` (1 MAC = a multiply and an add);
    0.0 when nothing is moved (Williams et al. 2009)."""
    return 2 * macs / moved_bytes if moved_bytes else 0.0


def attainable_gflops(intensity: float, peak_gflops: float, bandwidth_gbs: float) -> float:
    """The roof at ``intensity``: min(peak, bandwidth x AI), GFLOP/s.

    Args:
        intensity: arithmetic intensity, FLOPs per byte (>= 0).
        peak_gflops: compute roof, GFLOP/s (> 0).
        bandwidth_gbs: memory roof, GB/s = 1e9 bytes/s (> 0); GB/s x FLOPs/byte = GFLOP/s.

    Raises:
        EdgeoptError: a negative intensity or a non-positive roof.

    Source: Williams, Waterman & Patterson, CACM 2009, eq. (1).
    """
    if peak_gflops <= 0 or bandwidth_gbs <= 0:
        raise EdgeoptError(f"roofline needs a positive peak and bandwidth, got {peak_gflops} GFLOP/s and "
                           f"{bandwidth_gbs} GB/s: fix the device profile (`edgeopt machine`)")
    if intensity < 0:
        raise EdgeoptError(f"arithmetic intensity must be >= 0, got {intensity}")
    return min(peak_gflops, bandwidth_gbs * intensity)


def is_memory_bound(intensity: float, ridge: float) -> bool:
    """True when the bandwidth roof caps a layer: ``intensity`` (FLOPs/byte) below the
    ridge point ``peak / bandwidth`` (FLOPs/byte). At the ridge both roofs are equal; it
    counts as compute-bound."""
    return intensity < ridge


def level_of(working_set_bytes: int, caches: dict[str, int]) -> str:
    """The smallest measured level whose capacity holds ``working_set_bytes``: "L2", "L3"
    or "DRAM" (a layer's weights + activations, the cache-aware roofline's choice of roof
    when per-level traffic is not counted by hardware counters)."""
    for level in ("L2", "L3"):
        if caches.get(level) and working_set_bytes <= caches[level]:
            return level
    return "DRAM"


def roof_level(working_set_bytes: int, memory_roofs: dict[str, float], caches: dict[str, int]) -> str | None:
    """The level whose cache-aware roof a working set is placed under: :func:`level_of`
    among the levels ``memory_roofs`` has a roof for; None when it lands in DRAM and DRAM
    has no roof.

    Args:
        working_set_bytes: weight + activation bytes of the layer.
        memory_roofs: {"L2" | "L3" | "DRAM": GB/s}, the roofs at the thread count used.
        caches: {"L2": bytes, "L3": bytes} capacities as the OS reports them.
    """
    level = level_of(working_set_bytes, {k: v for k, v in caches.items() if k in memory_roofs})
    return level if level in memory_roofs else None


def above_roof(roof_pct: float | None) -> bool:
    """True when a measured layer ran faster than its roof allows (``roof_pct`` > 100, the
    achieved GFLOP/s as % of the attainable): the roofline model says that cannot happen,
    so the roof, not the layer, is wrong."""
    return roof_pct is not None and roof_pct > 100.0


def above_roof_note(count: int, worst_pct: float, source: str) -> str | None:
    """One line saying that ``count`` layers measured above their roof, or None when none did.

    Args:
        count: layers with :func:`above_roof`.
        worst_pct: the largest of their % of roof.
        source: the device profile's source, "measured" (``edgeopt machine``: the roof was
            under-measured) or "datasheet" (the roofs are another machine's figures).
    """
    if count <= 0:
        return None
    what = (f"{count} layer{'s' if count > 1 else ''} measured above the roof (up to {worst_pct:.0f}% of it): ")
    if source == "measured":
        return what + "the roof (peak GFLOP/s or bandwidth) was under-measured; re-run `edgeopt machine`"
    return what + (f"the {source} roofs (peak GFLOP/s or bandwidth) are below what ran here; time the layers on "
                   f"that device, or pass --device with a profile from `edgeopt machine` on this one")
