"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendUnavailable, EdgeoptError
from .._util.errorline import error_line
from .base import Backend, Session

if TYPE_CHECKING:
    from ..model import Model


# Session config entries (``SessionOptions.add_session_config_entry``) edgeopt sets:
# ORT cannot list the entries of a SessionOptions, so whoever adds one adds it here, and
# :meth:`OrtSession.settings` reads each back by key.
CONFIG_ENTRIES: dict[str, str] = {}
_PROVIDERS = ["CPUExecutionProvider"]


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


def session_options(threads: int):
    """The ``onnxruntime.SessionOptions`` every ORT session of edgeopt uses: ``threads``
    intra-op threads, one inter-op thread, sequential execution, all graph optimizations,
    warnings off. Anything that times ORT layers (the roofline) must time this session."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.log_severity_level = 3
    for key, value in CONFIG_ENTRIES.items():
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
    """ONNX Runtime on the CPU execution provider, all graph optimizations enabled.

    Threads: ``intra_op_num_threads`` = threads, sequential execution (one inter-op
    thread), so the thread count is exactly what was asked for.
    """

    name = "ort"
    module = "onnxruntime"
    distribution = "onnxruntime"
    install = "pip install 'edgeopt[ort]'"

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        return OrtSession(_inference_session(model, session_options(threads), _PROVIDERS), threads)

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
