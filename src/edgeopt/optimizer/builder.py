"""Build the model of a recipe from existing passes, once: the optimizer's one builder.

A recipe's model is a chain of pass steps (prune -> distill -> cleanup -> precision). Every
prefix of the chain is kept in memory, and every finished model can also be written to a
cache folder keyed by its steps, so recipes sharing a prefix (say, the same pruned and
distilled model quantized two ways) build it once, and a resumed search, or another
worker process on the same machine, reads it back instead of training again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from ..errors import EdgeoptError, PassError
from ..passes.base import check_calibration, run_pass
from ..passes.diagnostics.quant_error import layer_errors
from ..passes.diagnostics.sensitivity import agreement_fn, max_safe_ratios, sensitivity
from ..passes.distill import read_summary, recovery_config
from ..passes.prune import PruneConfig
from ..model import Model
from .._util.atomic import atomic_write_bytes
from .._util.errorline import error_line
from ..passes.qat import NOTE_KEY as QAT_NOTE
from .recipes import PRECISIONS, Recipe

# First-guess build costs in seconds for a model of _GUESS_BYTES (PP-LCNet, 6.8 MB, on two
# cores), scaled by the model's size and replaced by what each pass measures here.
_GUESS_BYTES = 7e6
_GUESS_S = {"prune": 10.0, "distill": 0.0, "cleanup": 3.0, "fp16": 3.0, "int8-static": 15.0,
            "int8-nncf": 20.0, "int8-dynamic": 5.0, "int8-ort-defaults": 15.0, "int8-nncf-defaults": 20.0,
            "ranking": 10.0, "sensitivity": 60.0, "qat": 80.0, "qat overhead": 20.0}
_TRAINED = {s.pass_name for s in PRECISIONS.values() if s.trained}
"""Passes that train within their config's ``seconds`` (qat)."""


