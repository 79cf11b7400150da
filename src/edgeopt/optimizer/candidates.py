"""Candidates: a recipe of existing passes x a backend x settings.

A recipe only names passes; building it runs them in order on the original Model. The
search adds no new way to change a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import EdgeoptError
from ..model import Model


@dataclass(frozen=True)
class Recipe:
    """A named sequence of passes.

    Attributes:
        name: short name shown in reports ("fp32", "int8-ort", ...).
        passes: pass names for :func:`edgeopt.passes.base.run_pass`, applied in order.
        precision: what the weights end up as ("fp32", "fp16", "int8").
    """

    name: str
    passes: tuple[str, ...]
    precision: str


DEFAULT_RECIPES: tuple[Recipe, ...] = (
    Recipe("fp32", (), "fp32"),
    Recipe("fp32-clean", ("cleanup",), "fp32"),
    Recipe("fp16", ("cleanup", "fp16"), "fp16"),
    Recipe("int8-ort", ("cleanup", "int8-static"), "int8"),
    Recipe("int8-nncf", ("cleanup", "int8-nncf"), "int8"),
    Recipe("int8-dynamic", ("cleanup", "int8-dynamic"), "int8"),
)
DEFAULT_BACKENDS: tuple[str, ...] = ("ort", "openvino")
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
    extra: dict = field(default_factory=dict)

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
    on_step: Any = None,
) -> dict[str, Model | str]:
    """Apply each recipe's passes to ``model``.

    Passes shared by a prefix of several recipes (for example "cleanup") run once.

    Args:
        model: the original model (never modified).
        calibration: float32 (N, C, H, W) preprocessed calibration images, or None.
        on_step: optional callable(recipe_name) called before each recipe (progress).

    Returns:
        {recipe name: built Model, or the one-line reason it could not be built}.
    """
    from ..passes.base import run_pass

    built: dict[str, Model | str] = {}
    prefix_cache: dict[tuple[str, ...], Model | str] = {(): model}
    for recipe in recipes:
        if on_step is not None:
            on_step(recipe.name)
        current: Model | str = model
        for i in range(1, len(recipe.passes) + 1):
            key = recipe.passes[:i]
            if key not in prefix_cache:
                prev = prefix_cache[key[:-1]]
                if isinstance(prev, str):
                    prefix_cache[key] = prev
                else:
                    try:
                        prefix_cache[key] = run_pass(key[-1], prev, calibration=calibration)
                    except EdgeoptError as e:
                        prefix_cache[key] = f"pass {key[-1]} failed: {e}"
            current = prefix_cache[key]
        built[recipe.name] = current
    return built
