"""The ``weights-ternary`` and ``weights-binary`` passes: train, freeze, export, store codes."""

from __future__ import annotations

import time
import warnings
from typing import TYPE_CHECKING, Callable

import numpy as np
import onnx

from ..._util.errorline import error_line
from ...errors import PassError
from ..base import check_calibration, finish
from ..distill.api import summary
from ..distill.budget import check_single_output, train_student
from .config import BINARY_NAME, TERNARY_NAME, BinaryConfig, TernaryConfig
from .export import store_codes

if TYPE_CHECKING:
    from ...model import Model

NOTE_KEY = "edgeopt.ste"
"""Metadata key of the training's one-line summary (held-out agreement before -> after)."""


def apply_ternary(model: "Model", config: TernaryConfig | None = None, calibration: np.ndarray | None = None,
                  *, labels: np.ndarray | None = None,
                  clock: Callable[[], float] = time.perf_counter) -> "Model":
    """``weights-ternary``: TWN weights α x {-1, 0, 1} per output channel
    (:func:`.quantizers.ternarize`), trained through the STE by distillation from the
    original; codes stored as INT2 (or INT4) behind DequantizeLinear, declared 2 bits.

    See :func:`train_and_export` for the steps, arguments and errors.
    """
    return train_and_export(model, config or TernaryConfig(), calibration, "ternary", TERNARY_NAME,
                            labels=labels, clock=clock)


def apply_binary(model: "Model", config: BinaryConfig | None = None, calibration: np.ndarray | None = None,
                 *, labels: np.ndarray | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> "Model":
    """``weights-binary``: BWN weights α x sign(W) per output channel
    (:func:`.quantizers.binarize`), trained through the STE (``clip``: BinaryConnect's gradient box)
    by distillation from the original; codes stored as INT2 (or INT4) behind
    DequantizeLinear, declared 1 bit. With ``activations="binary"`` (XNOR-Net) the inputs
    of the binarized convs are signs too, for OpenVINO's BinaryConvolution (OpenVINO only).

    See :func:`train_and_export` for the steps, arguments and errors.
    """
    return train_and_export(model, config or BinaryConfig(), calibration, "binary", BINARY_NAME,
                            labels=labels, clock=clock)


def train_and_export(model: "Model", config: TernaryConfig, calibration: np.ndarray | None, kind: str,
                     pass_name: str, *, labels: np.ndarray | None = None,
                     clock: Callable[[], float] = time.perf_counter) -> "Model":
    """Quantize ``model``'s weights to ``kind`` and recover by distillation.

    Steps: the model as a torch module (``edgeopt.convert.bridge.to_torch``); BatchNorm
    folded; every Conv2d/Linear but the first and last (``config.keep_first_last``), the
    depthwise convs (``config.keep_depthwise``) and ``config.exclude`` swapped for its
    STE twin (:mod:`.network`); ``config.seconds`` of knowledge distillation with the
    float model as teacher (cross-entropy added with ``labels``), the weights with the
    best held-out agreement (or accuracy) kept, the untrained start included; the twins
    frozen to plain layers and exported (``edgeopt.model.from_torch``); the weights
    stored as codes (:func:`.export.store_codes`).

    Args:
        model: a single-input, single-output classifier (outputs (N, K) class scores).
        config: a :class:`~.config.TernaryConfig` or :class:`~.config.BinaryConfig`.
        calibration: float32 (N, C, H, W) training images preprocessed with ``model.preprocess``.
        kind: "ternary" or "binary".
        labels: optional int (N,) class indices of ``calibration``.
        clock: seconds clock the training budget is counted on (tests inject one).

    Returns:
        a new Model whose ``passes`` ends with ``pass_name``, with no torch module (its
        weights are codes) and the training summary in its metadata under :data:`NOTE_KEY`.

    Raises:
        PassError: several inputs or outputs, a network torch.fx cannot trace, an unknown
            excluded layer, or an export that fails.
        DataError: calibration images or labels that do not fit the model.
    """
    import torch

    from ...convert import bridge
    from . import network

    data = check_calibration(model, calibration, pass_name, limit=config.calibration_count)
    check_single_output(model, pass_name, "weights-int2")
    teacher = bridge.to_torch(model)
    example = torch.from_numpy(data[:1])
    student = network.fold(teacher)
    chosen = network.select(student, example, config.keep_first_last, config.exclude,
                            config.keep_depthwise).chosen
    network.swap_in(student, chosen, kind, binary_input=_xnor(config), clip=getattr(config, "clip", None))
    result = train_student(student, teacher, data, labels, config, clock=clock)
    proto = export_trained(result.student, chosen, model, config, kind, pass_name)
    proto.metadata_props.add(key=NOTE_KEY, value=summary(result))
    return finish(model, proto, pass_name)


def export_trained(student, chosen: tuple[str, ...], model: "Model", config: TernaryConfig, kind: str,
                   pass_name: str) -> onnx.ModelProto:
    """The ONNX graph of a trained STE ``student``: its ``chosen`` layers frozen to plain
    ones (:func:`.network.swap_out`, in place), exported with ``edgeopt.model.from_torch``
    (batch symbolic), the codes stored (:func:`.export.store_codes`: INT4 for XNOR graphs,
    which only OpenVINO reads) and ``model``'s metadata carried over.

    Args:
        student: the torch module of :func:`.network.swap_in` (trained or not).
        model: the Model the student came from (input/output names, shape, metadata).

    Raises:
        PassError: the export fails or changed a weight beyond recognition.
    """
    import torch

    from ...model import from_torch
    from . import network

    frozen = network.swap_out(student, chosen)
    weights = [_exported_weight(frozen.get_submodule(n)) for n in chosen]
    example = torch.zeros(model.inputs[0].shape, dtype=torch.float32)
    try:
        with warnings.catch_warnings():  # the exporter's note on the custom-domain FakeQuantize
            warnings.simplefilter("ignore")
            proto = from_torch(frozen, example, input_name=model.inputs[0].name,
                               output_name=model.output_names[0]).proto
    except Exception as e:
        raise PassError(f"pass {pass_name} cannot export the trained {model.name} to ONNX "
                        f"({error_line(e)}): use weights-int2 instead") from e
    proto = store_codes(proto, weights, bits=1 if kind == "binary" else 2,
                        storage_bits=4 if _xnor(config) else config.storage_bits,
                        model_name=model.name, pass_name=pass_name, cast=_xnor(config))
    have = {p.key for p in proto.metadata_props}
    proto.metadata_props.extend(p for p in model.proto.metadata_props if p.key not in have)
    return proto


def _xnor(config: TernaryConfig) -> bool:
    return getattr(config, "activations", "float") == "binary"


def _exported_weight(layer) -> np.ndarray:
    """The float32 weight the export writes for a frozen layer (an XNOR conv: its ±1 conv)."""
    inner = getattr(layer, "conv", layer)
    return inner.weight.detach().numpy().copy()

