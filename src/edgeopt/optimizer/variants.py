"""Model variants by recipe name, built by the optimizer's one builder (for ``edgeopt energy
--compare`` and anything else that wants "this model, but int8" without an optimize run)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .builder import ModelBuilder
from .recipes import parse_recipe

if TYPE_CHECKING:
    from ..model import Model


def build_variants(model: "Model", names: list[str], calibration: np.ndarray | None) -> dict[str, "Model"]:
    """{"original": model, name: variant, ...} for recipe names (see
    :func:`edgeopt.optimizer.recipes.parse_recipe`: "int8", "fp16", "pruned50",
    "pruned-30+kd/int8-nncf", ...).

    A pruned name without "+kd" is pruned without recovery (distillation changes the
    weights' values, not the bytes an energy count is made of).

    Args:
        calibration: float32 (N, C, H, W) preprocessed images for the recipes that
            calibrate or prune, or None when none of them does.

    Raises:
        EdgeoptError: an unknown name, or calibration missing where a recipe needs it.
        PassError: a pass cannot handle the model.
    """
    recipes = {name: parse_recipe(name) for name in names}
    builder = ModelBuilder(model, calibration)
    variants = {"original": model}
    for name, recipe in recipes.items():
        variants[name] = builder.build(recipe)
    return variants


def needs_calibration(names: list[str]) -> bool:
    """Whether any of the recipe names needs calibration images (int8 static, NNCF,
    pruning)."""
    return any(r.prune or r.spec.calibrated for r in map(parse_recipe, names))
