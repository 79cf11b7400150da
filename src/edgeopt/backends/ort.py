"""ONNX Runtime, CPU execution provider."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BackendUnavailable
from .._util.errorline import error_line
from .base import Backend, Session

if TYPE_CHECKING:
    from ..model import Model


class OrtSession(Session):
    def __init__(self, sess, threads: int) -> None:
        self._sess = sess
        self._outputs = [o.name for o in sess.get_outputs()]
        self.backend = "ort"
        self.threads = threads

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self._sess.run(self._outputs, feeds)


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
    return opts


class OrtBackend(Backend):
    """ONNX Runtime on the CPU execution provider, all graph optimizations enabled.

    Threads: ``intra_op_num_threads`` = threads, sequential execution (one inter-op
    thread), so the thread count is exactly what was asked for.
    """

    name = "ort"
    module = "onnxruntime"
    distribution = "onnxruntime"
    install = "pip install onnxruntime"

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        import onnxruntime as ort

        opts = session_options(threads)
        try:
            sess = ort.InferenceSession(
                model.serialized(), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as e:
            raise BackendUnavailable(
                f"onnxruntime cannot load {model.name}: {error_line(e, limit=200, with_type=False)}"
            ) from e
        return OrtSession(sess, threads)
