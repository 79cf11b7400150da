"""An ONNX Runtime session that exposes intermediate tensors as outputs.

Profiling (shapes of every tensor) and the per-layer int8 error (activations of two
models) both need to read tensors inside a graph. Graph optimizations are off, so every
named tensor still exists after the session is built.
"""

from __future__ import annotations

from typing import Any, Sequence

import onnx

from .._util.onnxgraph import copy_proto


def probe_session(proto: onnx.ModelProto, names: Sequence[str]) -> Any:
    """An ``onnxruntime.InferenceSession`` (CPU, one thread, optimizations off) of a copy
    of ``proto`` whose graph outputs also include ``names``.

    The caller's proto is not modified.

    Raises:
        whatever onnxruntime raises for a graph it cannot load (callers word the error).
    """
    import onnxruntime as ort

    probe = copy_proto(proto)
    declared = {o.name for o in probe.graph.output}
    for name in names:
        if name not in declared:
            probe.graph.output.append(onnx.ValueInfoProto(name=name))
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(probe.SerializeToString(), sess_options=opts,
                                providers=["CPUExecutionProvider"])
