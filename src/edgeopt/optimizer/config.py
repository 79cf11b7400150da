"""What the user asks of ``optimize``, whichever strategy runs it."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import EdgeoptError
from .confidence import CONFIDENCE, check_tie_breaker
from .measure import Timing
from .objective import Limits
from .recipes import Recipe
from .space import SearchSpace

STRATEGIES = ("grid", "search")
OBJECTIVES = ("p50", "p90")


@dataclass(frozen=True)
class OptimizeConfig:
    """The settings of one ``optimize`` run.

    Attributes:
        strategy: "grid" (every recipe x backend at the user's threads and batch, each
            measured in full) or "search" (Optuna's multi-objective TPE sampler over the
            whole space, with cheap checks first, within ``budget_s``).
        budget_s: wall-time budget of the whole run (trials, fallback, confirmation),
            seconds; None: the grid runs to the end, the search takes 600 s.
        max_drop: largest quality drop, in the task metric's drop unit (points of top-1
            agreement/accuracy for a classifier; see :mod:`edgeopt.optimizer.measure`);
            None: the task's default.
        task: the task whose evaluator judges quality (:mod:`edgeopt.evaluate.tasks`);
            None: inferred from the model.
        task_options: options of that evaluator (e.g. ``{"pairs": True}`` for landmarks).
        min_snr_db: the SNR floor every output keeps when no task is recognised (dB).
        max_latency_ms: latency constraint (objective statistic at the trial's batch), ms,
            or None.
        max_size_bytes: model file size constraint, bytes, or None.
        objective: latency statistic minimised, "p50" or "p90".
        size_objective: also minimise the model size (a third objective).
        batch: the user's batch; the grid, the hand-picked choices and the baseline run at it.
        threads: the user's thread count, likewise.
        backends: backend names tried (those not installed are left out with a note).
        prune_targets: MAC fractions removed by pruning + distillation; None: (0.3, 0.5)
            for the grid, (0.3, 0.5, 0.7) for the search.
        recipes: the grid's recipes (None: :func:`edgeopt.optimizer.recipes.grid_recipes`
            of the prune targets).
        space: the search's space (None: :func:`edgeopt.optimizer.space.default_space`).
        float_layers: how many of the worst int8 layers the accuracy-aware fallback keeps
            in float, in turn (the grid's; the search's come from its space).
        qat: after the fallback, try quantization-aware training where int8 is fast but
            over the quality budget (:mod:`edgeopt.optimizer.qat_step`), trained within
            the time left.
        train_seconds: distillation budget of each pruned model, seconds.
        storage: Optuna storage URL (None: a SQLite file in the output folder for the
            search, memory for the grid).
        study_name: Optuna study name (None: derived from the model, batch and threads).
        resume: continue an existing study of that name instead of refusing it.
        seed: sampler seed (and of the quick-check subset).
        quick_images: held-out images of the search's cheap quality check.
        hopeless_factor: the search stops a trial whose short timing is this many times the
            best feasible latency so far.
        min_runs, min_time_s, max_time_s: timing of each candidate's full measurement.
        confirm_rounds: alternating rounds of the final re-timing.
        confidence: one-sided confidence of quality verdicts and the level of the speed
            intervals' decisions (:mod:`edgeopt.optimizer.confidence`); None: point
            estimates (the old rule).
        tie_breaker: how a tie among the confirmed finalists is broken: "passes" (fewer
            passes, then the smaller model), "size", or "runtime:NAME".
        reserve_s: seconds kept for the fallback and the confirmation when there is a
            budget (None: 12% of it, at least 10 s but never more than 30% of it).
        calibration_fraction: share of the images used for calibration when no separate
            calibration set is given; the rest are held out for quality.
    """

    strategy: str = "grid"
    budget_s: float | None = None
    max_drop: float | None = None
    task: str | None = None
    task_options: dict = field(default_factory=dict)
    min_snr_db: float = 20.0
    max_latency_ms: float | None = None
    max_size_bytes: int | None = None
    objective: str = "p50"
    size_objective: bool = False
    batch: int = 1
    threads: int = 2
    backends: tuple[str, ...] = ("ort", "openvino")
    prune_targets: tuple[float, ...] | None = None
    recipes: tuple[Recipe, ...] | None = None
    space: SearchSpace | None = None
    float_layers: tuple[int, ...] = (1, 2, 4, 8)
    qat: bool = True
    train_seconds: float = 45.0
    storage: str | None = None
    study_name: str | None = None
    resume: bool = False
    seed: int = 0
    quick_images: int = 32
    hopeless_factor: float = 1.5
    min_runs: int = 20
    min_time_s: float = 1.0
    max_time_s: float = 4.0
    confirm_rounds: int = 5
    confidence: float | None = CONFIDENCE
    tie_breaker: str = "passes"
    reserve_s: float | None = None
    calibration_fraction: float = 0.3

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise EdgeoptError(f"unknown strategy {self.strategy!r}: choose grid or search")
        if self.budget_s is not None and not self.budget_s > 0:
            raise EdgeoptError(f"budget {self.budget_s} s must be positive: pass e.g. --budget 10m")
        if self.objective not in OBJECTIVES:
            raise EdgeoptError(f"objective {self.objective!r} is not p50 or p90: pick one")
        if self.max_drop is not None and not 0 <= self.max_drop <= 100:
            raise EdgeoptError(f"max_drop {self.max_drop} is outside 0..100 (the task metric's unit)")
        if self.batch < 1 or self.threads < 1:
            raise EdgeoptError("batch and threads must be positive integers")
        if self.train_seconds <= 0 or self.min_time_s <= 0:
            raise EdgeoptError("train_seconds and min_time_s must be positive seconds")
        if self.confidence is not None and not 0.5 < self.confidence < 1:
            raise EdgeoptError(f"confidence {self.confidence} is not between 0.5 and 1: pass e.g. 0.95")
        check_tie_breaker(self.tie_breaker)
        if not self.backends:
            raise EdgeoptError("no backend to try: give at least one, e.g. ort")

    @property
    def budget(self) -> float | None:
        """The wall-time budget in seconds (the search's default when none is given)."""
        if self.budget_s is None and self.strategy == "search":
            return 600.0
        return self.budget_s

    @property
    def reserve(self) -> float:
        """Seconds of the budget kept for the fallback and the confirmation."""
        if self.reserve_s is not None:
            return self.reserve_s
        budget = self.budget
        if budget is None:
            return 0.0
        return min(max(10.0, 0.12 * budget), 0.3 * budget)

    @property
    def targets(self) -> tuple[float, ...]:
        """The pruning targets (the strategy's default when none are given)."""
        if self.prune_targets is not None:
            return self.prune_targets
        return (0.3, 0.5) if self.strategy == "grid" else (0.3, 0.5, 0.7)

    @property
    def timing(self) -> Timing:
        """The latency measurement settings."""
        return Timing(min_runs=self.min_runs, min_time_s=self.min_time_s, max_time_s=self.max_time_s,
                      confirm_rounds=self.confirm_rounds)

    def limits(self, *, tolerance: float, early_stop: bool) -> Limits:
        """The trials' constraints and objectives: ``tolerance`` is the resolved quality
        budget, ``early_stop`` as the strategy says."""
        return Limits(max_drop=tolerance, max_latency_ms=self.max_latency_ms,
                      max_size_bytes=self.max_size_bytes, objective=self.objective,
                      size_objective=self.size_objective, early_stop=early_stop,
                      hopeless_factor=self.hopeless_factor)
