"""The tiling search: for each loop order, the tile sizes and outer-loop permutation with
the fewest off-chip words whose buffers fit (:func:`best_tiling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ...errors import EdgeoptError
from .layer import ConvLayer, Tiling
from .traffic import ORDERS, Traffic, evaluate_grid, traffic

# Bound on the tilings searched per loop permutation (memory ~ 100 bytes per tiling).
MAX_TILINGS = 2_000_000
# Dimensions up to this size are searched with every tile size.
EXHAUSTIVE_UP_TO = 32


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
        grid = evaluate_grid(layer, perm, *lists)
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
