"""Which task a model performs, guessed from what it outputs, with the reason.

A task set on the Model (by the zoo entry, or ``--task``) wins, except that a detector is
judged by boxes only when a decoder reads its outputs (else output by output). Otherwise
the outputs' shapes decide: one score vector per sample (N, K) is a classifier; a map of
K >= 2 class scores at the input's resolution (or a fixed fraction of it) is
segmentation; a detection head a decoder reads (YOLO tables over the input's grid points,
SSD boxes + scores, PicoDet level pairs, MTCNN's probability + regression; see
:func:`~edgeopt.evaluate.tasks.detect.heads.recognise`) is detection; anything else is
judged output by output (the ``outputs`` evaluator), which never rejects a faithful
candidate for the wrong reason. The guess is shown by ``edgeopt info`` so a user can
correct it with ``--task``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...analysis.graphview import graph_view
from ...errors import EdgeoptError
from . import canonical, names
from .sequence import METADATA_KEY as CHARSET_KEY
from .detect.heads import recognise

if TYPE_CHECKING:
    from ...model import Model


@dataclass(frozen=True)
class TaskGuess:
    """A task and why it was chosen."""

    task: str
    reason: str


# A segmentation map is at the input's resolution or a small fraction of it; a coarser grid
# of many channels (a YOLO head at 1/32) is not one.
_MAX_SEG_STRIDE = 8


def output_shapes(model: "Model") -> list[tuple[int, ...] | None]:
    """Each output's shape at batch 1 (ONNX shape inference, onnxruntime where it cannot
    tell), None where unknown."""
    try:
        view = graph_view(model, 1)
    except EdgeoptError:
        return [None for _ in model.output_names]
    return [view.shape(name) for name in model.output_names]


def infer_task(model: "Model") -> TaskGuess:
    """The task of ``model`` and the reason (see the module docstring)."""
    declared = canonical_or_none(model.task) if model.task else None
    if declared == "detect":
        return _detector(model)
    if declared:
        return TaskGuess(declared, "set on the model (zoo entry or --task)")
    shapes = output_shapes(model)
    inp = model.inputs[0].shape if model.inputs else ()
    ctc = _ctc_guess(model, shapes)
    if ctc is not None:
        return ctc
    head = recognise(shapes, model.output_names, inp)
    if head is not None:
        return TaskGuess("detect", head.reason)
    if len(shapes) == 1 and shapes[0] is not None and len(shapes[0]) >= 2:
        shape = shapes[0]
        rest = [d for d in shape[1:] if d != 1]
        if len(rest) == 1 and rest[0] >= 2:
            return TaskGuess("classify", f"one output of {rest[0]} scores per sample")
        if len(shape) == 4 and len(inp) == 4 and shape[1] >= 2 and shape[2] > 1 and shape[3] > 1:
            stride_h, stride_w = inp[2] / shape[2], inp[3] / shape[3]
            if stride_h == stride_w and stride_h in (1, 2, 4, 8) and stride_h <= _MAX_SEG_STRIDE:
                return TaskGuess("segment", f"one map of {shape[1]} class scores at 1/{int(stride_h)} of the "
                                            f"input's resolution")
    return TaskGuess("outputs", f"no task recognised from its outputs ({_shown(shapes)}): every output is compared "
                                f"with the original's (pass --task {'|'.join(n for n in names() if n != 'outputs')})")


def _ctc_guess(model: "Model", shapes: list) -> TaskGuess | None:
    """A CTC text recogniser: one (N, T, C) output of per-step scores and a character
    dictionary in the model's metadata with C = its length + 1 or + 2 (the blank, and
    PaddleOCR's space class)."""
    if len(shapes) != 1 or shapes[0] is None or len(shapes[0]) != 3:
        return None
    text = next((p.value for p in model.proto.metadata_props if p.key == CHARSET_KEY), None)
    if not text:
        return None
    chars = text.splitlines()
    steps, classes = shapes[0][1], shapes[0][2]
    if classes not in (len(chars) + 1, len(chars) + 2):
        return None
    return TaskGuess("sequence", f"one output of {steps} steps x {classes} scores and a {len(chars)}-character "
                                 f"dictionary in its metadata (CTC text recognition)")


def _shown(shapes: list[tuple[int, ...] | None]) -> str:
    return ", ".join("?" if s is None else "x".join(map(str, s)) for s in shapes)


def _detector(model: "Model") -> TaskGuess:
    """A model declared a detector: the detect task when a decoder reads its outputs."""
    shapes = output_shapes(model)
    head = recognise(shapes, model.output_names, model.inputs[0].shape if model.inputs else (), maps=True)
    if head is not None:
        return TaskGuess("detect", f"set on the model; {head.reason}")
    return TaskGuess("outputs", f"a detector whose outputs ({_shown(shapes)}) no decoder reads: every output is "
                                "compared with the original's (--task detect with a decoder=module:function "
                                "reads them)")


def canonical_or_none(task: str) -> str | None:
    """The registry name of ``task``, or None when it is not a known task."""
    try:
        return canonical(task)
    except EdgeoptError:
        return None
