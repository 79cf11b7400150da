"""Model variants by recipe name, built by the optimizer's one builder: what ``edgeopt
energy --compare`` sets beside a model, and what the suites time ("this model, but int8")
without an optimize run."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..data.images import demo_orientation_set
from ..errors import EdgeoptError
from .builder import ModelBuilder
from .recipes import parse_recipe

if TYPE_CHECKING:
    from ..model import Model

CALIBRATION_IMAGES = 16


def parse_variant_names(compare: str) -> list[str]:
    """The recipe names of a ``--compare`` value ("int8, pruned50"), lower-cased, in order,
    duplicates dropped.

    Raises:
        EdgeoptError: a name is not a recipe (:func:`edgeopt.optimizer.recipes.parse_recipe`).
    """
    names = [v.strip().lower() for v in compare.split(",") if v.strip()]
    for name in names:
        try:
            parse_recipe(name)
        except EdgeoptError:
            raise EdgeoptError(f"unknown variant {name!r} in --compare: give recipe names such as int8, fp16, "
                               f"prunedNN (NN% of the MACs removed, 1-99) or pruned-30+kd/int8-nncf, "
                               f"e.g. int8,pruned50") from None
    return list(dict.fromkeys(names))


def build_variants(model: "Model", names: list[str], calibration: np.ndarray | None = None) -> dict[str, "Model"]:
    """{"original": model, name: variant, ...} for recipe names (see
    :func:`edgeopt.optimizer.recipes.parse_recipe`: "int8", "fp16", "pruned50",
    "pruned-30+kd/int8-nncf", ...).

    A pruned name without "+kd" is pruned without recovery (distillation changes the
    weights' values, not the bytes an energy count is made of).

    Args:
        calibration: float32 (N, C, H, W) preprocessed images for the recipes that
            calibrate or prune; None: the first 16 calibration images of the built-in
            demonstration data (``edgeopt.demo_images()[1]``) through the model's
            preprocessing, when a recipe needs them.

    Raises:
        EdgeoptError: an unknown name, or the model has no preprocessing where a recipe
            needs calibration images.
        PassError: a pass cannot handle the model.
    """
    recipes = {name: parse_recipe(name) for name in names}
    if calibration is None and any(r.prune or r.spec.calibrated for r in recipes.values()):
        calibration = _demo_calibration(model)
    builder = ModelBuilder(model, calibration)
    variants = {"original": model}
    for name, recipe in recipes.items():
        variants[name] = builder.build(recipe)
    return variants


def _demo_calibration(model: "Model") -> np.ndarray:
    if model.preprocess is None:
        raise EdgeoptError(f"{model.name} has no image preprocessing, needed to calibrate int8 and pruning: "
                           f"use a zoo model or drop --compare")
    return demo_orientation_set("calibration").tensor(model.preprocess)[:CALIBRATION_IMAGES]
