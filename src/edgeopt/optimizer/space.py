"""The search space of ``optimize --search``: every point is a recipe of existing passes
plus backend settings (backend, threads, batch). The search adds no new way to change a
model.

Dimensions (a :class:`SearchSpace` lists the values allowed on each):

- structured pruning: fraction of MACs removed (0 = none), recovered by distillation
  from the original; channels ranked across layers ("global") or with each layer capped
  at the ratio the sensitivity analysis found safe ("sensitivity");
- graph cleanup on or off;
- precision: fp32, fp16, int8 static (ONNX Runtime QDQ), int8 NNCF, int8 dynamic (int8 by
  quantization-aware training is not drawn: it is tried when a fast int8 point breaks the
  quality budget and the fallback did not fix it, :mod:`edgeopt.optimizer.qat_step`);
- for int8 static, the calibration method (minmax, entropy, percentile);
- for int8 static and NNCF, mixed precision: the ``float_layers`` layers with the worst
  measured int8 error (:mod:`edgeopt.passes.diagnostics.quant_error`) kept in float;
- backend, intra-op threads, batch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from ..errors import EdgeoptError
from .recipes import CALIBRATION_METHODS, PRECISIONS, PRUNE_SCOPES, UNTRAINED, Recipe

# precisions whose layers can be kept in float one by one
MIXED = tuple(name for name, spec in PRECISIONS.items() if spec.mixed)


@dataclass(frozen=True)
class SearchSpace:
    """The values each dimension may take (a tuple of one value fixes it).

    Attributes:
        prune: fractions of MACs to remove, in [0, 1); 0 means no pruning.
        prune_scopes: "global" and/or "sensitivity" (see the module docstring).
        cleanup: graph cleanup (onnxslim) off and/or on. int8 and fp16 always clean up
            first, as quantizing an uncleaned graph only quantizes what cleanup removes.
        precisions: subset of :data:`edgeopt.optimizer.recipes.PRECISIONS`; by default the
            post-training ones (qat is tried on a trigger: :mod:`edgeopt.optimizer.qat_step`).
        calibration_methods: for int8-ort ("minmax", "entropy", "percentile").
        float_layers: for int8-ort and int8-nncf, how many of the worst layers stay float.
        backends: backend names.
        threads: intra-op thread counts.
        batches: batch sizes (just the user's batch unless batching is allowed).
    """

    prune: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)
    prune_scopes: tuple[str, ...] = ("global", "sensitivity")
    cleanup: tuple[bool, ...] = (False, True)
    precisions: tuple[str, ...] = UNTRAINED
    calibration_methods: tuple[str, ...] = CALIBRATION_METHODS
    float_layers: tuple[int, ...] = (0, 1, 2, 4, 8)
    backends: tuple[str, ...] = ("ort", "openvino")
    threads: tuple[int, ...] = (1, 2)
    batches: tuple[int, ...] = (1,)

    def __post_init__(self) -> None:
        for name in ("prune", "prune_scopes", "cleanup", "precisions", "calibration_methods",
                     "float_layers", "backends", "threads", "batches"):
            values = getattr(self, name)
            if not values:
                raise EdgeoptError(f"search space dimension {name} is empty: give it at least one value")
            object.__setattr__(self, name, tuple(values))
        if any(not 0.0 <= p < 1.0 for p in self.prune):
            raise EdgeoptError(f"prune fractions {list(self.prune)} must be in [0, 1): e.g. 0 0.3 0.5")
        bad = set(self.precisions) - set(PRECISIONS)
        if bad:
            raise EdgeoptError(f"unknown precision {sorted(bad)}: choose from {', '.join(PRECISIONS)}")
        bad = set(self.prune_scopes) - set(PRUNE_SCOPES)
        if bad:
            raise EdgeoptError(f"unknown prune scope {sorted(bad)}: choose from {', '.join(PRUNE_SCOPES)}")
        if any(t < 1 for t in self.threads) or any(b < 1 for b in self.batches):
            raise EdgeoptError("threads and batches must be >= 1")
        if any(k < 0 for k in self.float_layers):
            raise EdgeoptError("float_layers must be >= 0")

    @classmethod
    def spanning(cls, points: list["Point"], *, float_layers: tuple[int, ...] = (0,)) -> "SearchSpace":
        """The smallest space holding ``points`` (each dimension: the values they take),
        with ``float_layers`` as its mixed-precision steps."""
        def values(attr: str, default: tuple) -> tuple:
            got = sorted({getattr(p, attr) for p in points} - {""})
            return tuple(got) or default

        return cls(prune=values("prune", (0.0,)), prune_scopes=values("prune_scope", ("global",)),
                   cleanup=values("cleanup", (False,)), precisions=values("precision", ("fp32",)),
                   calibration_methods=values("calibration", ("minmax",)), float_layers=float_layers,
                   backends=tuple(dict.fromkeys(p.backend for p in points)), threads=values("threads", (1,)),
                   batches=values("batch", (1,)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the JSON outputs and reports)."""
        return {k: list(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class Point:
    """One point of the space: what to build (its :class:`~edgeopt.optimizer.recipes.Recipe`,
    flattened so Optuna and the reports see one setting per field) and how to run it.

    Attributes:
        prune: fraction of MACs removed (0: unpruned).
        prune_scope: "global" or "sensitivity" (ignored when prune is 0).
        cleanup: graph cleanup before the precision change.
        precision: one of :data:`PRECISIONS`.
        calibration: int8-ort calibration method ("" otherwise).
        float_layers: worst int8 layers kept in float (int8-ort/int8-nncf; else 0).
        backend, threads, batch: how it runs.
    """

    prune: float = 0.0
    prune_scope: str = "global"
    cleanup: bool = False
    precision: str = "fp32"
    calibration: str = ""
    float_layers: int = 0
    backend: str = "ort"
    threads: int = 1
    batch: int = 1

    def __post_init__(self) -> None:
        # One canonical form per distinct model (the recipe's), so equal models share cache entries.
        recipe = self.recipe
        for f in ("prune_scope", "cleanup", "calibration", "float_layers"):
            object.__setattr__(self, f, getattr(recipe, f))

    @property
    def recipe(self) -> Recipe:
        """What decides the built model."""
        return Recipe(prune=self.prune, prune_scope=self.prune_scope, cleanup=self.cleanup,
                      precision=self.precision, calibration=self.calibration, float_layers=self.float_layers)

    @classmethod
    def of(cls, recipe: Recipe, backend: str, threads: int, batch: int) -> "Point":
        """The point that runs ``recipe`` on ``backend`` with ``threads`` at ``batch``."""
        keep = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in recipe.to_dict().items() if k in keep}, backend=backend,
                   threads=threads, batch=batch)

    @property
    def model_key(self) -> Recipe:
        """What decides the built model (not how it runs)."""
        return self.recipe

    @property
    def recipe_name(self) -> str:
        """Short name of the model, e.g. "pruned-50+kd/int8-nncf-2fp" or "fp32-clean"
        (:attr:`edgeopt.optimizer.recipes.Recipe.name`)."""
        return self.recipe.name

    @property
    def label(self) -> str:
        """Recipe, backend and settings, e.g. "int8-nncf@openvino t2 b1"."""
        return f"{self.recipe_name}@{self.backend} t{self.threads} b{self.batch}"

    def params(self) -> dict[str, Any]:
        """The Optuna parameters that reproduce this point (for ``enqueue_trial``)."""
        p: dict[str, Any] = {"prune": self.prune, "precision": self.precision,
                             "backend": self.backend, "threads": self.threads, "batch": self.batch}
        if self.prune:
            p["prune_scope"] = self.prune_scope
        if self.precision == "fp32":
            p["cleanup"] = self.cleanup
        if self.precision == "int8-ort":
            p["calibration"] = self.calibration
        if self.precision in MIXED:
            p["float_layers"] = self.float_layers
        return p

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def in_space(point: Point, space: SearchSpace) -> bool:
    """True when every parameter of ``point`` is one of the space's values."""
    dims = {"prune": space.prune, "prune_scope": space.prune_scopes, "precision": space.precisions,
            "cleanup": space.cleanup, "calibration": space.calibration_methods,
            "float_layers": space.float_layers, "backend": space.backends, "threads": space.threads,
            "batch": space.batches}
    return all(v in dims[k] for k, v in point.params().items())


def suggest(trial: Any, space: SearchSpace) -> Point:
    """Draw a point with an Optuna trial; conditional dimensions are asked only when
    they apply (pruning scope when pruning, calibration for int8-ort, ...), which
    Optuna's TPE handles with ``group=True``."""
    prune = trial.suggest_categorical("prune", space.prune)
    scope = trial.suggest_categorical("prune_scope", space.prune_scopes) if prune else "global"
    precision = trial.suggest_categorical("precision", space.precisions)
    cleanup = trial.suggest_categorical("cleanup", space.cleanup) if precision == "fp32" else True
    calibration = (trial.suggest_categorical("calibration", space.calibration_methods)
                   if precision == "int8-ort" else "")
    float_layers = trial.suggest_categorical("float_layers", space.float_layers) if precision in MIXED else 0
    return Point(
        prune=prune, prune_scope=scope, cleanup=cleanup, precision=precision, calibration=calibration,
        float_layers=float_layers, backend=trial.suggest_categorical("backend", space.backends),
        threads=trial.suggest_categorical("threads", space.threads),
        batch=trial.suggest_categorical("batch", space.batches),
    )


def hand_picked(threads: int, batch: int, backends: tuple[str, ...]) -> list[Point]:
    """The single choices a user would make by hand, evaluated first: fp32 on each backend,
    ONNX Runtime's ``quantize_static`` with its own defaults on ONNX Runtime, and
    ``nncf.quantize`` with its own defaults on OpenVINO (the libraries as a user gets them,
    not edgeopt's recipes: what the choice is re-timed against)."""
    points = [Point(backend=b, threads=threads, batch=batch) for b in backends]
    if "ort" in backends:
        points.append(Point(precision="int8-ort-defaults", backend="ort", threads=threads, batch=batch))
    if "openvino" in backends:
        points.append(Point(precision="int8-nncf-defaults", backend="openvino", threads=threads, batch=batch))
    return points


def default_space(threads: int, batch: int, backends: tuple[str, ...], *,
                  allow_batching: bool = False, max_batch: int = 32,
                  prune_targets: tuple[float, ...] = (0.3, 0.5, 0.7)) -> SearchSpace:
    """The full space for this machine: threads 1..``threads``, the given backends, the
    user's batch only (or powers of two up to ``max_batch`` with ``allow_batching``), and
    no pruning or each of ``prune_targets`` (fractions of MACs removed)."""
    batches = (batch,)
    if allow_batching:
        batches = tuple(sorted({batch, *[2 ** i for i in range(int(math.log2(max(1, max_batch))) + 1)]}))
    return SearchSpace(threads=tuple(range(1, max(1, threads) + 1)), backends=backends, batches=batches,
                       prune=(0.0, *prune_targets))


def grid_points(recipes: tuple[Recipe, ...], backends: tuple[str, ...], threads: int, batch: int) -> list[Point]:
    """Every recipe on every backend at the user's threads and batch, recipe-major (the
    exhaustive strategy's points, in the order they are measured and listed)."""
    return [Point.of(r, b, threads, batch) for r in recipes for b in backends]
