"""The ``distill`` pass: recover a (pruned) Model by distillation from its original."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from ..._util.onnxgraph import copy_proto
from ...errors import PassError
from ..base import check_calibration
from .config import PASS_NAME, DistillConfig, DistillResult
from .data import hold_out
from .distiller import distill

if TYPE_CHECKING:
    from ...model import Model

NOTE_KEY = "edgeopt.distill"
"""Metadata key of the distillation's :func:`summary`: it travels with the file (and the
optimizer's build cache), so a candidate's row can say how its recovery went."""


def distill_model(model: "Model", config: DistillConfig, calibration: np.ndarray, *,
                  teacher: "Model", labels: np.ndarray | None = None) -> tuple["Model", DistillResult]:
    """Distill ``teacher`` into ``model`` on the calibration images; also return the history.

    ``val_fraction`` of the calibration images (chosen with the seed) is held out for the
    agreement that drives ``target_agreement`` and ``restore_best``; when that would be
    fewer than 10 images, all images serve for both (the agreement is then optimistic).

    Args:
        model: the student (e.g. pruned) Model; converted with ``edgeopt.convert.bridge.to_torch``.
        config: a :class:`~.config.DistillConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.
        teacher: the original Model, same inputs and outputs.
        labels: optional int (N,) class indices of the calibration images: adds
            cross-entropy (weight 1 - alpha) and picks the best epoch by accuracy.

    Returns:
        (a new Model whose ``passes`` ends with "distill", whose ``torch_module`` is the
        trained student and whose metadata holds :func:`summary` under :data:`NOTE_KEY`,
        the :class:`~.config.DistillResult`).

    Raises:
        PassError: no teacher or no calibration images, inputs that differ between the
            models, or see :func:`~.distiller.distill`.
        DataError: calibration images that do not fit the model.
    """
    from ...convert import bridge

    if teacher is None:
        raise PassError("pass distill needs the original model as teacher: call "
                        "apply(pruned, config, images, teacher=original)")
    if calibration is None:
        raise PassError("pass distill trains on calibration images: pass --images DIR")
    if [s.shape[1:] for s in model.inputs] != [s.shape[1:] for s in teacher.inputs]:
        raise PassError(
            f"student {model.name} takes {[s.shape for s in model.inputs]}, teacher "
            f"{teacher.name} takes {[s.shape for s in teacher.inputs]}: distill from the "
            f"model this one was derived from"
        )
    data = check_calibration(model, calibration, PASS_NAME)
    train, val, y_train, y_val = hold_out(data, labels, config.val_fraction, config.seed)
    student = bridge.to_torch(model)
    result = distill(student, bridge.to_torch(teacher), train, labels=y_train, val_images=val,
                     val_labels=y_val, config=config)
    distilled = bridge.from_module(model, result.student, PASS_NAME)
    proto = copy_proto(distilled.proto)  # the Model already serialized its own (checked) proto
    proto.metadata_props.add(key=NOTE_KEY, value=summary(result))
    return dataclasses.replace(distilled, proto=proto), result


def summary(result: DistillResult) -> str:
    """One line on how a distillation went: why it stopped early (its note), else the
    held-out agreement before and after ("held-out agreement 41% -> 52% in 45 s")."""
    if result.note:
        return result.note
    seconds = result.history[-1]["seconds"]
    return (f"held-out agreement {result.agreement_before:.0f}% -> {result.agreement_after:.0f}% "
            f"in {seconds:.0f} s")


def read_summary(model: "Model") -> str | None:
    """The :func:`summary` a distillation left in ``model``'s metadata, or None."""
    return next((p.value for p in model.proto.metadata_props if p.key == NOTE_KEY), None)


def apply(model: "Model", config: DistillConfig, calibration: np.ndarray, *,
          teacher: "Model | None" = None, labels: np.ndarray | None = None) -> "Model":
    """The ``distill`` pass: recover a (pruned) model by distillation from ``teacher``.

    Registry integration: the teacher is a second Model, not a setting (a config holds
    only serialisable values) and not provenance (a Model does not keep its ancestors
    alive). So the pass declares ``requires=("calibration", "teacher")`` and
    :func:`~edgeopt.passes.base.run_pass` forwards a ``teacher=`` keyword to passes that
    require it, failing with the spec's ``needs`` line when it is missing.

    See :func:`distill_model` for the arguments, result and errors.
    """
    return distill_model(model, config, calibration, teacher=teacher, labels=labels)[0]
