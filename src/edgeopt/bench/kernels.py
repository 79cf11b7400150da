"""Which kernels a runtime actually runs for a model's convolution and matrix layers.

A quantized file says how its weights are stored; the runtime decides what it computes
with. An int8 QDQ Conv may run as an int8 kernel or as a float32 Conv on weights
dequantized at every inference, and 4-bit weights may be unpacked once at compile time
or inside every call. This module asks each runtime what it made of the model:

- ONNX Runtime: the graph after its optimizations, as the session options every edgeopt
  ORT session uses produce it (``SessionOptions.optimized_model_filepath``; docs:
  onnxruntime.ai/docs/performance/model-optimizations/graph-optimizations.html). A
  Conv / Gemm / MatMul-like node is one layer and its op type is the kernel: QLinearConv,
  QGemm, QLinearMatMul, ConvInteger, MatMulInteger (int8 kernels); MatMulNBits (n-bit
  weights unpacked inside the kernel); a float Conv / FusedConv / Gemm / MatMul whose
  weight is the output of a DequantizeLinear is reported as ``DequantizeLinear+<op>``
  (weights dequantized at every inference, multiplied in float).
- OpenVINO: the compiled model's runtime model (``CompiledModel.get_runtime_model()``,
  the execution graph of the CPU plugin), each op's rt_info ``layerType`` (Convolution,
  FullyConnected, ...), ``runtimePrecision`` (u8 / i8: an int8 kernel; f32) and
  ``primitiveType`` (the implementation, e.g. ``brgconv_avx512_I8``): the check OpenVINO's
  low-precision documentation gives for "does this layer run in int8"
  (docs.openvino.ai, "Low Precision Transformations", runtime model / performance counters).
"""

from __future__ import annotations

import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import onnx

from ..backends.ort import _PROVIDERS, _inference_session, session_options
from ..backends.registry import require
from ..errors import EdgeoptError

if TYPE_CHECKING:
    from ..model import Model

BACKENDS = ("ort", "openvino")
"""Backends whose executed kernels :func:`runtime_kernels` can read."""

