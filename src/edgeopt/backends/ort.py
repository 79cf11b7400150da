"""ONNX Runtime, CPU execution provider.

Weight-only quantized models (every DequantizeLinear reads an initializer; activations
stay float: ``weights-int4`` / ``weights-int2`` and the like) load with
``session.disable_quant_qdq = 1`` (:data:`DISABLE_QUANT_QDQ`, a key of ORT's
``onnxruntime_session_options_config_keys.h``) when a weight DequantizeLinear feeds
anything but ORT's MatMulNBits fusion. Why: with QDQ handling on, ORT's constant folding
skips DequantizeLinear (it keeps them for its QDQ fusions: ``graph_transformer_utils.cc``
builds ConstantFolding with ``skip_dequantize_linear`` unless the key is set), so a
Conv's INT4 weights are dequantized at every inference and the Conv runs as FusedConv
instead of the NCHWc kernels; with the key set, the DequantizeLinear is folded at load and
the model runs at float32 speed (the weights are float32 in memory, the file stays
small). The key also turns off the DequantizeLinear -> MatMul(NBits) fusion, which is
faster than float32 for (K, N) Gemm/MatMul weights, so a model whose weight
DequantizeLinear all feed that fusion is left as it is. Measured with
:func:`edgeopt.bench.alternating.alternating_p50` (7 interleaved rounds of >= 30 runs, ORT
1.32, p50 ratio to the float32 model on zoo:seednet-digits, 1 and 2 threads, four runs on
a shared 2-core machine): weights-int4 1.48-1.86 without the key, 0.91-1.03 with it;
its Gemm weights alone in int4 (MatMulNBits) 0.94-1.00 without, 1.03-1.04 with.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendUnavailable, EdgeoptError
from .._util.errorline import error_line
from .base import Backend, Session

if TYPE_CHECKING:
    import onnx

    from ..model import Model


# Session config entries (``SessionOptions.add_session_config_entry``) edgeopt sets:
# ORT cannot list the entries of a SessionOptions, so whoever adds one adds it here, and
# :meth:`OrtSession.settings` reads each back by key.
CONFIG_ENTRIES: dict[str, str] = {}
#: ORT's kOrtSessionOptionsDisableQuantQDQ: "1" turns off its QDQ handling (module doc).
DISABLE_QUANT_QDQ = "session.disable_quant_qdq"
_PROVIDERS = ["CPUExecutionProvider"]
# Ops that quantize activations or compute on integers: a model with one is not weight-only.
_ACTIVATION_QUANT = {"QuantizeLinear", "DynamicQuantizeLinear", "QLinearConv", "QLinearMatMul", "QGemm",
                     "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul"}


class OrtSession(Session):
    def __init__(self, sess, threads: int, config_keys: list[str] | None = None) -> None:
        self._sess = sess
        self._outputs = [o.name for o in sess.get_outputs()]
        self._config_keys = sorted(CONFIG_ENTRIES if config_keys is None else config_keys)
        self.backend = "ort"
        self.threads = threads

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(self._outputs, feeds)

    def settings(self) -> dict[str, Any]:
        """The session's options read back from ONNX Runtime.

        Returns:
            {"graph_optimization_level", "execution_mode" (enum names, e.g.
            "ORT_ENABLE_ALL", "ORT_SEQUENTIAL"), "intra_op_num_threads",
            "inter_op_num_threads" (ints), "providers" (list), "config_entries"
            ({key: value} of the entries edgeopt set)}.
        """
        opts = self._sess.get_session_options()
        return {
            "graph_optimization_level": opts.graph_optimization_level.name,
            "execution_mode": opts.execution_mode.name,
            "intra_op_num_threads": opts.intra_op_num_threads,
            "inter_op_num_threads": opts.inter_op_num_threads,
            "providers": list(self._sess.get_providers()),
            "config_entries": {k: opts.get_session_config_entry(k) for k in self._config_keys},
        }


def config_entries(model: "Model | None" = None) -> dict[str, str]:
    """The session config entries for ``model``: :data:`CONFIG_ENTRIES`, plus
    ``session.disable_quant_qdq = 1`` when :func:`folds_weight_dequantize` says so."""
    entries = dict(CONFIG_ENTRIES)
    if model is not None and folds_weight_dequantize(model.proto):
        entries[DISABLE_QUANT_QDQ] = "1"
    return entries


def folds_weight_dequantize(proto: "onnx.ModelProto") -> bool:
    """Whether ORT should fold ``proto``'s weight dequantization at load (module doc).

    True when the model is weight-only quantized (at least one DequantizeLinear, each
    reading an initializer; no QuantizeLinear, dynamic quantization or integer op) and
    some weight DequantizeLinear output feeds an op other than the second input of a
    MatMul or of a Gemm with transB=0 (the (K, N) weights ORT fuses into MatMulNBits).
    Only the main graph is read.
    """
    nodes = proto.graph.node
    dequant = [n for n in nodes if n.op_type == "DequantizeLinear"]
    if not dequant or any(n.op_type in _ACTIVATION_QUANT for n in nodes):
        return False
    initializers = {t.name for t in proto.graph.initializer}
    if any(n.input[0] not in initializers for n in dequant):
        return False
    weights = {n.output[0] for n in dequant}
    return any(x in weights and not _matmul_nbits_operand(n, i) for n in nodes for i, x in enumerate(n.input))


def _matmul_nbits_operand(node: "onnx.NodeProto", index: int) -> bool:
    if index != 1 or node.op_type not in ("MatMul", "Gemm"):
        return False
    return not any(a.name == "transB" and a.i for a in node.attribute)


def session_options(threads: int, model: "Model | None" = None):
    """The ``onnxruntime.SessionOptions`` every ORT session of edgeopt uses: ``threads``
    intra-op threads, one inter-op thread, sequential execution, all graph optimizations,
    warnings off, and :func:`config_entries` (``model``'s, when given). Anything that
    times ORT layers (the roofline) must time this session."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    for key, value in config_entries(model).items():
        opts.add_session_config_entry(key, value)
    return opts


def options_from_settings(settings: dict[str, Any]):
    """``onnxruntime.SessionOptions`` holding exactly ``settings`` (an
    :meth:`OrtSession.settings` record, e.g. from deploy.json).

    Raises:
        EdgeoptError: a setting is missing or not a name ONNX Runtime knows.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    try:
        opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, settings["graph_optimization_level"])
        opts.execution_mode = getattr(ort.ExecutionMode, settings["execution_mode"])
        opts.intra_op_num_threads = int(settings["intra_op_num_threads"])
        opts.inter_op_num_threads = int(settings["inter_op_num_threads"])
        for key, value in settings.get("config_entries", {}).items():
            opts.add_session_config_entry(key, str(value))
    except (KeyError, AttributeError, TypeError, ValueError) as e:
        raise EdgeoptError(f"ort settings are incomplete or unknown to onnxruntime {ort.__version__} "
                           f"({type(e).__name__}: {e}): write them as OrtSession.settings() does") from e
    opts.log_severity_level = 3
    return opts


class OrtBackend(Backend):
    """ONNX Runtime on the CPU execution provider, all graph optimizations enabled; weight
    dequantization folded at load for weight-only models (module doc).

    Threads: ``intra_op_num_threads`` = threads, sequential execution (one inter-op
    thread), so the thread count is exactly what was asked for.
    """

    name = "ort"
    module = "onnxruntime"
    distribution = "onnxruntime"
    install = "pip install 'edgeopt[ort]'"

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        keys = list(config_entries(model))
        return OrtSession(_inference_session(model, session_options(threads, model), _PROVIDERS), threads, keys)

    def _prepare_with(self, model: "Model", settings: dict[str, Any]) -> Session:
        opts = options_from_settings(settings)
        sess = _inference_session(model, opts, list(settings.get("providers") or _PROVIDERS))
        return OrtSession(sess, opts.intra_op_num_threads, list(settings.get("config_entries", {})))


def _inference_session(model: "Model", opts, providers: list[str]):
    """An ``onnxruntime.InferenceSession`` of ``model``.

    Raises:
        BackendUnavailable: ONNX Runtime cannot load the model.
    """
    import onnxruntime as ort

    try:
        return ort.InferenceSession(model.serialized(), sess_options=opts, providers=providers)
    except Exception as e:
        raise BackendUnavailable(
            f"onnxruntime cannot load {model.name}: {error_line(e, limit=200, with_type=False)}"
        ) from e
