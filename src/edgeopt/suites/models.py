"""The models a suite times: loaded and built once per run, each step charged to the budget.

A suite visits a (model, variant) in up to three waves (:mod:`edgeopt.suites.plan`).
Loading a zoo model took 0.3-0.6 s here and building its int8 variant (static
quantization with 32 calibration images) 2-3 s; a ``mobile --budget 2m`` run that
reloaded each model on every visit and built int8 variants after its budget was spent
ran 133 s (measured: 17 loads and 6 builds, 29 s that no deadline check had seen).
:class:`SuiteModels` keeps what it loaded or built (up to :data:`CACHE_BYTES`, least
recently used out first: VGG-16 alone is 553 MB) and asks the deadline before each load
or build, from this run's own measured durations scaled by model size.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Callable

from ..errors import EdgeoptError
from .._util.deadline import Deadline
from .._util.errorline import error_line
from ..data.images import demo_orientation_set
from ..optimizer.variants import build_variants
from .catalog import Variant

if TYPE_CHECKING:
    from ..model import Model

CACHE_BYTES = 600 * 2**20
"""Model bytes kept between visits; past it, the least recently used model is dropped."""
CALIBRATION_IMAGES = 32
"""Calibration images a quantized variant is built with."""


class Skip(str):
    """Why a group's cells were skipped for the budget (not a failure of the model)."""


class ScaledEstimates:
    """Durations of a kind of step learned in one run, scaled by the model's bytes.

    :meth:`estimate` is the largest seconds-per-byte seen times ``size_bytes``, never
    below the fastest step seen (a small model still pays a fixed cost).
    """

    def __init__(self) -> None:
        self._seen: dict[str, list[tuple[int, float]]] = {}

    def record(self, kind: str, size_bytes: int, seconds: float) -> None:
        """One step of ``kind`` on a model of ``size_bytes`` took ``seconds``."""
        self._seen.setdefault(kind, []).append((size_bytes, seconds))

    def estimate(self, kind: str, size_bytes: int) -> float | None:
        """Seconds a step of ``kind`` should take on ``size_bytes``; None before the first."""
        seen = self._seen.get(kind)
        if not seen:
            return None
        return max(min(s for _, s in seen), max(s * size_bytes / max(b, 1) for b, s in seen))

    def largest(self, kind: str) -> float | None:
        """The longest step of ``kind`` seen (for a step whose size is not known before it)."""
        seen = self._seen.get(kind)
        return max(s for _, s in seen) if seen else None


class SuiteModels:
    """The suite's models by (zoo reference, variant), loaded or built at most once while cached.

    Args:
        load: zoo reference -> Model.
        deadline: the suite's budget; each load and build is timed on its clock.
        estimates: where measured loads and builds are kept (shared with prepares).
        cache_bytes: model bytes kept between visits.
    """

    def __init__(self, load: Callable[[str], "Model"], deadline: Deadline, estimates: ScaledEstimates,
                 cache_bytes: int = CACHE_BYTES) -> None:
        self._load, self._deadline, self._estimates = load, deadline, estimates
        self._cache_bytes = cache_bytes
        self._kept: OrderedDict[tuple[str, str], "Model"] = OrderedDict()

    def get(self, ref: str, variant: Variant) -> "Model | str":
        """The model of ``variant``; else a one-line reason: a :class:`Skip` when the
        budget has no room for loading or building it, a plain str when it cannot be built."""
        try:
            base = self._model(ref, "fp32", lambda: self._load(ref), size=None)
            if isinstance(base, str) or variant.recipe == "fp32":
                return base
            return self._model(ref, variant.recipe, lambda: self._build(base, variant.recipe),
                               size=base.size_bytes)
        except EdgeoptError as e:
            return f"{ref} {variant.name}: {error_line(e, limit=None, with_type=False)}"

    def _model(self, ref: str, recipe: str, make: Callable[[], "Model"], size: int | None) -> "Model | str":
        key = (ref, recipe)
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        kind = "load" if recipe == "fp32" else f"build {recipe}"
        why = self._why_not(kind, size)
        if why:
            return Skip(why)
        start = self._deadline.clock()
        model = make()
        self._estimates.record(kind, size or model.size_bytes, self._deadline.clock() - start)
        self._keep(key, model)
        return model

    def _why_not(self, kind: str, size: int | None) -> str:
        if self._deadline.expired():
            return "skipped: the budget was spent before this cell"
        # A load's size is known only after it: the largest load seen stands for it.
        guess = self._estimates.largest(kind) if size is None else self._estimates.estimate(kind, size)
        if guess is not None and not self._deadline.allows(guess + 1.0):
            return (f"skipped: the {kind} takes ~{guess:.1f} s here (from this run's others), more than the "
                    f"{self._deadline.remaining():.1f} s left")
        return ""

    def _build(self, base: "Model", recipe: str) -> "Model":
        calibration = demo_orientation_set("calibration").tensor(base.preprocess)[:CALIBRATION_IMAGES]
        return build_variants(base, [recipe], calibration)[recipe]

    def _keep(self, key: tuple[str, str], model: "Model") -> None:
        self._kept[key] = model
        while len(self._kept) > 1 and sum(m.size_bytes for m in self._kept.values()) > self._cache_bytes:
            self._kept.popitem(last=False)
