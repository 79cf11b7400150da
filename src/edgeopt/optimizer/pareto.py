"""Pareto front: the points no other point beats on every objective at once."""

from __future__ import annotations

from typing import Sequence, TypeVar

T = TypeVar("T")


def dominates(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when ``a`` is no worse than ``b`` on every objective and better on one
    (all objectives minimised)."""
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def pareto_front(items: Sequence[T], objectives: Sequence[Sequence[float]]) -> list[T]:
    """The non-dominated ``items`` (all objectives minimised), in input order.

    Args:
        items: anything, one per objective vector.
        objectives: one vector of floats per item, same length for all.

    Returns:
        the items whose vectors no other vector dominates; equal vectors are all kept.

    Raises:
        ValueError: ``items`` and ``objectives`` differ in length.
    """
    if len(items) != len(objectives):
        raise ValueError(f"{len(items)} items but {len(objectives)} objective vectors")
    return [item for item, v in zip(items, objectives)
            if not any(dominates(w, v) for w in objectives)]
