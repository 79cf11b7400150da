"""The closed-form traffic model: off-chip words and buffer words of a tiling under a
loop order, by the counting rule of :mod:`edgeopt.analysis.dataflow` (which the
brute-force simulator :mod:`edgeopt.analysis.loopnest_sim` validates).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...errors import EdgeoptError
from .layer import ConvLayer, Tiling

LOOPS = ("m", "n", "s")
# The loop each operand's tile index does not depend on.
INDEPENDENT = {"input": "m", "weight": "s", "output": "n"}
ORDERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "IR": (("s", "n", "m"), ("n", "s", "m")),
    "OR": (("s", "m", "n"), ("m", "s", "n")),
    "WR": (("m", "n", "s"), ("n", "m", "s")),
}


@dataclass(frozen=True)
class Traffic:
    """Off-chip accesses of one layer (all groups), in words, and the buffer a tiling needs.

    Attributes:
        input_reads: input words read from off-chip memory.
        weight_reads: weight words read.
        output_reads: partial-sum words read back.
        output_writes: output words written (partial and final).
        buffer_words: (input, weight, output) buffer sizes in words: each the largest tile.
    """

    input_reads: int
    weight_reads: int
    output_reads: int
    output_writes: int
    buffer_words: tuple[int, int, int]

    @property
    def total(self) -> int:
        """All off-chip words, reads and writes."""
        return self.input_reads + self.weight_reads + self.output_reads + self.output_writes


def touched(lo: int, hi: int, k: int, stride: int, pad: int, size: int) -> int:
    """How many real input rows (or columns) the outputs ``lo .. hi-1`` of one axis read.

    Output ``o`` reads padded rows ``o*stride .. o*stride + k - 1``, i.e. real rows shifted
    by ``-pad``, clipped to ``0 .. size-1`` (padding is not loaded). When ``k >= stride`` the
    windows overlap or abut and the union is one interval; otherwise they are disjoint.
    """
    if hi <= lo:
        return 0
    if k >= stride:
        return max(0, min(size, (hi - 1) * stride - pad + k) - max(0, lo * stride - pad))
    return sum(max(0, min(size, o * stride - pad + k) - max(0, o * stride - pad)) for o in range(lo, hi))


def _axis(layer: ConvLayer, axis: int, tiles: Sequence[int]) -> tuple[np.ndarray, ...]:
    """Per candidate tile size of a spatial axis: (trips, sum of input extents over the
    tiles, largest input extent, output tile size)."""
    out = (layer.r, layer.c)[axis]
    k, s, p, size = layer.k[axis], layer.stride[axis], layer.pad[axis], (layer.h, layer.w)[axis]
    trips, sums, peaks = [], [], []
    for t in tiles:
        extents = [touched(lo, min(lo + t, out), k, s, p, size) for lo in range(0, out, t)]
        trips.append(len(extents))
        sums.append(sum(extents))
        peaks.append(max(extents))
    tile = np.minimum(np.asarray(tiles, np.int64), out)
    return np.asarray(trips, np.int64), np.asarray(sums, np.int64), np.asarray(peaks, np.int64), tile


def evaluate_grid(layer: ConvLayer, perm: Sequence[str], tms: Sequence[int], tns: Sequence[int],
              trs: Sequence[int], tcs: Sequence[int]) -> dict[str, np.ndarray]:
    """Traffic and buffer words of every tiling in the grid tms x tns x trs x tcs (arrays
    broadcastable to that 4-D shape), for the loop permutation ``perm`` (outer to inner)."""
    g = layer.groups
    mg, ng = layer.m // g, layer.n // g
    kk = layer.k[0] * layer.k[1]
    tm = np.asarray(tms, np.int64).reshape(-1, 1, 1, 1)
    tn = np.asarray(tns, np.int64).reshape(1, -1, 1, 1)
    r_trips, r_sum, r_peak, tr = (a.reshape(1, 1, -1, 1) for a in _axis(layer, 0, trs))
    c_trips, c_sum, c_peak, tc = (a.reshape(1, 1, 1, -1) for a in _axis(layer, 1, tcs))
    trips = {"m": -(-mg // tm), "n": -(-ng // tn), "s": r_trips * c_trips}
    totals = {"input": ng * r_sum * c_sum, "weight": np.int64(mg * ng * kk),
              "output": np.int64(mg * layer.r * layer.c)}
    words = {}
    for operand, free in INDEPENDENT.items():
        pos = perm.index(free)
        inner = np.int64(1)
        for loop in perm[pos + 1:]:
            inner = inner * trips[loop]
        words[operand] = g * totals[operand] * np.where(inner > 1, trips[free], 1)
    tm_, tn_ = np.minimum(tm, mg), np.minimum(tn, ng)
    buffers = (tn_ * r_peak * c_peak, tm_ * tn_ * kk, tm_ * tr * tc)
    return {
        "input_reads": words["input"],
        "weight_reads": words["weight"],
        "output_writes": words["output"],
        "output_reads": words["output"] - g * totals["output"],
        "buffer_in": buffers[0], "buffer_w": buffers[1], "buffer_out": buffers[2],
    }


def _check_perm(perm: Sequence[str]) -> tuple[str, str, str]:
    if sorted(perm) != sorted(LOOPS):
        raise EdgeoptError(f"loop order {perm!r} is not a permutation of m, n, s: pass e.g. ('s', 'm', 'n')")
    return tuple(perm)  # type: ignore[return-value]


def traffic(layer: ConvLayer, tiling: Tiling, perm: Sequence[str]) -> Traffic:
    """Off-chip words and buffer words of ``layer`` tiled by ``tiling``, loops ``perm``
    (outer to inner, e.g. ``("s", "m", "n")`` for OR), by the closed form of the package doc.

    Raises:
        EdgeoptError: ``perm`` is not a permutation of m, n, s, or a tile size is < 1.
    """
    perm = _check_perm(perm)
    if min(tiling.tm, tiling.tn, tiling.tr, tiling.tc) < 1:
        raise EdgeoptError(f"tile sizes {tiling} must be >= 1")
    grid = evaluate_grid(layer, perm, [tiling.tm], [tiling.tn], [tiling.tr], [tiling.tc])
    one = {k: int(np.broadcast_to(v, (1, 1, 1, 1))[0, 0, 0, 0]) for k, v in grid.items()}
    return Traffic(one["input_reads"], one["weight_reads"], one["output_reads"], one["output_writes"],
                   (one["buffer_in"], one["buffer_w"], one["buffer_out"]))



def floor_traffic(layer: ConvLayer) -> Traffic:
    """The compulsory traffic: every input element read, weight read and output written
    exactly once (one tile per group holding the whole layer). No tiling or loop order
    moves fewer words; the buffer words it reports are what that would take."""
    return traffic(layer, Tiling(layer.m // layer.groups, layer.n // layer.groups, layer.r, layer.c), LOOPS)