class ModelBuilder:
    """Builds (and caches) the model of each :class:`~edgeopt.optimizer.recipes.Recipe`.

    Args:
        original: the user's model (never modified); it is also the distillation teacher.
        calibration: float32 (N, C, H, W) preprocessed calibration images (or (N, ...)
            samples of another single-input model; {input name: array} for several inputs:
            :func:`edgeopt.data.feeds.calibration_data`), or None (the recipes that
            calibrate or prune then fail with the pass's own message).
        labels: int (N,) classes of ``calibration``, or None (distillation is then
            teacher-only).
        train_seconds: distillation budget of each pruned model, seconds.
        need_agreement: top-1 agreement (%) with the original that the quality budget
            needs (:attr:`~edgeopt.optimizer.measure.Measurer.need_agreement`), or None: a
            distillation whose agreement plateaus far below it stops before
            ``train_seconds`` (:mod:`edgeopt.passes.distill.plateau`).
        cache_dir: folder for built models (None: memory only).
        sensitivity_drop: with the "sensitivity" prune scope, each layer is capped at the
            largest ratio whose drop in top-1 agreement, pruned alone and before
            recovery, stays under this many points.
        ranking_images: calibration images used to rank layers by int8 error.
    """

    def __init__(self, original: Model, calibration: np.ndarray | None, labels: np.ndarray | None = None, *,
                 train_seconds: float = 45.0, need_agreement: float | None = None,
                 cache_dir: str | Path | None = None, sensitivity_drop: float = 5.0,
                 ranking_images: int = 32) -> None:
        self.original = original
        self.calibration = calibration
        self.labels = labels
        self.train_seconds = float(train_seconds)
        self.need_agreement = need_agreement
        self.cache_dir = None if cache_dir is None else Path(cache_dir)
        self.sensitivity_drop = sensitivity_drop
        self.ranking_images = ranking_images
        self._memo: dict[tuple, Model | str] = {(): original}
        self._rankings: dict[tuple, tuple[str, ...]] = {}
        self._safe_ratios: dict[str, float] | None = None
        self._failures: dict[Any, str] = {}  # analyses that failed: "sensitivity", ("ranking", recipe)
        self._training: dict[Recipe, float] = {}  # training seconds of trained precisions (set_training)
        self.seconds: dict[str, float] = {}  # measured cost per pass name (largest seen)
        # Trained models depend on the data they were trained on, not only on the steps.
        digest = hashlib.sha256()
        arrays = calibration.items() if isinstance(calibration, dict) else [("", calibration)]
        for name, arr in ([] if calibration is None else arrays):
            digest.update(name.encode() + np.ascontiguousarray(arr).tobytes())
        if labels is not None:
            digest.update(np.asarray(labels, dtype=np.int64).tobytes())
        self._data_digest = digest.hexdigest()[:16]

    # -- steps ---------------------------------------------------------------------------
    def steps(self, recipe: Recipe) -> tuple[tuple[str, Any], ...]:
        """(pass name, config) pairs that build ``recipe``'s model, in order.

        The layers kept in float (``float_layers``) come from the int8 error ranking of
        the same model quantized whole; computing it may build that model first.
        """
        steps: list[tuple[str, Any]] = []
        if recipe.prune:
            safe = self._analysis("sensitivity", self.safe_ratios) if recipe.prune_scope == "sensitivity" else None
            steps.append(("prune", PruneConfig(target_macs=recipe.prune, sensitivity=_frozen(safe))))
            if recipe.recover:
                recovery = recovery_config(self.train_seconds, self.need_agreement)
                if any(s.layout != "NCHW" for s in self.original.inputs):
                    # Crops, flips and colour jitter are for images, not waveforms or features.
                    recovery = dataclasses.replace(recovery, augment=False)
                steps.append(("distill", recovery))
        if recipe.cleanup:
            steps.append(("cleanup", None))
        spec = recipe.spec
        if spec.pass_name is None:
            return tuple(steps)
        keep = ()
        if recipe.float_layers:
            keep = self._analysis(("ranking", recipe.whole), lambda: self.ranking(recipe))[:recipe.float_layers]
        config = spec.config(recipe, keep)
        if spec.trained and recipe in self._training:
            config = dataclasses.replace(config, seconds=self._training[recipe])
        steps.append((spec.pass_name, config))
        return tuple(steps)

    def set_training(self, recipe: Recipe, seconds: float) -> None:
        """Give the trained precision of ``recipe`` (qat) ``seconds`` of training (s, > 0)
        instead of its config's default; the seconds are part of its steps, so the model
        is built (and cached) for that budget."""
        self._training[recipe] = float(seconds)

    def training_seconds(self, recipe: Recipe) -> float:
        """Seconds of training the precision step of ``recipe`` gets (0 for a precision
        that does not train)."""
        if not recipe.spec.trained:
            return 0.0
        return self._training.get(recipe, float(recipe.spec.config(recipe, ()).seconds))

    def _analysis(self, key: Any, run: Any) -> Any:
        """``run()``, or the PassError of its earlier failure: an analysis that failed once
        (a library's exception included) is not run again."""
        if key in self._failures:
            raise PassError(self._failures[key])
        try:
            return run()
        except Exception as e:  # noqa: BLE001 - any library failure ends this recipe, never the run
            what = key if isinstance(key, str) else "int8 error ranking"
            self._failures[key] = f"{what} analysis failed: {e if isinstance(e, EdgeoptError) else error_line(e)}"
            raise PassError(self._failures[key]) from None

    def known_failure(self, recipe: Recipe) -> str | None:
        """Why ``recipe`` is already known to fail (a failed analysis or a failed prefix of
        its steps, in this process or in the disk cache), without building anything; None
        when not known to fail."""
        if recipe.prune and recipe.prune_scope == "sensitivity":
            if "sensitivity" in self._failures:
                return self._failures["sensitivity"]
            if self._safe_ratios is None:
                return None
        if recipe.float_layers and recipe.whole not in self._rankings:
            return self._failures.get(("ranking", recipe.whole)) or self.known_failure(recipe.whole)
        steps = self.steps(recipe)
        for i in range(1, len(steps) + 1):
            got = self._memo.get(steps[:i])
            if got is None:
                got = self._failed_on_disk(steps[:i])
            if isinstance(got, str):
                return got
        return None

    def safe_ratios(self) -> dict[str, float]:
        """Per-layer ratio caps from the sensitivity analysis (computed once)."""
        if self._safe_ratios is None:
            import torch

            from ..convert.bridge import to_torch  # imports torch: only when this analysis runs

            t0 = time.perf_counter()
            module = to_torch(self.original)
            example = torch.zeros(self.original.inputs[0].shape, dtype=torch.float32)
            images = check_calibration(self.original, self.calibration, "prune", self.ranking_images * 2)
            result = sensitivity(module, example, agreement_fn(module, images), calibration=images,
                                 progress=False)
            self._safe_ratios = max_safe_ratios(result, self.sensitivity_drop)
            self._note("sensitivity", time.perf_counter() - t0)
        return self._safe_ratios

    def ranking(self, recipe: Recipe) -> tuple[str, ...]:
        """Node names of ``recipe``'s float model, worst int8 error first
        (:func:`edgeopt.passes.diagnostics.quant_error.layer_errors` of the whole-int8 model)."""
        whole = recipe.whole
        key = whole
        if key not in self._rankings:
            quantized = self.build(whole)
            float_model = self._chain(self.steps(whole)[:-1])
            t0 = time.perf_counter()
            errors = layer_errors(float_model, quantized, self.calibration[: self.ranking_images])
            self._rankings[key] = tuple(e.node for e in errors)
            self._note("ranking", time.perf_counter() - t0)
        return self._rankings[key]

    # -- building ------------------------------------------------------------------------
    def build(self, recipe: Recipe) -> Model:
        """The model of ``recipe``.

        Raises:
            PassError: a pass or an analysis it needs failed (the message names it, a
                library's own exception included); the failure is remembered, so the same
                steps are not retried.
        """
        got = self._chain(self.steps(recipe))
        if isinstance(got, str):
            raise PassError(got)
        return got

    def notes(self, recipe: Recipe) -> list[str]:
        """What the passes of ``recipe``'s built model said about themselves: how its
        recovery went ("distillation stopped at 12 s: held-out agreement 41% plateaued
        ..."); [] when it was not built or has nothing to say."""
        steps = self.steps(recipe)
        names = [name for name, _ in steps]
        out = []
        if "distill" in names:
            got = self._memo.get(steps[:names.index("distill") + 1])
            said = read_summary(got) if isinstance(got, Model) else None
            out += [f"distillation {said}"] if said else []
        got = self._memo.get(steps)
        if recipe.spec.trained and isinstance(got, Model):
            said = next((p.value for p in got.proto.metadata_props if p.key == QAT_NOTE), None)
            out += [f"{recipe.spec.pass_name} {said}"] if said else []
        return out

    def estimate_seconds(self, recipe: Recipe) -> float:
        """Seconds the steps of ``recipe`` not built yet would take (a guess before the
        first build of each pass, then the largest time measured here)."""
        qpass = recipe.spec.pass_name
        extra = 0.0
        if recipe.float_layers and recipe.whole not in self._rankings:
            extra = self._cost("ranking") + self._cost(qpass)
        if recipe.prune and recipe.prune_scope == "sensitivity" and self._safe_ratios is None:
            # The steps are unknown until the analysis has run: count all of them.
            names = ["sensitivity", "prune", "distill", "cleanup"] + ([qpass] if qpass else [])
            return sum(self._cost(n) for n in names) + extra
        steps = self.steps(recipe.whole)
        total = extra
        for i in range(1, len(steps) + 1):
            key = steps[:i]
            if key not in self._memo and not self._cached(key):
                total += self._cost(*key[-1])
        return total

    def _chain(self, steps: tuple[tuple[str, Any], ...]) -> Model | str:
        for i in range(1, len(steps) + 1):
            key = steps[:i]
            if key in self._memo:
                continue
            prev = self._memo[key[:-1]]
            if isinstance(prev, str):
                self._memo[key] = prev
                continue
            cached = self._load(key)
            if cached is not None:
                self._memo[key] = cached
                continue
            name, config = key[-1]
            t0 = time.perf_counter()
            try:
                built = run_pass(name, prev, config, calibration=self.calibration,
                                 teacher=self.original, labels=self.labels)
            except Exception as e:  # noqa: BLE001 - a library's failure is this candidate's, not the run's
                self._memo[key] = f"pass {name} failed: {e if isinstance(e, EdgeoptError) else error_line(e)}"
                self._store(key, self._memo[key])
                continue
            self._note(name, time.perf_counter() - t0)
            if name in _TRAINED:  # what a trained pass costs beyond its training budget
                self._note(f"{name} overhead", time.perf_counter() - t0 - config.seconds)
            self._memo[key] = built
            self._store(key, built)
        return self._memo[steps]

    def _cost(self, name: str, config: Any = None) -> float:
        if name == "distill":
            return self.train_seconds + 5.0
        if name in _TRAINED and config is not None:
            return config.seconds + self._cost(f"{name} overhead")
        if name in self.seconds:
            return self.seconds[name]
        scale = min(3.0, max(0.2, self.original.size_bytes / _GUESS_BYTES))
        return _GUESS_S.get(name, 10.0) * scale

    def _note(self, name: str, seconds: float) -> None:
        self.seconds[name] = max(seconds, self.seconds.get(name, 0.0))

    # -- disk cache ----------------------------------------------------------------------
    def _path(self, key: tuple) -> Path | None:
        if self.cache_dir is None:
            return None
        ident = json.dumps([self.original.sha256, self._data_digest, [(n, repr(c)) for n, c in key]])
        return self.cache_dir / (hashlib.sha256(ident.encode()).hexdigest()[:24] + ".onnx")

    def _cached(self, key: tuple) -> bool:
        path = self._path(key)
        return path is not None and (path.exists() or path.with_suffix(".failed").exists())

    def _load(self, key: tuple) -> Model | str | None:
        """The cached model of ``key``, the reason its build failed (another process or an
        earlier run found out: failures of passes are deterministic), or None."""
        path = self._path(key)
        if path is None:
            return None
        failed = self._failed_on_disk(key)
        if failed is not None:
            return failed
        if not path.exists():
            return None
        try:
            proto = onnx.load(str(path))
            passes = tuple(json.loads(path.with_suffix(".json").read_text())["passes"])
        except (OSError, ValueError, KeyError, onnx.checker.ValidationError):
            return None
        return dataclasses.replace(self.original, proto=proto, passes=passes, torch_module=None)

    def _failed_on_disk(self, key: tuple) -> str | None:
        path = self._path(key)
        if path is None or not path.with_suffix(".failed").exists():
            return None
        try:
            return json.loads(path.with_suffix(".failed").read_text())["reason"]
        except (OSError, ValueError, KeyError):
            return None

    def _store(self, key: tuple, model: Model | str) -> None:
        path = self._path(key)
        if path is None:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(model, str):
            atomic_write_bytes(path.with_suffix(".failed"), json.dumps({"reason": model}).encode())
            return
        atomic_write_bytes(path.with_suffix(".json"), json.dumps({"passes": list(model.passes)}).encode())
        atomic_write_bytes(path, model.serialized())


def _frozen(safe: dict[str, float] | None) -> tuple[tuple[str, float], ...] | None:
    """A hashable, order-independent form of the ratio caps (configs are dict keys)."""
    return None if safe is None else tuple(sorted(safe.items()))


