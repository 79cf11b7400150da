"""Off-chip traffic, buffer size, latency and energy of a tiled convolution under the
input-reuse (IR), output-reuse (OR) and weight-reuse (WR) loop orders.

The loop nest is the tiled convolution of Zhang et al., "Optimizing FPGA-based
Accelerator Design for Deep Convolutional Neural Networks" (FPGA 2015, section 3): a conv
layer (M output channels, N input channels, R x C output, kernel Kh x Kw, stride S, batch
1) is cut into tiles of Tm output channels, Tn input channels and Tr x Tc output pixels,
and three tile loops walk them:

* ``m``: the output-channel tiles (ceil(M / Tm) of them),
* ``n``: the input-channel tiles (ceil(N / Tn)),
* ``s``: the spatial tiles, row tiles outer and column tiles inner (ceil(R / Tr) x ceil(C / Tc)).

An input tile depends on (n, s), a weight tile on (m, n), an output tile on (m, s). The
loop that an operand does not depend on, when innermost, keeps that operand on chip: the
three reuse orders of seed article 004 (section "数据复用") are the three choices of the
innermost loop:

* **IR** (input reuse): ``m`` innermost; an input tile updates every output channel
  before the next one is loaded.
* **OR** (output reuse): ``n`` innermost; an output tile is completed on chip, then written
  once (Zhang et al.'s order).
* **WR** (weight reuse): ``s`` innermost; a weight tile sweeps the whole feature map before
  the next one is loaded.

The two outer loops of each order are free; :func:`best_tiling` tries both permutations.

Buffer model (the brute-force simulator :mod:`edgeopt.analysis.loopnest_sim` implements
exactly this, and the tests check that the counts here match it):

1. Each operand has its own on-chip buffer that holds one tile (as in Zhang et al.'s
   separate input/weight/output buffers). The requirement of a tiling is the sum of the
   three buffers' largest tiles, in words; it must fit the given buffer size. No double
   buffering: to model ping-pong buffers, give half the buffer.
2. Before each innermost iteration, an operand whose needed tile differs from the
   resident one is loaded whole (no reuse of the halo shared by neighbouring spatial
   tiles). An input tile holds the real input elements its outputs read: zero padding is
   generated on chip and never loaded, and rows skipped by a stride larger than the
   kernel are not loaded.
3. An output tile is initialised on chip at its first visit; when it is replaced it is
   written back (a partial sum if input channels remain); when it is visited again it is
   read back first (partial-sum re-read). The last resident tile is written at the end.

Counting (the closed form the simulator validates): a tile of an operand is (re)loaded at
every iteration where its index changes. With the loops ordered outer to inner and ``p``
the loop the operand does not depend on, the index changes at every iteration when some
loop inside ``p`` has more than one trip, so the operand's words are ``trips(p) x T``;
otherwise each tile is loaded once, ``T`` words, where ``T`` is the sum of the operand's
tile sizes (M x N x Kh x Kw for weights, M x R x C for outputs, N x sum of the input rows
of every row tile x sum of the input columns of every column tile for inputs, halos
counted once per tile). Output writes follow the same rule; output reads are writes minus
M x R x C (first visits are not read).

Grouped and depthwise convolutions are modelled as ``groups`` independent convolutions of
M/groups output and N/groups input channels (a depthwise conv is N = M = 1 per group), run
one after the other: traffic, MACs and time add up over the groups; the buffer holds one
group's tiles. (Accelerators that pack several depthwise channels into one tile do better.)

Latency = max(MACs / MAC rate, off-chip bytes / bandwidth): transfers overlap compute,
the roofline assumption (Williams et al., CACM 2009). Energy per layer (Horowitz,
"Computing's energy problem", ISSCC 2014, 45 nm): 640 pJ per 32-bit DRAM access, 5 pJ per
32-bit read of an 8 KB SRAM, 4.6 pJ per fp32 MAC (3.7 mult + 0.9 add), 1.5 pJ per fp16 MAC
(1.1 + 0.4), 0.23 pJ per int8 MAC (0.2 + 0.03); memory energies scale linearly with the
word width (an approximation: a 1-byte access costs a quarter of a 4-byte one). On-chip
accesses: every MAC reads an input and a weight from the buffers (the partial sum stays in
the processing element's accumulator), and every off-chip word passes through a buffer once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ..errors import EdgeoptError
from .energy.table import EnergyTable

if TYPE_CHECKING:
    from ..model import Model

LOOPS = ("m", "n", "s")
# The loop each operand's tile index does not depend on.
INDEPENDENT = {"input": "m", "weight": "s", "output": "n"}
ORDERS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "IR": (("s", "n", "m"), ("n", "s", "m")),
    "OR": (("s", "m", "n"), ("m", "s", "n")),
    "WR": (("m", "n", "s"), ("n", "m", "s")),
}

# Horowitz, ISSCC 2014 (45 nm), pJ: per 32-bit access and per MAC by word width in bytes;
# the one copy of the table is edgeopt.analysis.energy.EnergyTable.
_HOROWITZ = EnergyTable()
DRAM_PJ_PER_32BIT = _HOROWITZ.dram_read_pj
SRAM_PJ_PER_32BIT = _HOROWITZ.sram_read_pj
MAC_PJ = {4: _HOROWITZ.mac_pj("fp32"), 2: _HOROWITZ.mac_pj("fp16"), 1: _HOROWITZ.mac_pj("int8")}
# Nominal figures of a small edge device (a few GB/s of LPDDR, ~10 GMAC/s). They are round
# placeholders, not measurements: pass a device profile or explicit values for real ones.
DEFAULT_BANDWIDTH_GBS = 4.0
DEFAULT_MAC_RATE_GMACS = 10.0
# Bound on the tilings searched per loop permutation (memory ~ 100 bytes per tiling).
MAX_TILINGS = 2_000_000
# Dimensions up to this size are searched with every tile size.
EXHAUSTIVE_UP_TO = 32


def _pair(value: Any, what: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise EdgeoptError(f"conv {what} {value!r} is not one or two integers >= {minimum}: pass e.g. 3 or (3, 3)")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class ConvLayer:
    """One 2-D convolution at batch 1 (dilation 1).

    Attributes:
        m: output channels M (all groups).
        n: input channels N (all groups).
        r: output rows R.
        c: output columns C.
        k: kernel (Kh, Kw); an int means square.
        stride: (Sh, Sw); an int means the same on both axes.
        pad: zero padding before the first row and column (top, left); the padding after
            the last row/column is whatever the output size implies.
        h: input rows H (default: (R - 1) Sh + Kh - 2 pad_top, i.e. symmetric padding).
        w: input columns W (default likewise).
        groups: convolution groups (M and N divisible by it; depthwise: groups = N).
        name: layer name for reports.

    Raises:
        EdgeoptError: a non-positive size, channels not divisible by ``groups``, or an
            input too small for the default size.
    """

    m: int
    n: int
    r: int
    c: int
    k: Any = 3
    stride: Any = 1
    pad: Any = 0
    h: int | None = None
    w: int | None = None
    groups: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        for what in ("m", "n", "r", "c", "groups"):
            v = getattr(self, what)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise EdgeoptError(f"conv {what}={v!r} must be a positive integer")
            object.__setattr__(self, what, int(v))
        if self.m % self.groups or self.n % self.groups:
            raise EdgeoptError(f"conv channels M={self.m}, N={self.n} are not divisible by groups={self.groups}")
        k, s, p = _pair(self.k, "kernel", 1), _pair(self.stride, "stride", 1), _pair(self.pad, "pad", 0)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "pad", p)
        for what, out, axis in (("h", self.r, 0), ("w", self.c, 1)):
            size = getattr(self, what)
            if size is None:
                size = (out - 1) * s[axis] + k[axis] - 2 * p[axis]
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise EdgeoptError(f"conv input {what}={size!r} is not positive: give h/w or a smaller pad")
            object.__setattr__(self, what, int(size))

    @property
    def macs(self) -> int:
        """Multiply-accumulates, padded taps included (the profile's convention)."""
        return self.m * (self.n // self.groups) * self.r * self.c * self.k[0] * self.k[1]

    def describe(self) -> str:
        """``M x N x R x C kKhxKw sS [gG]`` for tables."""
        kh, kw = self.k
        kern = f"k{kh}" if kh == kw else f"k{kh}x{kw}"
        sh, sw = self.stride
        st = f"s{sh}" if sh == sw else f"s{sh}x{sw}"
        grp = f" g{self.groups}" if self.groups > 1 else ""
        return f"{self.m}x{self.n}x{self.r}x{self.c} {kern} {st}{grp}"


@dataclass(frozen=True)
class Tiling:
    """Tile sizes (Tm output channels, Tn input channels, Tr rows, Tc columns); sizes larger
    than the layer act as the whole dimension. Per group for grouped convolutions."""

    tm: int
    tn: int
    tr: int
    tc: int

    def __str__(self) -> str:
        return f"[{self.tm},{self.tn},{self.tr},{self.tc}]"


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


def _evaluate(layer: ConvLayer, perm: Sequence[str], tms: Sequence[int], tns: Sequence[int],
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
    (outer to inner, e.g. ``("s", "m", "n")`` for OR), by the closed form of the module doc.

    Raises:
        EdgeoptError: ``perm`` is not a permutation of m, n, s, or a tile size is < 1.
    """
    perm = _check_perm(perm)
    if min(tiling.tm, tiling.tn, tiling.tr, tiling.tc) < 1:
        raise EdgeoptError(f"tile sizes {tiling} must be >= 1")
    grid = _evaluate(layer, perm, [tiling.tm], [tiling.tn], [tiling.tr], [tiling.tc])
    one = {k: int(np.broadcast_to(v, (1, 1, 1, 1))[0, 0, 0, 0]) for k, v in grid.items()}
    return Traffic(one["input_reads"], one["weight_reads"], one["output_reads"], one["output_writes"],
                   (one["buffer_in"], one["buffer_w"], one["buffer_out"]))


def tile_candidates(size: int) -> list[int]:
    """Tile sizes searched for a dimension of ``size``: all of 1..size up to
    :data:`EXHAUSTIVE_UP_TO`, else the balanced sizes ceil(size / k), k = 1..size (the
    smallest tile for each trip count; about 2 sqrt(size) of them)."""
    if size <= EXHAUSTIVE_UP_TO:
        return list(range(1, size + 1))
    return sorted({-(-size // k) for k in range(1, size + 1)})


def search_space(layer: ConvLayer, max_tilings: int = MAX_TILINGS) -> tuple[list[int], ...]:
    """The candidate (Tm, Tn, Tr, Tc) lists :func:`best_tiling` searches: per dimension
    :func:`tile_candidates`, the longest list thinned (every other size, ends kept) until
    the grid has at most ``max_tilings`` points."""
    lists = [tile_candidates(d) for d in (layer.m // layer.groups, layer.n // layer.groups, layer.r, layer.c)]
    while math.prod(len(x) for x in lists) > max_tilings:
        i = max(range(4), key=lambda j: len(lists[j]))
        thinned = sorted(set(lists[i][::2]) | {lists[i][-1]})
        if len(thinned) == len(lists[i]):  # every list is down to its two ends
            break
        lists[i] = thinned
    return tuple(lists)


def floor_traffic(layer: ConvLayer) -> Traffic:
    """The compulsory traffic: every input element read, weight read and output written
    exactly once (one tile per group holding the whole layer). No tiling or loop order
    moves fewer words; the buffer words it reports are what that would take."""
    return traffic(layer, Tiling(layer.m // layer.groups, layer.n // layer.groups, layer.r, layer.c), LOOPS)


@dataclass(frozen=True)
class Choice:
    """The best tiling of one loop order: its permutation (outer to inner), tiling, traffic."""

    order: str
    perm: tuple[str, str, str]
    tiling: Tiling
    traffic: Traffic


def best_tiling(layer: ConvLayer, order: str, buffer_bytes: int, bytes_per_word: int = 4,
                max_tilings: int = MAX_TILINGS) -> Choice:
    """The tiling and outer-loop permutation of ``order`` ("IR", "OR", "WR") with the fewest
    off-chip words whose buffers fit ``buffer_bytes``; ties go to the smaller buffer, then
    to the first permutation in :data:`ORDERS` and the smallest tile sizes.

    Raises:
        EdgeoptError: unknown order, or the buffer cannot hold even 1x1x1x1 tiles.
    """
    if order not in ORDERS:
        raise EdgeoptError(f"unknown loop order {order!r}: pick one of {', '.join(ORDERS)}")
    lists = search_space(layer, max_tilings)
    best: tuple | None = None
    for perm in ORDERS[order]:
        grid = _evaluate(layer, perm, *lists)
        total = grid["input_reads"] + grid["weight_reads"] + grid["output_reads"] + grid["output_writes"]
        buf = grid["buffer_in"] + grid["buffer_w"] + grid["buffer_out"]
        shape = tuple(len(lst) for lst in lists)
        total, buf = np.broadcast_to(total, shape), np.broadcast_to(buf, shape)
        fits = buf * bytes_per_word <= buffer_bytes
        if not fits.any():
            continue
        low = total[fits].min()
        tied = fits & (total == low)
        small = buf[tied].min()
        idx = np.unravel_index(int(np.flatnonzero(tied & (buf == small))[0]), total.shape)
        key = (int(low), int(small))
        if best is None or key < best[0]:
            best = (key, perm, Tiling(*(int(lst[i]) for lst, i in zip(lists, idx))))
    if best is None:
        raise EdgeoptError(f"a {buffer_bytes}-byte buffer cannot hold even 1x1x1x1 tiles of {layer.name or 'the layer'} "
                           f"({layer.describe()}): give a larger --buffer")
    _, perm, tiling = best
    return Choice(order, perm, tiling, traffic(layer, tiling, perm))


@dataclass(frozen=True)
class Hardware:
    """The accelerator the dataflow runs on.

    Attributes:
        buffer_bytes: on-chip buffer for the three tiles, bytes.
        bandwidth_gbs: off-chip bandwidth, GB/s (1e9 bytes/s).
        mac_rate_gmacs: MAC throughput, GMAC/s (GFLOP/s / 2).
        bytes_per_word: 4 (fp32), 2 (fp16) or 1 (int8); every operand uses it.
        dram_pj: energy of one 32-bit off-chip access, pJ (Horowitz 2014: 640).
        sram_pj: energy of one 32-bit on-chip buffer access, pJ (Horowitz 2014, 8 KB: 5).
        mac_pj: energy of one MAC, pJ; None: :data:`MAC_PJ` for the word width.

    Raises:
        EdgeoptError: a non-positive figure or a word width other than 1, 2, 4.
    """

    buffer_bytes: int
    bandwidth_gbs: float = DEFAULT_BANDWIDTH_GBS
    mac_rate_gmacs: float = DEFAULT_MAC_RATE_GMACS
    bytes_per_word: int = 4
    dram_pj: float = DRAM_PJ_PER_32BIT
    sram_pj: float = SRAM_PJ_PER_32BIT
    mac_pj: float | None = None

    def __post_init__(self) -> None:
        if self.bytes_per_word not in MAC_PJ:
            raise EdgeoptError(f"bytes per word {self.bytes_per_word} is not 1, 2 or 4 (int8, fp16, fp32)")
        for what in ("buffer_bytes", "bandwidth_gbs", "mac_rate_gmacs", "dram_pj", "sram_pj"):
            if not getattr(self, what) > 0:
                raise EdgeoptError(f"{what}={getattr(self, what)!r} must be positive")
        if self.mac_pj is not None and not self.mac_pj > 0:
            raise EdgeoptError(f"mac_pj={self.mac_pj!r} must be positive")

    @property
    def mac_energy_pj(self) -> float:
        """pJ per MAC at this word width (the override when given)."""
        return self.mac_pj if self.mac_pj is not None else MAC_PJ[self.bytes_per_word]


@dataclass(frozen=True)
class Estimate:
    """Latency and energy of one layer under one order's best tiling.

    Attributes:
        choice: the tiling and traffic.
        offchip_bytes: off-chip words x bytes per word.
        buffer_bytes: the tiling's buffer requirement, bytes.
        compute_ms: MACs / MAC rate, ms.
        memory_ms: off-chip bytes / bandwidth, ms.
        energy_uj: DRAM + SRAM + MAC energy, microjoules (module doc).
    """

    choice: Choice
    offchip_bytes: int
    buffer_bytes: int
    compute_ms: float
    memory_ms: float
    energy_uj: float

    @property
    def latency_ms(self) -> float:
        """max(compute, memory): transfers overlap compute."""
        return max(self.compute_ms, self.memory_ms)

    @property
    def bound(self) -> str:
        """"memory" when the off-chip transfers take longer than the MACs, else "compute"."""
        return "memory" if self.memory_ms > self.compute_ms else "compute"


def estimate(layer: ConvLayer, choice: Choice, hw: Hardware) -> Estimate:
    """Latency and energy of ``layer`` run with ``choice`` on ``hw`` (module doc)."""
    words = choice.traffic.total
    width = hw.bytes_per_word / 4  # Horowitz's memory figures are per 32-bit access
    sram_accesses = 2 * layer.macs + words
    energy_pj = (words * hw.dram_pj * width + sram_accesses * hw.sram_pj * width
                 + layer.macs * hw.mac_energy_pj)
    return Estimate(
        choice=choice,
        offchip_bytes=words * hw.bytes_per_word,
        buffer_bytes=sum(choice.traffic.buffer_words) * hw.bytes_per_word,
        compute_ms=layer.macs / (hw.mac_rate_gmacs * 1e9) * 1e3,
        memory_ms=words * hw.bytes_per_word / (hw.bandwidth_gbs * 1e9) * 1e3,
        energy_uj=energy_pj * 1e-6,
    )


@dataclass(frozen=True)
class LayerPlan:
    """The three orders' best tilings and estimates for one layer, and the winner (fewest
    off-chip bytes; ties: lower latency, then IR, OR, WR order).

    Attributes:
        layer: the convolution.
        orders: {"IR" | "OR" | "WR": its best tiling's estimate}.
        floor_bytes: the compulsory off-chip bytes (:func:`floor_traffic`).
    """

    layer: ConvLayer
    orders: dict[str, Estimate]
    floor_bytes: int

    @property
    def winner(self) -> str:
        """The order with the fewest off-chip bytes."""
        names = list(ORDERS)
        return min(names, key=lambda o: (self.orders[o].offchip_bytes, self.orders[o].latency_ms, names.index(o)))

    @property
    def tied(self) -> list[str]:
        """Every order with the winner's off-chip bytes (one name when the winner is alone)."""
        low = self.best.offchip_bytes
        return [o for o in ORDERS if self.orders[o].offchip_bytes == low]

    @property
    def best(self) -> Estimate:
        """The winner's estimate."""
        return self.orders[self.winner]


def plan_layer(layer: ConvLayer, hw: Hardware) -> LayerPlan:
    """Best tiling of each order for ``layer`` on ``hw``, with estimates.

    Raises:
        EdgeoptError: the buffer cannot hold the smallest tiles.
    """
    return LayerPlan(layer, {
        order: estimate(layer, best_tiling(layer, order, hw.buffer_bytes, hw.bytes_per_word), hw)
        for order in ORDERS
    }, floor_traffic(layer).total * hw.bytes_per_word)


@dataclass(frozen=True)
class ModelPlan:
    """Per-conv plans of a model and the convs that were not modelled.

    Attributes:
        model: display name.
        hardware: the accelerator assumed.
        layers: one plan per modelled conv, in graph order.
        skipped: "layer: reason" for each conv left out.
    """

    model: str
    hardware: Hardware
    layers: list[LayerPlan]
    skipped: list[str] = field(default_factory=list)

    def total_bytes(self, order: str | None = None) -> int:
        """Off-chip bytes of every layer under ``order``, or each layer's winner (None)."""
        return sum((p.orders[order] if order else p.best).offchip_bytes for p in self.layers)

    @property
    def latency_ms(self) -> float:
        """Sum of the winners' latencies (layers run one after the other), ms."""
        return sum(p.best.latency_ms for p in self.layers)

    @property
    def energy_uj(self) -> float:
        """Sum of the winners' energies, microjoules."""
        return sum(p.best.energy_uj for p in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: hardware, per-layer shapes, each order's tiling, traffic and estimates."""
        def est(e: Estimate) -> dict[str, Any]:
            t = e.choice.traffic
            return {"perm": "".join(e.choice.perm), "tiling": [e.choice.tiling.tm, e.choice.tiling.tn,
                                                              e.choice.tiling.tr, e.choice.tiling.tc],
                    "input_reads": t.input_reads, "weight_reads": t.weight_reads,
                    "output_reads": t.output_reads, "output_writes": t.output_writes,
                    "buffer_words": list(t.buffer_words), "offchip_bytes": e.offchip_bytes,
                    "buffer_bytes": e.buffer_bytes, "compute_ms": e.compute_ms, "memory_ms": e.memory_ms,
                    "latency_ms": e.latency_ms, "bound": e.bound, "energy_uj": e.energy_uj}

        hw = self.hardware
        return {
            "model": self.model,
            "hardware": {"buffer_bytes": hw.buffer_bytes, "bandwidth_gbs": hw.bandwidth_gbs,
                         "mac_rate_gmacs": hw.mac_rate_gmacs, "bytes_per_word": hw.bytes_per_word,
                         "dram_pj": hw.dram_pj, "sram_pj": hw.sram_pj, "mac_pj": hw.mac_energy_pj},
            "layers": [{"name": p.layer.name, "shape": p.layer.describe(), "macs": p.layer.macs,
                        "winner": p.winner, "tied": p.tied, "floor_bytes": p.floor_bytes, "orders": {o: est(e) for o, e in p.orders.items()}}
                       for p in self.layers],
            "totals": {"offchip_bytes": {o: self.total_bytes(o) for o in ORDERS},
                       "floor_bytes": sum(p.floor_bytes for p in self.layers),
                       "offchip_bytes_winners": self.total_bytes(), "latency_ms": self.latency_ms,
                       "energy_uj": self.energy_uj},
            "skipped": list(self.skipped),
        }


# -- the convolutions of a model ---------------------------------------------------------------
# Conv-like op types (the profile's op_type keys) and the input position of their weight.
_CONV_WEIGHT = {"Conv": 1, "ConvInteger": 1, "QLinearConv": 3, "com.microsoft:FusedConv": 1}


class _Skip(Exception):
    """A conv the dataflow model leaves out; the message is the reason."""


def model_convs(model: "Model") -> tuple[list[ConvLayer], list[str]]:
    """The 2-D convolutions of ``model`` at batch 1, in graph order, and ``"name: reason"``
    for each conv left out (dilated, not 2-D, uncounted by the profile, shapes unknown).

    Output shape and MACs come from :func:`edgeopt.analysis.profile.profile` (input channels
    per group = MACs / (outputs x Kh x Kw)); kernel, strides, pads, auto_pad and group from
    the node's attributes (ONNX Conv spec); the input size from the profiled output shape
    of the node that produces the conv's input (or the model's input spec).

    Raises:
        ShapeError: the profile cannot infer the model's shapes.
    """
    from onnx import helper

    from .ophandlers import handler_key
    from .profile import profile

    prof = profile(model, batch=1)
    rows = {layer.name: layer for layer in prof.layers}
    nodes = list(model.proto.graph.node)
    # The profile's naming: node.name, else OpType_index in graph order.
    names = [n.name or f"{n.op_type}_{i}" for i, n in enumerate(nodes)]
    spatial: dict[str, tuple[int, ...]] = {s.name: s.batched(1)[2:] for s in model.inputs}
    for node, name in zip(nodes, names):
        if node.output and node.output[0] and name in rows and len(rows[name].output_shape) == 4:
            spatial[node.output[0]] = rows[name].output_shape[2:]
    weights = {t.name: tuple(int(d) for d in t.dims) for t in model.proto.graph.initializer}
    convs: list[ConvLayer] = []
    skipped: list[str] = []
    for node, name in zip(nodes, names):
        op = handler_key(node.domain, node.op_type)
        if op not in _CONV_WEIGHT:
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        try:
            if name not in rows:
                raise _Skip("not a runtime layer of the profile")
            w_name = node.input[_CONV_WEIGHT[op]] if len(node.input) > _CONV_WEIGHT[op] else ""
            convs.append(_conv_layer(name, rows[name], attrs, spatial.get(node.input[0]), weights.get(w_name)))
        except _Skip as e:
            skipped.append(f"{name}: {e}")
    return convs, skipped


def _conv_layer(name: str, row: Any, attrs: dict[str, Any], in_hw: tuple[int, ...] | None,
                w_shape: tuple[int, ...] | None) -> ConvLayer:
    """One ConvLayer from the profile row, the ONNX attributes and the input size.

    Raises:
        _Skip: the conv is outside the model (reason in the message).
    """
    y = tuple(row.output_shape)
    if not row.counted or len(y) != 4:
        raise _Skip("not a counted 2-D conv in the profile")
    if y[0] != 1:
        raise _Skip(f"batch {y[0]} (the model covers batch 1)")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _Skip(f"dilations {list(attrs['dilations'])} are not modelled")
    kernel = attrs.get("kernel_shape") or (w_shape[2:] if w_shape else None)
    if not kernel or len(kernel) != 2:
        raise _Skip("kernel shape unknown (no kernel_shape attribute, weight not an initializer)")
    kh, kw = (int(v) for v in kernel)
    sh, sw = (int(v) for v in attrs.get("strides", [1, 1]))
    groups = int(attrs.get("group", 1))
    m, r, c = y[1], y[2], y[3]
    n_per_group, rest = divmod(row.macs, m * r * c * kh * kw)
    if rest or n_per_group < 1:
        raise _Skip(f"MACs {row.macs} do not factor as M x R x C x K x K x N/groups")
    auto_pad = attrs.get("auto_pad", b"NOTSET")
    auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else str(auto_pad)
    hw: list[int] = []
    pads: list[int] = []
    for axis, (out, k, s) in enumerate(((r, kh, sh), (c, kw, sw))):
        needed = (out - 1) * s + k  # padded extent the outputs read
        size = int(in_hw[axis]) if in_hw is not None and len(in_hw) == 2 else None
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if size is None:
                raise _Skip("auto_pad SAME with an unknown input size")
            total = max(0, needed - size)
            pads.append(total // 2 if auto_pad == "SAME_UPPER" else total - total // 2)
        else:
            explicit = list(attrs.get("pads", [0, 0, 0, 0])) if auto_pad == "NOTSET" else [0, 0, 0, 0]
            pads.append(int(explicit[axis]))
            # Rows past the last window are never read, so when the input size is unknown the
            # extent the windows reach (padding after excluded) gives the same traffic.
            size = size if size is not None else needed - int(explicit[axis]) - int(explicit[axis + 2])
        hw.append(size)
    try:
        layer = ConvLayer(m=m, n=n_per_group * groups, r=r, c=c, k=(kh, kw), stride=(sh, sw),
                          pad=tuple(pads), h=hw[0], w=hw[1], groups=groups, name=name)
    except EdgeoptError as e:
        raise _Skip(str(e)) from None
    return layer


def plan_model(model: "Model", hw: Hardware) -> ModelPlan:
    """:func:`plan_layer` for every conv of ``model`` (see :func:`model_convs`).

    Raises:
        EdgeoptError: the buffer cannot hold the smallest tiles of some conv, or the
            profile cannot infer the model's shapes.
    """
    convs, skipped = model_convs(model)
    return ModelPlan(model.name, hw, [plan_layer(layer, hw) for layer in convs], skipped)
