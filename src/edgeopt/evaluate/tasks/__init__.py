"""Task evaluators by name: how a candidate's outputs are judged against the original's.

The registry maps a task to ``"module:Class"`` resolved on first use (the idea of the
pass and backend registries). ``--task`` picks one; without it :func:`infer_task` guesses
from the model and says why. Names of the old vocabulary ("classification", "detection",
"other") are accepted as aliases.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Mapping

from ...errors import EdgeoptError
from .base import Evaluator, TaskScore

if TYPE_CHECKING:
    from ...model import Model

_REGISTRY = {
    "classify": "edgeopt.evaluate.tasks.classify:ClassifyEvaluator",
    "regress": "edgeopt.evaluate.tasks.regress:RegressEvaluator",
    "segment": "edgeopt.evaluate.tasks.segment:SegmentEvaluator",
    "embed": "edgeopt.evaluate.tasks.embed:EmbedEvaluator",
    "detect": "edgeopt.evaluate.tasks.detect:DetectEvaluator",
    "sequence": "edgeopt.evaluate.tasks.sequence:SequenceEvaluator",
    "outputs": "edgeopt.evaluate.tasks.outputs:OutputsEvaluator",
}
ALIASES = {"classification": "classify", "detection": "detect", "other": "outputs", "none": "outputs"}

__all__ = ["Evaluator", "TaskScore", "names", "get", "make", "canonical"]


def names() -> list[str]:
    """The task names, in registry order."""
    return list(_REGISTRY)


def canonical(task: str) -> str:
    """The registry name of ``task`` (aliases resolved).

    Raises:
        EdgeoptError: unknown task (the message lists the known ones).
    """
    name = ALIASES.get(task, task)
    if name not in _REGISTRY:
        raise EdgeoptError(f"unknown task {task!r}: choose one of {', '.join(_REGISTRY)}")
    return name


def get(task: str) -> type[Evaluator]:
    """The evaluator class of ``task`` (imported on first use)."""
    module, _, cls = _REGISTRY[canonical(task)].partition(":")
    return getattr(importlib.import_module(module), cls)


def make(task: str, model: "Model", options: Mapping[str, Any] | None = None) -> Evaluator:
    """An evaluator of ``task`` for ``model`` with ``options``."""
    return get(task)(model, options)