# ORT op types (any domain) that hold a layer's MACs; the integer ones compute in int8.
_ORT_INT8 = {"QLinearConv", "QGemm", "QLinearMatMul", "ConvInteger", "MatMulInteger",
             "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}
_ORT_FLOAT = {"Conv", "FusedConv", "NhwcConv", "NhwcFusedConv", "ConvTranspose", "Gemm", "FusedGemm",
              "MatMul", "FusedMatMul"}
_ORT_LAYERS = _ORT_INT8 | _ORT_FLOAT | {"MatMulNBits"}
# OpenVINO CPU plugin layer types that hold a layer's MACs.
_OV_LAYERS = {"Convolution", "GroupConvolution", "Deconvolution", "FullyConnected", "MatMul", "BinaryConvolution"}
_FLOAT_NAMES = {onnx.TensorProto.FLOAT: "f32", onnx.TensorProto.FLOAT16: "f16",
                onnx.TensorProto.BFLOAT16: "bf16", onnx.TensorProto.DOUBLE: "f64"}


@dataclass(frozen=True)
class LayerKernel:
    """One convolution or matrix layer as a runtime executes it.

    Attributes:
        layer: the node name (ORT's optimized graph) or layer name (OpenVINO's runtime
            model); fused layers carry the runtime's name, not the ONNX file's.
        kernel: ORT: the op type ("QLinearConv", "MatMulNBits", "DequantizeLinear+FusedConv",
            "Conv"); OpenVINO: the layer type ("Convolution", "FullyConnected").
        precision: what the kernel computes in. ORT: "int8" for the integer kernels,
            "int<bits>" for MatMulNBits, else the float type of the weight ("f32", "f16";
            "?" when the optimized graph does not say). OpenVINO: its runtimePrecision as
            reported ("u8", "i8", "f32", ...).
        primitive: OpenVINO's primitiveType ("brgconv_avx512_I8"); ORT: the node's domain
            ("com.microsoft", "com.microsoft.nchwc", "" for the standard one).
    """

    layer: str
    kernel: str
    precision: str
    primitive: str = ""

    @property
    def label(self) -> str:
        """Kernel and precision, e.g. "QLinearConv int8", "Convolution u8"."""
        return f"{self.kernel} {self.precision}"


def runtime_kernels(model: "Model", backend: str, *, threads: int = 1) -> list[LayerKernel]:
    """The convolution and matrix layers of ``model`` as ``backend`` executes them at batch 1.

    Args:
        model: any Model the backend can load.
        backend: "ort" or "openvino" (:data:`BACKENDS`).
        threads: intra-op threads of the session (graph rewrites do not depend on it; the
            OpenVINO primitive may).

    Returns:
        one :class:`LayerKernel` per layer, in the runtime's execution order.

    Raises:
        EdgeoptError: a backend other than :data:`BACKENDS`.
        BackendUnavailable: the runtime is not installed or refuses the model (e.g.
            OpenVINO 2026.4 and INT2 weights), with its reason on one line.
    """
    if backend not in BACKENDS:
        raise EdgeoptError(f"executed kernels are read from {' and '.join(BACKENDS)} only, not {backend!r}: "
                           f"pass --backend {','.join(BACKENDS)}")
    require(backend)
    if backend == "ort":
        return _ort_layers(_ort_optimized_graph(model, threads))
    session = require("openvino").prepare(model, threads=threads)
    try:
        return _openvino_layers(session.runtime_model())
    finally:
        session.close()


def kernel_counts(kernels: Sequence[LayerKernel]) -> dict[str, int]:
    """{:attr:`LayerKernel.label`: number of layers}, most frequent first (ties in order of
    first appearance)."""
    return dict(Counter(k.label for k in kernels).most_common())


def kernel_summary(kernels: Sequence[LayerKernel]) -> str:
    """One line, e.g. "16 QLinearConv int8, 9 DequantizeLinear+Conv f32, 1 QGemm int8"."""
    return ", ".join(f"{n} {label}" for label, n in kernel_counts(kernels).items()) or "no conv/gemm layers"


def _ort_optimized_graph(model: "Model", threads: int) -> onnx.ModelProto:
    """The graph ONNX Runtime runs: the session edgeopt's ORT backend makes, with its
    optimized graph written to a temp file."""
    with tempfile.TemporaryDirectory(prefix="edgeopt-kernels-") as tmp:
        opts = session_options(threads, model)
        path = Path(tmp) / "optimized.onnx"
        opts.optimized_model_filepath = str(path)
        _inference_session(model, opts, _PROVIDERS)
        return onnx.load(str(path))


def _ort_layers(graph_proto: onnx.ModelProto) -> list[LayerKernel]:
    """The layers of an ORT optimized graph (see the module docstring)."""
    graph = graph_proto.graph
    producer = {out: node for node in graph.node for out in node.output}
    init_types = {t.name: t.data_type for t in graph.initializer}
    layers = []
    for node in graph.node:
        if node.op_type not in _ORT_LAYERS:
            continue
        kernel, precision = node.op_type, "int8"
        if node.op_type == "MatMulNBits":
            bits = next((a.i for a in node.attribute if a.name == "bits"), 4)
            precision = f"int{bits}"
        elif node.op_type in _ORT_FLOAT:
            weight = node.input[1] if len(node.input) > 1 else ""
            source = producer.get(weight)
            elem = init_types.get(weight)
            if source is not None and source.op_type == "DequantizeLinear":
                kernel = f"DequantizeLinear+{node.op_type}"
                elem = init_types.get(source.input[1]) if len(source.input) > 1 else None  # the scale's type
            precision = _FLOAT_NAMES.get(elem, "?")
        layers.append(LayerKernel(node.name, kernel, precision, node.domain))
    return layers


def _openvino_layers(runtime_model) -> list[LayerKernel]:
    """The layers of an OpenVINO runtime model (``CompiledModel.get_runtime_model()``)."""
    layers = []
    for op in runtime_model.get_ordered_ops():
        info = op.get_rt_info()
        kind = _rt_text(info, "layerType")
        if kind in _OV_LAYERS:
            layers.append(LayerKernel(op.get_friendly_name(), kind, _rt_text(info, "runtimePrecision"),
                                      _rt_text(info, "primitiveType")))
    return layers


def _rt_text(info, key: str) -> str:
    """One rt_info entry as text ("" when absent)."""
    return info[key].astype(str) if key in info else ""
