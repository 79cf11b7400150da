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
from .dataflow.layer import ConvLayer, Tiling
from .dataflow.traffic import LOOPS


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
    nest = _Nest(layer, tiling, _Data.draw(layer, seed) if compute else None)
    for g in range(layer.groups):
        for idx in itertools.product(*(range(len(nest.tiles[loop])) for loop in perm)):
            nest.step(g, dict(zip(perm, idx)))
    nest.write_back(nest.resident["output"])  # type: ignore[arg-type]
    data = nest.data
    return SimResult(
        input_reads=nest.count["input"], weight_reads=nest.count["weight"],
        output_reads=nest.count["out_r"], output_writes=nest.count["out_w"],
        peak_words=(nest.peak["input"], nest.peak["weight"], nest.peak["output"]),
        output=data.out_dram if data else None,
        expected=direct_conv(layer, data.x, data.w) if data else None,
    )


@dataclass
class _Data:
    """The data of a computing run and the on-chip buffers; NaN marks what is not resident.

    Attributes:
        x: (N, H, W) float64 input, integers in [-2, 2].
        w: (M, N/groups, Kh, Kw) float64 weights, integers in [-2, 2].
        in_buf: (N, Hp, Wp) the input buffer, zero padding around (:func:`_padded`).
        w_buf: the weight buffer, shaped as ``w``.
        out_buf: (M, R, C) the output buffer (partial sums).
        out_dram: (M, R, C) the outputs written off chip.
    """

    x: np.ndarray
    w: np.ndarray
    in_buf: np.ndarray
    w_buf: np.ndarray
    out_buf: np.ndarray
    out_dram: np.ndarray

    @classmethod
    def draw(cls, layer: ConvLayer, seed: int) -> "_Data":
        """Integer data from ``seed`` (input first, then weights) and empty (NaN) buffers."""
        (kh, kw), ng = layer.k, layer.n // layer.groups
        rng = np.random.default_rng(seed)
        x = rng.integers(-2, 3, (layer.n, layer.h, layer.w)).astype(np.float64)
        w = rng.integers(-2, 3, (layer.m, ng, kh, kw)).astype(np.float64)
        out_buf = np.full((layer.m, layer.r, layer.c), np.nan)
        return cls(x, w, _padded(layer, None, np.nan), np.full(w.shape, np.nan), out_buf,
                   np.full_like(out_buf, np.nan))


