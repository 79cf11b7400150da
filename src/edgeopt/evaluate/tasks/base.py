"""What a task evaluator is: the quality of a candidate's outputs against the original's,
in the metric a field agrees on for that task, as one number with a budget.

An evaluator is built once per run from the original model (its output names and shapes
decide how outputs are read) and scores any candidate: reference outputs (the original's,
on the held-out inputs), candidate outputs (same inputs, same graph outputs) and, when the
user gave them, ground-truth labels. The score's ``drop`` is how much worse the candidate is
than the original in the metric's own unit (0 when no worse); the optimizer's budget
(``--metric-tolerance``, or the evaluator's default) applies to it.

The anchors judge the same way: MLPerf (top-1 for classification, mAP for detection, word
or character error for speech), NNCF's accuracy control (a user validation function),
Olive (evaluators and metrics per task).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ...errors import DataError

if TYPE_CHECKING:
    from ...model import Model


@dataclass(frozen=True)
class TaskScore:
    """A candidate's quality in its task's metric.

    Attributes:
        task: the evaluator's task name ("classify", "detect", ...).
        metric: the metric as reports name it ("top-1 agreement", "mAP@0.5 vs the
            original's boxes", "mean landmark error", ...).
        unit: the metric's unit ("%", "points", "px", "dB", ...).
        value: the candidate's value of the metric.
        drop: how much worse than the original, in ``drop_unit`` (>= 0).
        drop_unit: the unit of ``drop`` ("points" for percentages, else ``unit``).
        original: the original's value of the metric where it is measured against ground
            truth (labels), else None.
        details: further numbers for reports (JSON-ready: floats, ints, strings, lists).
        per_sample: each sample's share of the drop, whose mean is ``drop`` (None when the
            task's drop is not a mean over samples); the optimizer bootstraps its upper
            confidence bound from it. Not part of :meth:`to_dict`.
    """

    task: str
    metric: str
    unit: str
    value: float
    drop: float
    drop_unit: str
    original: float | None = None
    details: dict[str, Any] = field(default_factory=dict)
    per_sample: "np.ndarray | None" = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """Strict-JSON-ready dict (non-finite floats as "inf", "-inf", "nan")."""
        d = {"task": self.task, "metric": self.metric, "unit": self.unit, "value": self.value,
             "drop": self.drop, "drop_unit": self.drop_unit, "original": self.original,
             **self.details}
        return {k: _json(v) for k, v in d.items()}


def _json(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, dict):
        return {k: _json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    return v


class Evaluator(ABC):
    """Scores candidate outputs against the original's for one task.

    Args:
        model: the original model (output names and the first input's shape).
        options: task options (e.g. ``{"decoder": "yolov8"}``), checked by the evaluator.

    Attributes:
        task: registry name.
        default_tolerance: the budget on ``drop`` when the user gives none, in the drop's
            unit.
        summary: one line for listings.
    """

    task: str = ""
    default_tolerance: float = 1.0
    summary: str = ""

    def __init__(self, model: "Model", options: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.options = dict(options or {})

    @abstractmethod
    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        """The candidate's :class:`TaskScore`.

        Args:
            reference: the original's outputs, one array per graph output, each (N, ...).
            candidate: the candidate's outputs, same order and shapes.
            labels: ground truth for the N samples in the task's form, or None.

        Raises:
            DataError: outputs or labels do not fit the task.
        """

    def output_index(self) -> int:
        """Index of the output named by the ``output`` option (default: the first).

        Raises:
            DataError: no output of that name.
        """
        name = self.options.get("output")
        if name is None:
            return 0
        if name not in self.model.output_names:
            raise DataError(f"{self.task} output {name!r} is not an output of {self.model.name}: choose one of "
                            f"{', '.join(self.model.output_names)}")
        return self.model.output_names.index(name)

    def explain(self, score: TaskScore, tolerance: float) -> str:
        """Why ``score`` breaks the budget, one line ("" when it does not)."""
        if score.drop <= tolerance:
            return ""
        return (f"{score.metric} {score.value:.2f} {score.unit}: {score.drop:.2f} {score.drop_unit} worse than "
                f"the original > {tolerance:g} (--metric-tolerance)")

    def hopeless(self, reference: Sequence[np.ndarray], quick: Sequence[np.ndarray], quick_index: np.ndarray,
                 labels: Any, tolerance: float) -> str:
        """Why outputs on a subset (rows ``quick_index`` of the N held-out samples) already
        prove the budget broken on the whole set ("" when they cannot tell, the default)."""
        return ""


def check_outputs(reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray]) -> tuple[list, list]:
    """The two output lists as float64 arrays, checked to match in count and shapes.

    Raises:
        DataError: different counts or shapes, or no sample.
    """
    ref = [np.asarray(r, dtype=np.float64) for r in reference]
    cand = [np.asarray(c, dtype=np.float64) for c in candidate]
    if len(ref) != len(cand):
        raise DataError(f"the original has {len(ref)} outputs and the candidate {len(cand)}: compare "
                        f"models with the same graph outputs")
    for i, (r, c) in enumerate(zip(ref, cand)):
        if r.shape != c.shape:
            raise DataError(f"output {i}: the original's {r.shape} and the candidate's {c.shape} differ: "
                            f"compare the same outputs of models run on the same inputs")
        if r.ndim == 0 or r.shape[0] == 0:
            raise DataError(f"output {i} has shape {r.shape}: pass outputs of shape (N, ...) with N >= 1")
    return ref, cand
