"""The ``qat`` pass: int8 quantization-aware training, recovered by distillation."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

import numpy as np

from ..._util.errorline import error_line
from ...errors import PassError
from ..base import check_calibration, finish
from ..distill.api import summary
from ..distill.budget import check_single_output, train_student
from .config import PASS_NAME, QatConfig

if TYPE_CHECKING:
    from ...model import Model

NOTE_KEY = "edgeopt.qat"
"""Metadata key of the training's one-line summary (held-out agreement before -> after)."""


def apply(model: "Model", config: QatConfig, calibration: np.ndarray, *,
          labels: np.ndarray | None = None,
          clock: Callable[[], float] = time.perf_counter) -> "Model":
    """Quantize ``model`` to int8 QDQ by quantization-aware training.

    Steps: the model as a torch module (``edgeopt.convert.bridge.to_torch``: its own
    module, or the ONNX graph through onnx2torch); BatchNorm folded and fake-quantizers
    inserted (:mod:`.fakequant`); activation ranges calibrated on the first
    ``config.calibration_count`` images (post-training calibration, the start); then
    ``config.seconds`` of knowledge distillation with the float model as teacher (no
    labels needed; cross-entropy added when ``labels`` are given), the weights with the
    best held-out agreement (or accuracy, with labels) kept, the start included; exported
    as QuantizeLinear/DequantizeLinear pairs where ``config.placement`` put them: on the
    inputs and weights of every Conv and Gemm ("inputs", int8 on OpenVINO), or around
    them and every other op ("outputs", QLinearConv/QGemm on ONNX Runtime).

    Args:
        model: a single-input, single-output classifier (outputs (N, K) class scores).
        config: a :class:`~.config.QatConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.
        labels: optional int (N,) class indices of ``calibration``.
        clock: seconds clock the training budget is counted on (tests inject one).

    Returns:
        a new Model whose ``passes`` ends with "qat" (no torch module: the graph is int8)
        and whose metadata holds the training summary under :data:`NOTE_KEY`.

    Raises:
        PassError: several inputs or outputs, a module torch.fx cannot trace or torch
            cannot export, outputs that are not class scores (from distillation).
        DataError: calibration images or labels that do not fit the model.
    """
    from ...convert import bridge
    from . import fakequant

    data = check_calibration(model, calibration, PASS_NAME, limit=config.calibration_count)
    check_single_output(model, PASS_NAME, "int8-static or int8-nncf")
    teacher = bridge.to_torch(model)
    try:
        student = fakequant.insert_fake_quantizers(teacher, data, config.placement)
    except Exception as e:
        raise PassError(f"pass qat cannot insert fake-quantizers into {model.name} "
                        f"({error_line(e)}): use int8-static or int8-nncf instead") from e
    result = train_student(student, teacher, data, labels, config, clock=clock)
    spec = model.inputs[0]
    try:
        proto = fakequant.export_qdq(result.student, data[:1], spec.name, model.output_names[0])
    except Exception as e:
        raise PassError(f"pass qat cannot export the fake-quantized {model.name} to ONNX "
                        f"({error_line(e)}): use int8-static or int8-nncf instead") from e
    proto.metadata_props.extend(model.proto.metadata_props)
    proto.metadata_props.add(key=NOTE_KEY, value=summary(result))
    return finish(model, proto, PASS_NAME)

