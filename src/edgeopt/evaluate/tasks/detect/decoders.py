"""Decoders: a detector's raw graph outputs -> boxes, scores and classes per sample.

A registry by name, like the pass, backend and task registries: ``decoder=NAME`` picks
one (without it, :func:`~edgeopt.evaluate.tasks.detect.heads.recognise` picks by the
outputs' shapes); ``decoder=module:function`` names a user decoder for any other head.

A decoder is built once from the original model (anchors, strides and activations are
read from its graph and input size) and then decodes the original's and every
candidate's outputs the same way. Registered decoders keep every detection scoring at
least ``min_score`` (the evaluator asks for less than its score threshold, see
:mod:`~edgeopt.evaluate.tasks.detect.evaluator`).

A user decoder is a function ``decode(outputs, input_size)``: ``outputs`` the list of
graph outputs, each a float64 (N, ...) array in graph order, ``input_size`` the model
input's (height, width); it returns N items, each (boxes (M, 4) x1, y1, x2, y2 in input
pixels, scores (M,), class ids (M,)), after its own thresholding and NMS.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ....errors import DataError
from .boxes import Detections
from .nms import MAX_DETECTIONS, NMS_IOU

if TYPE_CHECKING:
    from ....model import Model

_REGISTRY = {
    "yolov5": "edgeopt.evaluate.tasks.detect.yolo:YoloV5Decoder",
    "yolov8": "edgeopt.evaluate.tasks.detect.yolo:YoloV8Decoder",
    "ssd": "edgeopt.evaluate.tasks.detect.ssd:SsdDecoder",
    "picodet": "edgeopt.evaluate.tasks.detect.gfl:GflDecoder",
    "db": "edgeopt.evaluate.tasks.detect.db:DbDecoder",
    "mtcnn": "edgeopt.evaluate.tasks.detect.mtcnn:MtcnnDecoder",
}
ALIASES = {"gfl": "picodet"}


@dataclass(frozen=True)
class DecodeSettings:
    """What every registered decoder is told.

    Attributes:
        input_size: (height, width) of the model input in pixels.
        min_score: the lowest score kept (the score threshold), in [0, 1].
        nms_iou: NMS IoU threshold in (0, 1] (see :mod:`.nms`).
        max_detections: most detections per sample (>= 1).
        options: the evaluator's options (decoder-specific keys are read by the decoder).
    """

    input_size: tuple[int, int]
    min_score: float
    nms_iou: float = NMS_IOU
    max_detections: int = MAX_DETECTIONS
    options: Mapping[str, Any] = field(default_factory=dict)


class Decoder(ABC):
    """Decodes the raw outputs of one model's head.

    Args:
        model: the original model (its graph and output names).
        settings: see :class:`DecodeSettings`.

    Raises:
        DataError: the model's outputs are not this head's (the message says what is
            expected and which option fixes it).
    """

    name: str = ""
    summary: str = ""
    # The evaluator's score threshold when the user gives none: a kept detection scores at
    # least this (Ultralytics' predict default; decoders of other families state theirs).
    default_score_threshold: float = 0.25
    # The options this decoder reads (beyond the evaluator's own).
    option_names: tuple[str, ...] = ()

    def __init__(self, model: "Model", settings: DecodeSettings) -> None:
        self.model, self.settings = model, settings
        self.options = dict(settings.options)

    @abstractmethod
    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        """One :class:`Detections` per sample.

        Args:
            outputs: every graph output, float64, each (N, ...), in graph order.
        """

    def output(self, outputs: Sequence[np.ndarray], option: str, default: int) -> np.ndarray:
        """The output named by option ``option`` (default: graph output ``default``)."""
        name = self.options.get(option)
        if name is None:
            return outputs[default]
        if name not in self.model.output_names:
            raise DataError(f"{option} {name!r} is not an output of {self.model.name}: choose one of "
                            f"{', '.join(self.model.output_names)}")
        return outputs[self.model.output_names.index(name)]


def names() -> list[str]:
    """The registered decoder names."""
    return list(_REGISTRY)


class UserDecoder(Decoder):
    """A user function ``module:function`` (see the module docstring); every detection it
    returns counts unless the user sets ``score_threshold``."""

    name = "user"
    default_score_threshold = 0.0

    def __init__(self, model: "Model", settings: DecodeSettings, spec: str) -> None:
        super().__init__(model, settings)
        module, _, attr = spec.partition(":")
        try:
            fn = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as e:
            raise DataError(f"decoder {spec!r} cannot be loaded ({type(e).__name__}: {e}): put the module on "
                            "PYTHONPATH and name an existing function as module:function") from None
        if not callable(fn):
            raise DataError(f"decoder {spec!r} is not a function: name one as module:function")
        self.fn: Callable = fn
        self.name = spec

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        n = len(outputs[0])
        result = list(self.fn(list(outputs), self.settings.input_size))
        if len(result) != n:
            raise DataError(f"decoder {self.name} returned {len(result)} items for {n} samples: return one "
                            "(boxes, scores, classes) per sample")
        out = []
        for i, item in enumerate(result):
            try:
                boxes, scores, classes = item
                det = Detections(np.asarray(boxes, np.float64).reshape(-1, 4), scores, classes)
            except (TypeError, ValueError) as e:
                raise DataError(f"decoder {self.name} sample {i}: {e}: return (boxes (M, 4), scores (M,), "
                                "classes (M,))") from None
            if not len(det.scores) == len(det.classes) == len(det.boxes):
                raise DataError(f"decoder {self.name} sample {i}: {len(det.boxes)} boxes, {len(det.scores)} scores "
                                f"and {len(det.classes)} classes: return as many of each")
            keep = det.scores >= self.settings.min_score
            out.append(Detections(det.boxes[keep], det.scores[keep], det.classes[keep]))
        return out


def decoder_class(spec: str) -> type[Decoder]:
    """The class of decoder ``spec`` (a registered name, or ``module:function``: the user
    decoder), imported on first use.

    Raises:
        DataError: unknown name.
    """
    if ":" in spec:
        return UserDecoder
    name = ALIASES.get(spec, spec)
    if name not in _REGISTRY:
        raise DataError(f"unknown decoder {spec!r}: choose one of {', '.join(_REGISTRY)} or give "
                        "module:function")
    module, _, cls = _REGISTRY[name].partition(":")
    return getattr(importlib.import_module(module), cls)


def make_decoder(spec: str, model: "Model", settings: DecodeSettings) -> Decoder:
    """The decoder ``spec`` (a registered name or ``module:function``) for ``model``.

    Raises:
        DataError: unknown name, a user function that cannot be loaded, or outputs the
            decoder cannot read.
    """
    cls = decoder_class(spec)
    return UserDecoder(model, settings, spec) if cls is UserDecoder else cls(model, settings)
