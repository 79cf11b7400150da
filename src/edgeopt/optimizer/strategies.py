"""Search strategies behind one interface: which points the trials measure, in what order.

The engine (:mod:`edgeopt.optimizer.engine`) runs every strategy the same way: an Optuna
study whose trials all go through the one objective, the one builder and the one measurer;
then the fallback, the choice and the confirmation. A strategy only decides:

- which points are enqueued first (the single choices a user would make by hand always
  are: the choice is re-timed against the best of them), and what else follows;
- the Optuna sampler that proposes any further point (exhaustive enumeration is just
  another sampler, as in Optuna's ``BruteForceSampler``);
- whether cheap checks may stop a trial early, and whether the study and the built models
  persist in the output folder by default (a long search is resumed; a grid is re-run).

Strategies: :class:`Grid` (exhaustive: every recipe x backend at the user's threads and
batch, each measured in full) and :class:`Sampled` (multi-objective TPE, Watanabe 2023,
"Tree-structured Parzen Estimator: Understanding Its Algorithm Components", with the
constraints of Optuna's constrained TPE).
"""

from __future__ import annotations

import contextlib
import warnings
from abc import ABC, abstractmethod
from typing import Any, Iterator

from .space import Point, SearchSpace, grid_points, hand_picked


class Strategy(ABC):
    """How one ``optimize`` run chooses its points.

    Attributes:
        name: "grid" or "search" (recorded in the outputs).
        early_stop: cheap quality and latency checks may stop a trial.
        persist: by default keep the study (SQLite) and the built models in the output
            folder, so the run can be resumed.
        exhaustive: the trials are exactly the seed points (no point is drawn).
        space: the space a drawn point comes from (and the reports describe).
    """

    name: str
    early_stop: bool
    persist: bool
    exhaustive: bool
    space: SearchSpace

    @abstractmethod
    def sampler(self, seed: int) -> Any:
        """The Optuna sampler of the study."""

    @abstractmethod
    def seed_points(self) -> list[tuple[Point, str]]:
        """(point, origin) pairs enqueued before any point is drawn, in order."""


class Grid(Strategy):
    """Exhaustive: the hand-picked choices, then every other point of the grid, each
    measured in full; the sampler (brute force over the same space) is never asked.

    Args:
        points: the grid (see :func:`edgeopt.optimizer.space.grid_points`).
        hand: the hand-picked choices; those in the grid are measured first and marked.
        float_layers: the fallback's steps (layers kept in float).
    """

    name, early_stop, persist, exhaustive = "grid", False, False, True

    def __init__(self, points: list[Point], hand: list[Point], float_layers: tuple[int, ...]) -> None:
        self.points = points
        in_grid = set(points)
        self.hand = [p for p in hand if p in in_grid]
        self.space = SearchSpace.spanning(points, float_layers=(0, *float_layers))

    def sampler(self, seed: int) -> Any:
        import optuna

        with _experimental_ok():
            return optuna.samplers.BruteForceSampler(seed=seed)

    def seed_points(self) -> list[tuple[Point, str]]:
        hand = set(self.hand)
        return [(p, "hand-picked") for p in self.hand] + [(p, "grid") for p in self.points if p not in hand]


class Sampled(Strategy):
    """Optuna's multi-objective TPE sampler over the whole space, after the hand-picked
    choices, with cheap checks first; runs until the budget ends.

    Args:
        space: the search space.
        hand: the hand-picked choices, measured first.
    """

    name, early_stop, persist, exhaustive = "search", True, True, False

    def __init__(self, space: SearchSpace, hand: list[Point]) -> None:
        self.space, self.hand = space, hand

    def sampler(self, seed: int) -> Any:
        import optuna

        # Constraints come from trial.set_constraint (Optuna 5 reads them in the TPE sampler).
        with _experimental_ok():
            return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, n_startup_trials=8)

    def seed_points(self) -> list[tuple[Point, str]]:
        return [(p, "hand-picked") for p in self.hand]


@contextlib.contextmanager
def _experimental_ok() -> Iterator[None]:
    """Optuna marks brute force, multivariate and group TPE experimental: say nothing."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def persists(name: str) -> bool:
    """Whether strategy ``name`` ("grid" or "search") keeps its study in the output folder
    by default (:attr:`Strategy.persist`)."""
    return {"grid": Grid, "search": Sampled}[name].persist


def make_strategy(name: str, *, backends: tuple[str, ...], threads: int, batch: int, recipes: tuple,
                  space: SearchSpace, float_layers: tuple[int, ...]) -> Strategy:
    """The strategy ``name`` ("grid" or "search") over the given backends and settings.

    Args:
        recipes: the grid's recipes (ignored by the search).
        space: the search's space (ignored by the grid).
        float_layers: the grid's fallback steps.
    """
    hand = hand_picked(threads, batch, backends)
    if name == "grid":
        return Grid(grid_points(recipes, backends, threads, batch), hand, float_layers)
    return Sampled(space, [p for p in hand if p.backend in space.backends])