class _Nest:
    """One walk of the loop nest: the tiles of each loop, the words counted, the largest
    tile of each buffer, the resident tile of each operand and the output tiles visited.

    A tile key names the loop indices the operand depends on, with the group first:
    input (g, n, s), weight (g, m, n), output (g, m, s).
    """

    def __init__(self, layer: ConvLayer, tiling: Tiling, data: _Data | None) -> None:
        self.layer, self.data = layer, data
        self.mg, self.ng = layer.m // layer.groups, layer.n // layer.groups
        self.tiles = {"m": _ranges(self.mg, tiling.tm), "n": _ranges(self.ng, tiling.tn),
                      "s": [(rt, ct) for rt in _ranges(layer.r, tiling.tr)
                            for ct in _ranges(layer.c, tiling.tc)]}
        self.count = {"input": 0, "weight": 0, "out_r": 0, "out_w": 0}
        self.peak = {"input": 0, "weight": 0, "output": 0}
        self.resident: dict[str, tuple | None] = {"input": None, "weight": None, "output": None}
        self.visited: set[tuple] = set()

    def step(self, g: int, i: dict[str, int]) -> None:
        """One innermost iteration: bring the three tiles it needs on chip, then compute."""
        self._load_input(g, i)
        self._load_weight(g, i)
        self._swap_output(g, i)
        if self.data is not None:
            d = self.data
            (m0, m1), (n0, n1) = self.tiles["m"][i["m"]], self.tiles["n"][i["n"]]
            (r0, r1), (c0, c1) = self.tiles["s"][i["s"]]
            chans_out = slice(g * self.mg + m0, g * self.mg + m1)
            _accumulate(self.layer, d.out_buf[chans_out, r0:r1, c0:c1], d.w_buf[chans_out, n0:n1],
                        d.in_buf[g * self.ng + n0:g * self.ng + n1], (r0, r1), (c0, c1))

    def _load_input(self, g: int, i: dict[str, int]) -> None:
        """Load the input tile (the real rows and columns its outputs read) if not resident."""
        key = (g, i["n"], i["s"])
        if self.resident["input"] == key:
            return
        layer = self.layer
        (kh, kw), (sh, sw), (ph, pw) = layer.k, layer.stride, layer.pad
        n0, n1 = self.tiles["n"][i["n"]]
        (r0, r1), (c0, c1) = self.tiles["s"][i["s"]]
        chans_in = np.arange(g * self.ng + n0, g * self.ng + n1)
        rows = rows_read(r0, r1, kh, sh, ph, layer.h)
        cols = rows_read(c0, c1, kw, sw, pw, layer.w)
        words = len(chans_in) * len(rows) * len(cols)
        self.count["input"] += words
        self.peak["input"] = max(self.peak["input"], words)
        if self.data is not None:
            d = self.data
            d.in_buf[:, ph:ph + layer.h, pw:pw + layer.w] = np.nan
            d.in_buf[np.ix_(chans_in, rows + ph, cols + pw)] = d.x[np.ix_(chans_in, rows, cols)]
        self.resident["input"] = key

    def _load_weight(self, g: int, i: dict[str, int]) -> None:
        """Load the weight tile if not resident."""
        key = (g, i["m"], i["n"])
        if self.resident["weight"] == key:
            return
        (m0, m1), (n0, n1) = self.tiles["m"][i["m"]], self.tiles["n"][i["n"]]
        words = (m1 - m0) * (n1 - n0) * self.layer.k[0] * self.layer.k[1]
        self.count["weight"] += words
        self.peak["weight"] = max(self.peak["weight"], words)
        if self.data is not None:
            chans_out = slice(g * self.mg + m0, g * self.mg + m1)
            self.data.w_buf[:] = np.nan
            self.data.w_buf[chans_out, n0:n1] = self.data.w[chans_out, n0:n1]
        self.resident["weight"] = key

    def _swap_output(self, g: int, i: dict[str, int]) -> None:
        """Write the resident output tile back and bring this one in: read back when
        visited before (a partial sum), else initialised to 0 on chip."""
        key = (g, i["m"], i["s"])
        if self.resident["output"] == key:
            return
        if self.resident["output"] is not None:
            self.write_back(self.resident["output"])
        region = self.output_region(key)
        words = int(np.prod([s.stop - s.start for s in region]))
        self.peak["output"] = max(self.peak["output"], words)
        if key in self.visited:
            self.count["out_r"] += words
            if self.data is not None:
                self.data.out_buf[region] = self.data.out_dram[region]
        elif self.data is not None:
            self.data.out_buf[region] = 0.0
        self.visited.add(key)
        self.resident["output"] = key

    def output_region(self, key: tuple) -> tuple[slice, slice, slice]:
        """(channels, rows, columns) of the output tile ``key`` in the (M, R, C) output."""
        g, mi, si = key
        (m0, m1), ((r0, r1), (c0, c1)) = self.tiles["m"][mi], self.tiles["s"][si]
        return slice(g * self.mg + m0, g * self.mg + m1), slice(r0, r1), slice(c0, c1)

    def write_back(self, key: tuple) -> None:
        """Write the output tile ``key`` off chip; its buffer is then empty (NaN)."""
        region = self.output_region(key)
        self.count["out_w"] += int(np.prod([s.stop - s.start for s in region]))
        if self.data is not None:
            self.data.out_dram[region] = self.data.out_buf[region]
            self.data.out_buf[region] = np.nan
