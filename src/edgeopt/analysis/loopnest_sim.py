"""Brute-force simulator of the tiled convolution loop nest: the oracle that the closed-form
counts of :mod:`edgeopt.analysis.dataflow` are tested against.

It walks every iteration of the nest (groups outermost, then the three tile loops in the
given permutation) and keeps an explicit buffer per operand holding one resident tile
(the buffer model of :mod:`edgeopt.analysis.dataflow`, points 1-3). Nothing here uses the
closed form: the input rows a tile reads are enumerated from the convolution's definition
(output ``o`` reads padded row ``o * stride + j``, ``j < K``), and a tile is loaded, written
back or read back when the iteration's tile differs from the resident one.

With ``compute=True`` it also computes the convolution from the buffers alone: every
element that is not resident is NaN, so reading data that was never loaded (a halo row
too few, a partial sum that was not read back) poisons the result, and the outputs written
off chip are compared with a direct convolution of the same integer-valued data (exact in
float64, whatever the summation order).

Python loops over every iteration: meant for small layers (M, N <= 8, R, C <= 6, K <= 3).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ..errors import EdgeoptError
from .dataflow import LOOPS, ConvLayer, Tiling


@dataclass(frozen=True)
class SimResult:
    """Counted off-chip words of one simulated run (all groups).

    Attributes:
        input_reads, weight_reads, output_reads, output_writes: words moved, as in
            :class:`edgeopt.analysis.dataflow.Traffic`.
        peak_words: the largest tile each buffer held (input, weight, output), words.
        output: (M, R, C) float64 outputs written off chip (``compute=True``), else None.
        expected: (M, R, C) float64 direct convolution of the same data, else None.
    """

    input_reads: int
    weight_reads: int
    output_reads: int
    output_writes: int
    peak_words: tuple[int, int, int]
    output: np.ndarray | None = None
    expected: np.ndarray | None = None

    @property
    def total(self) -> int:
        """All off-chip words."""
        return self.input_reads + self.weight_reads + self.output_reads + self.output_writes


def _ranges(size: int, tile: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + tile, size)) for lo in range(0, size, tile)]


def rows_read(lo: int, hi: int, k: int, stride: int, pad: int, size: int) -> np.ndarray:
    """Real input rows (sorted int64) that outputs ``lo .. hi-1`` of one axis read, by
    enumeration: output ``o`` reads real row ``o * stride + j - pad`` for ``j < k``, when
    that row is inside ``0 .. size-1`` (the rest is padding)."""
    rows = {o * stride + j - pad for o in range(lo, hi) for j in range(k)}
    return np.asarray(sorted(y for y in rows if 0 <= y < size), dtype=np.int64)


def _padded(layer: ConvLayer, x: np.ndarray | None, fill: float) -> np.ndarray:
    """(N, Hp, Wp) float64: zero padding around, ``x`` inside (``fill`` when x is None),
    large enough for every window of the outputs."""
    (kh, kw), (sh, sw), (ph, pw) = layer.k, layer.stride, layer.pad
    hp = max(ph + layer.h, (layer.r - 1) * sh + kh)
    wp = max(pw + layer.w, (layer.c - 1) * sw + kw)
    buf = np.zeros((layer.n, hp, wp))
    buf[:, ph:ph + layer.h, pw:pw + layer.w] = fill if x is None else x
    return buf


def _accumulate(layer: ConvLayer, acc: np.ndarray, w: np.ndarray, xp: np.ndarray,
                rows: tuple[int, int], cols: tuple[int, int]) -> None:
    """acc (tm, rows, cols) += conv of w (tm, tn, Kh, Kw) over the padded input xp (tn, Hp, Wp)."""
    (kh, kw), (sh, sw) = layer.k, layer.stride
    (r0, r1), (c0, c1) = rows, cols
    for ky in range(kh):
        for kx in range(kw):
            patch = xp[:, r0 * sh + ky:(r1 - 1) * sh + ky + 1:sh, c0 * sw + kx:(c1 - 1) * sw + kx + 1:sw]
            acc += np.tensordot(w[:, :, ky, kx], patch, axes=(1, 0))


def direct_conv(layer: ConvLayer, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Direct grouped convolution: x (N, H, W), w (M, N/groups, Kh, Kw) -> (M, R, C) float64."""
    xp = _padded(layer, x, 0.0)
    mg, ng = layer.m // layer.groups, layer.n // layer.groups
    out = np.zeros((layer.m, layer.r, layer.c))
    for g in range(layer.groups):
        _accumulate(layer, out[g * mg:(g + 1) * mg], w[g * mg:(g + 1) * mg], xp[g * ng:(g + 1) * ng],
                    (0, layer.r), (0, layer.c))
    return out


