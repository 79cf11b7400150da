"""Detection: the candidate's boxes against the original's, and both against ground truth.

Every sample's raw outputs are decoded (:mod:`.decoders`) into boxes, scores and classes,
the same way for the original and the candidate, keeping the detections that score at
least the score threshold, as a deployed pipeline does. The original's are the
reference; the candidate's are judged against them:

- mAP@0.5 and mAP@0.5:0.95 by the COCO evaluation (:mod:`.coco`, pycocotools), the
  original's boxes taken as ground truth and the candidate's ranked by their scores;
- recall, precision and mean IoU of the matched pairs at IoU 0.5 (:mod:`.match`);
- boxes per sample of each.

With ground truth (``labels``: one :class:`~edgeopt.data.detections.GroundTruth` per
sample, mapped into input pixels through the model's preprocessing), the original and the
candidate are both scored against it and the drop is the candidate's mAP@0.5 lost against
the original's. Without, the original agrees with its own boxes (mAP 100) and the drop is
100 - the candidate's mAP@0.5 vs the original's boxes. Either way in points; the default
budget is 1 point. No box on either side is perfect agreement; a candidate finding no box
where the original found some scores 0 (a 100-point drop). When the original finds no box
on any sample mAP is undefined (COCO leaves such classes out): the value is then the % of
samples where the candidate finds none either.

Options: ``decoder`` (a name of :func:`.decoders.names` or ``module:function``; default
recognised from the outputs' shapes, :mod:`.heads`), ``score_threshold`` (default: the
decoder's, e.g. 0.25 for YOLO, 0.5 for PicoDet, 0.6 for DB, 0.7 for MTCNN), ``nms_iou``
(0.5), ``max_detections`` (300 per sample), ``class_agnostic`` (match boxes whatever their
class), and the decoder's own.

The candidate's detections are cut at the same threshold as the original's rather than
ranked down to a low floor as COCO ranks a detector's: with a floor, a candidate whose
scores all fell below the threshold (it finds nothing in deployment) kept its ranking and
scored 99 on zoo:ppocr-det (probabilities halved: 0 boxes at the threshold).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from ....errors import DataError
from ..base import Evaluator, TaskScore, check_outputs
from .boxes import Detections
from .coco import coco_map
from .decoders import DecodeSettings, Decoder, decoder_class, make_decoder, names as decoder_names
from .heads import recognise
from .labels import to_input
from .match import MatchStats, match_all
from .nms import MAX_DETECTIONS, NMS_IOU
from .options import flag, number

if TYPE_CHECKING:
    from ....model import Model

MATCH_IOU = 0.5
_OWN_OPTIONS = ("decoder", "score_threshold", "nms_iou", "max_detections", "class_agnostic")


def input_size(model: "Model") -> tuple[int, int]:
    """(height, width) of the model's first input (NCHW or NHWC).

    Raises:
        DataError: the input is not an image.
    """
    spec = model.inputs[0] if model.inputs else None
    if spec is None or len(spec.shape) != 4:
        raise DataError(f"{model.name} has no (N, C, H, W) image input: the detect task reads boxes in input pixels")
    return (spec.shape[1], spec.shape[2]) if spec.layout == "NHWC" else (spec.shape[2], spec.shape[3])


class DetectEvaluator(Evaluator):
    """mAP@0.5 of the candidate's boxes against the original's (module docstring)."""

    task = "detect"
    default_tolerance = 1.0
    summary = "mAP@0.5 of the boxes vs the original's (vs ground truth with labels); recall, precision, mean IoU"

    def __init__(self, model: "Model", options: Mapping[str, Any] | None = None) -> None:
        super().__init__(model, options)
        self.input_size = input_size(model)
        self.decoder: Decoder | None = None
        if self.options.get("decoder"):
            self._build(str(self.options["decoder"]), {})

    def _build(self, spec: str, guessed: Mapping[str, Any]) -> None:
        """Make the decoder ``spec``, with the options recognition implies under the user's."""
        cls = decoder_class(spec)
        options = {**guessed, **self.options}
        unknown = sorted(set(options) - set(_OWN_OPTIONS) - set(cls.option_names))
        if unknown:
            raise DataError(f"option(s) {', '.join(unknown)} unknown to the detect task with decoder {spec}: use "
                            f"{', '.join(_OWN_OPTIONS + cls.option_names)}")
        self.threshold = number(options, "score_threshold", cls.default_score_threshold, lo=0, hi=1)
        self.max_detections = number(options, "max_detections", MAX_DETECTIONS, lo=1, hi=1e6, integer=True)
        self.class_agnostic = flag(options, "class_agnostic", False)
        settings = DecodeSettings(self.input_size, self.threshold, number(options, "nms_iou", NMS_IOU, lo=0.01, hi=1),
                                  self.max_detections, options)
        self.decoder = make_decoder(spec, self.model, settings)

    def _decoder_for(self, outputs: Sequence[np.ndarray]) -> Decoder:
        """The decoder, recognised from the first outputs' shapes when none was given."""
        if self.decoder is None:
            shapes = [(1, *o.shape[1:]) for o in outputs]
            guess = recognise(shapes, self.model.output_names, (1, 3, *self.input_size), maps=True)
            if guess is None:
                raise DataError(f"no decoder reads outputs {', '.join('x'.join(map(str, s)) for s in shapes)} of "
                                f"{self.model.name}: give decoder=NAME ({', '.join(decoder_names())}) or "
                                "decoder=module:function")
            self._build(guess.decoder, guess.options)
        return self.decoder

    def detections(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        """Each sample's decoded detections at the score threshold (class 0 for all when
        class-agnostic)."""
        dets = self._decoder_for(outputs)(outputs)
        if self.class_agnostic:
            dets = [Detections(d.boxes, d.scores, np.zeros(len(d), np.int64)) for d in dets]
        return dets

    def _map(self, reference: list[Detections], found: list[Detections]) -> dict:
        """mAPs of ``found`` against ``reference``; the no-reference case as in the module
        docstring."""
        maps = coco_map(reference, found, self.max_detections)
        if maps is None:
            empty = 100.0 * float(np.mean([len(k) == 0 for k in found]))
            return {"map50": empty, "map50_95": empty, "note": "no reference box: % of samples without a box"}
        return {"map50": maps[0], "map50_95": maps[1]}

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        ref_found, cand_found = self.detections(ref), self.detections(cand)
        n = len(ref_found)
        agreement: MatchStats = match_all(ref_found, cand_found, MATCH_IOU)
        vs_original = self._map(ref_found, cand_found)
        details: dict[str, Any] = {
            "decoder": self.decoder.name, "score_threshold": self.threshold,
            "map50_vs_original": vs_original["map50"], "map50_95_vs_original": vs_original["map50_95"],
            "recall": agreement.recall, "precision": agreement.precision, "mean_iou": agreement.mean_iou,
            "boxes_per_image_original": agreement.reference / n, "boxes_per_image_candidate": agreement.detected / n,
        }
        if "note" in vs_original:
            details["note"] = vs_original["note"]
        if labels is None:
            value = vs_original["map50"]
            return TaskScore(task=self.task, metric="mAP@0.5 vs the original's boxes", unit="%", value=value,
                             drop=max(0.0, 100.0 - value), drop_unit="points", details=details)
        truth = to_input(labels, n, self.input_size, self.model.preprocess)
        if self.class_agnostic:
            truth = [Detections(t.boxes, t.scores, np.zeros(len(t), np.int64)) for t in truth]
        original, mine = self._map(truth, ref_found), self._map(truth, cand_found)
        to_truth = match_all(truth, cand_found, MATCH_IOU)
        original_to_truth = match_all(truth, ref_found, MATCH_IOU)
        details.update({
            "map50_95": mine["map50_95"], "map50_95_original": original["map50_95"],
            "recall_vs_labels": to_truth.recall, "precision_vs_labels": to_truth.precision,
            "recall_vs_labels_original": original_to_truth.recall,
            "precision_vs_labels_original": original_to_truth.precision,
            "boxes_per_image_labels": sum(len(t) for t in truth) / n,
        })
        return TaskScore(task=self.task, metric="mAP@0.5 vs ground truth", unit="%", value=mine["map50"],
                         drop=max(0.0, original["map50"] - mine["map50"]), drop_unit="points",
                         original=original["map50"], details=details)
