"""The order a suite measures its cells in: breadth first, so a short budget covers every model.

A suite run in grid order spends a short budget on the first model's every backend,
thread count and batch, and never reaches the others (a 2 min ``mobile`` run measured 7
of 60 cells, all of one model). :func:`waves` orders the work instead as:

1. **probe**: the first model, first variant, first thread count, smallest batch (every
   batch when the suite has one model), on every usable backend: the cheap first
   estimate of which runtimes are fastest here;
2. **breadth**: every other model the same way, on the :data:`FASTEST` fastest
   runtimes of the probe (:func:`rank_backends`);
3. **wider**: everything not yet measured (the other batches, variants, thread counts
   and runtimes), variant by variant and model by model (one model in memory at a
   time), backends in the probe's order.

A group is one prepared session: (ref, variant index, backend, threads) and the batches
it times, so a group of wave 3 whose smallest batch ran in waves 1-2 times only the rest.
"""

from __future__ import annotations

import math
from typing import Mapping, NamedTuple, Sequence

FASTEST = 2
"""How many runtimes every model gets at its smallest batch before any model gets more."""


class Group(NamedTuple):
    """One session to prepare and the batches to time on it."""

    ref: str
    variant: int
    backend: str
    threads: int
    batches: tuple[int, ...]


def probe(models: Sequence[str], backends_of: Sequence[Sequence[str]], threads: Sequence[int],
          batches: Sequence[int]) -> list[Group]:
    """Wave 1: the first model at the smallest batch on every backend of the first variant.

    Args:
        models: zoo references, in the suite's order.
        backends_of: per variant, the usable backends it runs on (in registry order).
        threads, batches: the suite's thread counts and (increasing) batch sizes.
    """
    return [Group(models[0], 0, b, threads[0], _probed(models, batches)) for b in backends_of[0]]


def _probed(models: Sequence[str], batches: Sequence[int]) -> tuple[int, ...]:
    """The batches the probe times: the smallest, or all of them when there is one model
    (no breadth to gain, and a second session of the same kind would be prepared again)."""
    return tuple(batches) if len(models) == 1 else (batches[0],)


def rank_backends(backends: Sequence[str], ms_per_image: Mapping[str, float | None]) -> list[str]:
    """``backends`` fastest first by the probe's ms per image; those without a measurement
    (failed, skipped) last, in their given order."""
    def key(b: str) -> float:
        ms = ms_per_image.get(b)
        return math.inf if ms is None else ms
    return sorted(backends, key=key)  # sorted is stable: ties keep the registry order


def rest(models: Sequence[str], backends_of: Sequence[Sequence[str]], threads: Sequence[int],
         batches: Sequence[int], ranking: Sequence[str]) -> list[Group]:
    """Waves 2 and 3 after the probe (see the module docstring), given the probe's ranking.

    Every (ref, variant, backend, threads, batch) cell of the suite that :func:`probe`
    did not take appears exactly once.
    """
    order = {b: i for i, b in enumerate(ranking)}
    by_speed = [sorted(bs, key=lambda b: order.get(b, len(order))) for bs in backends_of]
    first = batches[0]
    breadth = [Group(ref, 0, b, threads[0], (first,)) for ref in models[1:] for b in by_speed[0][:FASTEST]]
    done = {(g.ref, g.variant, g.backend, g.threads) for g in breadth}
    done |= {(models[0], 0, b, threads[0]) for b in backends_of[0]}
    wider = []
    for v, backends in enumerate(by_speed):
        for ref in models:
            for t in threads:
                for b in backends:
                    taken = (first,) if ref != models[0] else _probed(models, batches)
                    left = tuple(n for n in batches if not ((ref, v, b, t) in done and n in taken))
                    if left:
                        wider.append(Group(ref, v, b, t, left))
    return breadth + wider