def simulate(layer: ConvLayer, tiling: Tiling, perm: Sequence[str], *, compute: bool = True,
             seed: int = 0) -> SimResult:
    """Walk the tiled loop nest of ``layer`` with loops ``perm`` (outer to inner) and count.

    Args:
        layer: the convolution (small: every iteration is a Python step).
        tiling: tile sizes per group; sizes above a dimension act as the whole dimension.
        perm: a permutation of "m", "n", "s".
        compute: also compute the outputs from the buffers (NaN where not resident) and
            the direct convolution, on integer data in [-2, 2] drawn with ``seed``.

    Raises:
        EdgeoptError: ``perm`` is not a permutation of m, n, s, or a tile size is < 1.
    """
    if sorted(perm) != sorted(LOOPS):
        raise EdgeoptError(f"loop order {perm!r} is not a permutation of m, n, s")
    if min(tiling.tm, tiling.tn, tiling.tr, tiling.tc) < 1:
        raise EdgeoptError(f"tile sizes {tiling} must be >= 1")
    g_count = layer.groups
    mg, ng = layer.m // g_count, layer.n // g_count
    (kh, kw), (sh, sw), (ph, pw) = layer.k, layer.stride, layer.pad
    tiles = {"m": _ranges(mg, tiling.tm), "n": _ranges(ng, tiling.tn),
             "s": [(rt, ct) for rt in _ranges(layer.r, tiling.tr) for ct in _ranges(layer.c, tiling.tc)]}

    if compute:
        rng = np.random.default_rng(seed)
        x = rng.integers(-2, 3, (layer.n, layer.h, layer.w)).astype(np.float64)
        w = rng.integers(-2, 3, (layer.m, ng, kh, kw)).astype(np.float64)
        in_buf = _padded(layer, None, np.nan)
        w_buf = np.full(w.shape, np.nan)
        out_buf = np.full((layer.m, layer.r, layer.c), np.nan)
        out_dram = np.full_like(out_buf, np.nan)

    count = {"input": 0, "weight": 0, "out_r": 0, "out_w": 0}
    peak = {"input": 0, "weight": 0, "output": 0}
    resident: dict[str, tuple | None] = {"input": None, "weight": None, "output": None}
    visited: set[tuple] = set()

    def output_region(key: tuple) -> tuple[slice, slice, slice]:
        g, mi, si = key
        (m0, m1), ((r0, r1), (c0, c1)) = tiles["m"][mi], tiles["s"][si]
        return slice(g * mg + m0, g * mg + m1), slice(r0, r1), slice(c0, c1)

    def write_back(key: tuple) -> None:
        region = output_region(key)
        count["out_w"] += int(np.prod([s.stop - s.start for s in region]))
        if compute:
            out_dram[region] = out_buf[region]
            out_buf[region] = np.nan

    for g in range(g_count):
        for idx in itertools.product(*(range(len(tiles[loop])) for loop in perm)):
            i = dict(zip(perm, idx))
            (m0, m1), (n0, n1), ((r0, r1), (c0, c1)) = tiles["m"][i["m"]], tiles["n"][i["n"]], tiles["s"][i["s"]]
            chans_in = np.arange(g * ng + n0, g * ng + n1)
            chans_out = slice(g * mg + m0, g * mg + m1)

            key = (g, i["n"], i["s"])
            if resident["input"] != key:
                rows = rows_read(r0, r1, kh, sh, ph, layer.h)
                cols = rows_read(c0, c1, kw, sw, pw, layer.w)
                words = len(chans_in) * len(rows) * len(cols)
                count["input"] += words
                peak["input"] = max(peak["input"], words)
                if compute:
                    in_buf[:, ph:ph + layer.h, pw:pw + layer.w] = np.nan
                    in_buf[np.ix_(chans_in, rows + ph, cols + pw)] = x[np.ix_(chans_in, rows, cols)]
                resident["input"] = key

            key = (g, i["m"], i["n"])
            if resident["weight"] != key:
                words = (m1 - m0) * (n1 - n0) * kh * kw
                count["weight"] += words
                peak["weight"] = max(peak["weight"], words)
                if compute:
                    w_buf[:] = np.nan
                    w_buf[chans_out, n0:n1] = w[chans_out, n0:n1]
                resident["weight"] = key

            key = (g, i["m"], i["s"])
            if resident["output"] != key:
                if resident["output"] is not None:
                    write_back(resident["output"])
                region = output_region(key)
                words = int(np.prod([s.stop - s.start for s in region]))
                peak["output"] = max(peak["output"], words)
                if key in visited:
                    count["out_r"] += words
                    if compute:
                        out_buf[region] = out_dram[region]
                elif compute:
                    out_buf[region] = 0.0
                visited.add(key)
                resident["output"] = key

            if compute:
                _accumulate(layer, out_buf[chans_out, r0:r1, c0:c1], w_buf[chans_out, n0:n1],
                            in_buf[chans_in], (r0, r1), (c0, c1))
    write_back(resident["output"])  # type: ignore[arg-type]

    return SimResult(
        input_reads=count["input"], weight_reads=count["weight"],
        output_reads=count["out_r"], output_writes=count["out_w"],
        peak_words=(peak["input"], peak["weight"], peak["output"]),
        output=out_dram if compute else None,
        expected=direct_conv(layer, x, w) if compute else None,
    )
