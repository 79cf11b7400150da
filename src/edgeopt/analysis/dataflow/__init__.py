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

Modules: :mod:`.layer` (ConvLayer, Tiling), :mod:`.traffic` (the closed-form counts, the
loop orders), :mod:`.search` (the best tiling of an order), :mod:`.plan` (hardware,
latency and energy estimates, per-layer and per-model plans), :mod:`.convs` (the convs
of a Model).
"""

from __future__ import annotations

from .convs import model_convs
from .layer import ConvLayer, Tiling
from .plan import (
    DEFAULT_BANDWIDTH_GBS,
    DEFAULT_MAC_RATE_GMACS,
    DRAM_PJ_PER_32BIT,
    MAC_PJ,
    SRAM_PJ_PER_32BIT,
    Estimate,
    Hardware,
    LayerPlan,
    ModelPlan,
    estimate,
    plan_layer,
    plan_model,
)
from .search import EXHAUSTIVE_UP_TO, MAX_TILINGS, Choice, best_tiling, search_space, tile_candidates
from .traffic import INDEPENDENT, LOOPS, ORDERS, Traffic, floor_traffic, touched, traffic

__all__ = [
    "DEFAULT_BANDWIDTH_GBS", "DEFAULT_MAC_RATE_GMACS", "DRAM_PJ_PER_32BIT", "EXHAUSTIVE_UP_TO",
    "INDEPENDENT", "LOOPS", "MAC_PJ", "MAX_TILINGS", "ORDERS", "SRAM_PJ_PER_32BIT", "Choice",
    "ConvLayer", "Estimate", "Hardware", "LayerPlan", "ModelPlan", "Tiling", "Traffic",
    "best_tiling", "estimate", "floor_traffic", "model_convs", "plan_layer", "plan_model",
    "search_space", "tile_candidates", "touched", "traffic",
]
