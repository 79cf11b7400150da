"""Graph cleanup: constant folding, BatchNorm folding into Conv, fusions, dead-node removal.

Two tools, chosen by :attr:`CleanupConfig.method`:

- ``"onnxslim"`` (default): ``onnxslim.slim(proto, ...)`` iterates constant folding,
  pattern fusion (Conv+BatchNormalization, Conv+Add/Mul, Gemm, Pad+Conv, ...), dead-node
  and common-subexpression elimination until the graph stops changing
  (https://github.com/inisis/OnnxSlim). The output holds standard ONNX ops only.
- ``"ort"``: ONNX Runtime's offline optimizer at ``ORT_ENABLE_BASIC``: constant folding,
  redundant-node elimination, Conv+BatchNormalization/Add/Mul fusion. Only the basic
  level is used because the extended and layout levels emit ORT-specific ops tied to
  the machine that saved them ("Online/Offline Mode" in
  https://onnxruntime.ai/docs/performance/model-optimizations/graph-optimizations.html).

Both keep the input/output names and the symbolic batch dimension (checked by
:func:`~edgeopt.passes.base.finish`).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import onnx

from ..errors import PassError
from .._util.onnxgraph import copy_proto
from .._util.errorline import error_line
from .base import finish

if TYPE_CHECKING:
    from ..model import Model

NAME = "cleanup"
METHODS = ("onnxslim", "ort")


@dataclass(frozen=True)
class CleanupConfig:
    """Settings of the cleanup pass.

    Attributes:
        method: "onnxslim" or "ort" (ONNX Runtime basic-level offline optimizer).
        skip_optimizations: onnxslim steps to skip, from ``constant_folding``,
            ``graph_fusion``, ``dead_node_elimination``, ``subexpression_elimination``,
            ``weight_tying`` (onnxslim only).
        skip_fusion_patterns: onnxslim fusion patterns to skip, e.g. ``FusionConvBN``
            (names in ``onnxslim.core.pattern.registry.DEFAULT_FUSION_PATTERNS``).
    """

    method: str = "onnxslim"
    skip_optimizations: tuple[str, ...] = ()
    skip_fusion_patterns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise PassError(f"cleanup method {self.method!r} is unknown: choose from {', '.join(METHODS)}")
        if self.method != "onnxslim" and (self.skip_optimizations or self.skip_fusion_patterns):
            raise PassError(
                "skip_optimizations/skip_fusion_patterns are onnxslim settings: use method='onnxslim' or drop them"
            )


def apply(model: "Model", config: CleanupConfig = CleanupConfig()) -> "Model":
    """Clean up the graph of ``model``; its outputs stay the same up to float rounding.

    Returns:
        a new Model (``passes`` + "cleanup"); the input Model is not modified.

    Raises:
        PassError: unknown skip names, or the tool fails on this graph.
    """
    if config.method == "onnxslim":
        proto = _onnxslim(model, config)
    else:
        proto = _ort_basic(model)
    return finish(model, proto, NAME)


def _onnxslim(model: "Model", config: CleanupConfig) -> onnx.ModelProto:
    import onnxslim
    from onnxslim.core.optimization import OptimizationSettings
    from onnxslim.core.pattern.registry import DEFAULT_FUSION_PATTERNS

    for given, known, what in ((config.skip_optimizations, list(OptimizationSettings.keys()), "skip_optimizations"),
                               (config.skip_fusion_patterns, list(DEFAULT_FUSION_PATTERNS), "skip_fusion_patterns")):
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise PassError(f"cleanup {what} {unknown} unknown to onnxslim: choose from {', '.join(known)}")
    try:
        # slim() freezes and rewrites the proto it is given: hand it a copy.
        proto = onnxslim.slim(
            copy_proto(model.proto),
            skip_optimizations=list(config.skip_optimizations) or None,
            skip_fusion_patterns=list(config.skip_fusion_patterns) or None,
        )
    except Exception as e:
        raise PassError(
            f"onnxslim cannot clean up {model.name} ({error_line(e)}): use CleanupConfig(method='ort')"
        ) from e
    if proto is None:  # slim() returns None only when its own model check fails
        raise PassError(f"onnxslim changed the outputs of {model.name}: use CleanupConfig(method='ort')")
    return proto


def _ort_basic(model: "Model") -> onnx.ModelProto:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.log_severity_level = 3
    with tempfile.TemporaryDirectory(prefix="edgeopt-cleanup-") as tmp:
        out = Path(tmp) / "optimized.onnx"
        opts.optimized_model_filepath = str(out)
        try:
            ort.InferenceSession(model.serialized(), opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            raise PassError(
                f"onnxruntime cannot optimize {model.name} ({error_line(e)}): use CleanupConfig(method='onnxslim')"
            ) from e
        proto = onnx.load(str(out))
    _drop_unused_opsets(proto)
    return proto


def _drop_unused_opsets(proto: onnx.ModelProto) -> None:
    """Remove opset imports of domains no node uses (ORT's saved model declares every
    domain it knows, e.g. ``com.microsoft.nchwc``, which other tools may reject)."""
    used = {""}
    graphs = [proto.graph, *proto.functions]
    while graphs:
        g = graphs.pop()
        for node in g.node:
            used.add(node.domain)
            for attr in node.attribute:
                graphs.extend([attr.g] if attr.HasField("g") else [])
                graphs.extend(attr.graphs)
    used |= {f.domain for f in proto.functions}
    keep = [o for o in proto.opset_import if o.domain in used or o.domain == "ai.onnx"]
    del proto.opset_import[:]
    proto.opset_import.extend(keep)
