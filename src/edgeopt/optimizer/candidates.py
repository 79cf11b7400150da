"""Candidates: a recipe of existing passes x a backend x settings.

A recipe only names passes; building it runs them in order on the original Model. The
search adds no new way to change a model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import EdgeoptError
from ..model import Model


@dataclass(frozen=True)
class Recipe:
    """A named sequence of passes.

    Attributes:
        name: short name shown in reports ("fp32", "int8-ort", "pruned-30+kd", ...).
        passes: pass names for :func:`edgeopt.passes.base.run_pass`, applied in order.
        precision: what the weights end up as ("fp32", "fp16", "int8").
        configs: one config per pass (None: the pass's defaults); empty = all defaults.
    """

    name: str
    passes: tuple[str, ...]
    precision: str
    configs: tuple[Any, ...] = ()

    def steps(self) -> tuple[tuple[str, Any], ...]:
        """(pass name, config or None) pairs, in order."""
        configs = self.configs or (None,) * len(self.passes)
        return tuple(zip(self.passes, configs))


DEFAULT_RECIPES: tuple[Recipe, ...] = (
    Recipe("fp32", (), "fp32"),
    Recipe("fp32-clean", ("cleanup",), "fp32"),
    Recipe("fp16", ("cleanup", "fp16"), "fp16"),
    Recipe("int8-ort", ("cleanup", "int8-static"), "int8"),
    Recipe("int8-nncf", ("cleanup", "int8-nncf"), "int8"),
    Recipe("int8-dynamic", ("cleanup", "int8-dynamic"), "int8"),
)
DEFAULT_BACKENDS: tuple[str, ...] = ("ort", "openvino")
DEFAULT_PRUNE_TARGETS: tuple[float, ...] = (0.3, 0.5)


def pruned_recipes(targets: tuple[float, ...], train_seconds: float) -> tuple[Recipe, ...]:
    """Structured pruning to each MAC target, recovered by distillation from the original,
    alone and followed by NNCF int8: channels removed speed up every dense kernel, and
    int8 on top multiplies the gains where the CPU has a fast int8 path.

    Args:
        targets: fractions of MACs to remove, e.g. (0.3, 0.5).
        train_seconds: distillation budget of each pruned model, seconds.
    """
    from ..passes.distill import recovery_config
    from ..passes.prune import PruneConfig

    out = []
    for t in targets:
        steps = (PruneConfig(target_macs=t), recovery_config(train_seconds))
        name = f"pruned-{round(t * 100)}+kd"
        out.append(Recipe(name, ("prune", "distill"), "fp32", steps))
        out.append(Recipe(f"{name}+int8-nncf", ("prune", "distill", "int8-nncf"), "int8", (*steps, None)))
    return tuple(out)


BASELINE = ("fp32", "ort")


@dataclass
class Candidate:
    """One recipe on one backend, with what was measured.

    Attributes:
        recipe, backend: what it is.
        model: the built model (None when the recipe failed to build).
        status: "accepted", "rejected" (outside the quality or latency budget) or "failed"
            (the pass or the backend could not run it).
        reason: why rejected or failed ("" when accepted).
        bench: the BenchResult at the user's batch and threads, or None.
        quality: the QualityReport against the original fp32 model, or None.
    """

    recipe: Recipe
    backend: str
    model: Model | None = None
    status: str = "pending"
    reason: str = ""
    bench: Any = None
    quality: Any = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.recipe.name, self.backend)

    @property
    def label(self) -> str:
        return f"{self.recipe.name}@{self.backend}"

    @property
    def p50_ms(self) -> float | None:
        return None if self.bench is None or self.bench.error else self.bench.stats.p50

    @property
    def size_bytes(self) -> int | None:
        return None if self.model is None else self.model.size_bytes


def build_recipes(
    model: Model,
    recipes: tuple[Recipe, ...],
    calibration: np.ndarray | None,
    *,
    labels: np.ndarray | None = None,
    on_step: Any = None,
) -> dict[str, Model | str]:
    """Apply each recipe's passes to ``model``.

    Steps shared by a prefix of several recipes (the same pass with the same config, for
    example "cleanup", or "prune"+"distill" before "int8-nncf") run once.

    Args:
        model: the original model (never modified).
        calibration: float32 (N, C, H, W) preprocessed calibration images, or None.
        labels: int (N,) classes of the calibration images, or None; distillation then
            adds cross-entropy to its loss.
        on_step: optional callable(recipe_name) called before each recipe (progress).

    Returns:
        {recipe name: built Model, or the one-line reason it could not be built}.
    """
    from ..passes.base import run_pass

    built: dict[str, Model | str] = {}
    prefix_cache: dict[tuple, Model | str] = {(): model}
    for recipe in recipes:
        if on_step is not None:
            on_step(recipe.name)
        steps = recipe.steps()
        current: Model | str = model
        for i in range(1, len(steps) + 1):
            key = steps[:i]
            if key not in prefix_cache:
                prev = prefix_cache[key[:-1]]
                if isinstance(prev, str):
                    prefix_cache[key] = prev
                else:
                    name, config = key[-1]
                    try:
                        # The original is the teacher of every distillation step.
                        prefix_cache[key] = run_pass(name, prev, config, calibration=calibration,
                                                     teacher=model, labels=labels)
                    except EdgeoptError as e:
                        prefix_cache[key] = f"pass {name} failed: {e}"
            current = prefix_cache[key]
        built[recipe.name] = current
    return built
