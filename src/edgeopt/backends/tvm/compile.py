"""ONNX -> Relax -> LLVM code for this CPU: the target, the frontend and TVM's error text.

Pipeline: ONNX at static input shapes, shape arithmetic folded by onnxslim ->
``tvm.relax.frontend.onnx.from_onnx`` -> ``DecomposeOpsForInference`` -> LLVM code for
this CPU (``tvm.compile``, or MetaSchedule's build in :mod:`.tune`).
Sources: Chen et al., "TVM: An Automated End-to-End Optimizing Compiler for Deep
Learning", OSDI 2018; API of apache-tvm 0.27 (``tvm.compile``).

Target: ``{"kind": "llvm", "mcpu": <LLVM's host CPU name>, "mattr": <every host feature,
+on / -off>}``. Naming the features as well as the CPU keeps the code legal on virtual
machines whose hypervisor hides features the CPU model normally has.

Untuned builds use TVM's default Relax pipeline (no operator fusion): with no schedules,
fusion did not speed the kernels up and tripled compile time (ppocr-det at 160x160: 5-8 s
vs 19-27 s).
"""

from __future__ import annotations

import warnings
from typing import Any

from ..._util.onnxgraph import copy_proto


def host_target(num_cores: int | None = None) -> Any:
    """The LLVM target for this machine's CPU, as a ``tvm.target.Target``.

    Args:
        num_cores: cores the generated code may use; MetaSchedule requires it (it sizes
            parallel loops), plain builds do not need it.

    Returns:
        ``Target({"kind": "llvm", "mcpu": ..., "mattr": [...], "num-cores": ...})``.
    """
    import tvm

    cpu = str(tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName")())
    features = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures")()
    spec: dict[str, Any] = {
        "kind": "llvm",
        "mcpu": cpu,
        "mattr": [("+" if on else "-") + str(name) for name, on in sorted(features.items())],
    }
    if num_cores:
        spec["num-cores"] = int(num_cores)
    return tvm.target.Target(spec)


def reason(e: BaseException, limit: int = 200) -> str:
    """The informative part of a TVM error, on one line: ``"Type: last message line"``.

    Unlike :func:`edgeopt._util.errorline.error_line` (the first line), the last line that
    is not part of a C++ backtrace: TVM puts the message after its backtrace.
    """
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # TVM errors may carry a C++ backtrace ("File ...", "at ...") around the message.
    useful = [ln for ln in lines if not ln.startswith(("File ", "at ", "Traceback", "^"))]
    text = useful[-1] if useful else ""
    return f"{type(e).__name__}: {text}"[:limit] if text else type(e).__name__


def static_proto(proto: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    """A copy of ``proto`` at these static input shapes, shape arithmetic folded away.

    TVM's ONNX frontend cannot Reshape to a shape computed in the graph (zoo:ppocr-cls
    reshapes to Concat(Slice(Shape(x)), const): "Reshape requires the input new shape to
    be Shape"). With every dim static, onnxslim's constant folding turns such
    subgraphs into constants. Only folding runs (no fusion) so the graph TVM sees keeps
    the model's ops; if onnxslim fails, TVM gets the unfolded static-shape graph.
    """
    static = copy_proto(proto)
    for vi in static.graph.input:
        if vi.name in shapes:
            for dim, size in zip(vi.type.tensor_type.shape.dim, shapes[vi.name]):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        import onnxslim

        # slim() rewrites the proto it is given, even when it then fails.
        folded = onnxslim.slim(
            copy_proto(static), skip_optimizations=["graph_fusion", "subexpression_elimination",
                                                   "weight_tying"])
    except Exception:  # noqa: BLE001 - folding is a convenience for TVM's frontend
        folded = None
    return folded if folded is not None else static


def relax_module(proto: Any, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> Any:
    """The ONNX graph as a Relax IRModule at these static input shapes.

    Args:
        proto: the ``onnx.ModelProto`` (not modified).
        shapes: {graph input name: static shape}.
        dtypes: {graph input name: numpy dtype name, e.g. "float32"}.

    Raises:
        whatever TVM's frontend raises for an op it cannot convert (OpNotImplemented, ...);
        the session words the error.
    """
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    proto = static_proto(proto, shapes)
    with warnings.catch_warnings():
        # from_onnx runs onnx.checker and re-emits its complaints as UserWarnings; a model
        # TVM cannot convert fails below with OpNotImplemented, which says more.
        warnings.simplefilter("ignore", UserWarning)
        mod = from_onnx(proto, shape_dict={k: list(v) for k, v in shapes.items()},
                        dtype_dict=dict(dtypes))
    # What TVM's static-shape pipeline does first: inference-mode BatchNorm etc.
    return tvm.transform.Sequential(
        [relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings()]
    )(mod)
