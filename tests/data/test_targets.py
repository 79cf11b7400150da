"""Ground truth for other tasks, read by form and matched to the samples by name."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt.data.detections import GroundTruth
from edgeopt.data.images import ImageSet
from edgeopt.data.samples import SampleSet
from edgeopt.data.targets import load_targets, with_targets
from edgeopt.errors import DataError
from edgeopt.optimizer.measure import task_labels


@pytest.fixture()
def images() -> ImageSet:
    blank = np.zeros((40, 60, 3), np.uint8)
    return ImageSet(images=[blank, blank, blank], names=["a", "sub/b", "c"], labels=[0, 1, 0])


def test_text_lines_json_values_and_missing_names(images, tmp_path):
    tsv = tmp_path / "rec.txt"
    tsv.write_text("a.png\thello world\nsub/b.png\tsecond line\n\nc.jpg\tx\n", encoding="utf-8")
    assert load_targets(tsv, images) == ["hello world", "second line", "x"]
    js = tmp_path / "points.json"
    js.write_text(json.dumps({"a": [1, 2], "b": [3, 4], "c": "text"}))
    got = load_targets(js, images)
    np.testing.assert_array_equal(got[0], [1.0, 2.0])  # "sub/b" matched on its stem
    assert got[2] == "text"
    js.write_text(json.dumps({"a": 1}))
    with pytest.raises(DataError, match="no ground truth for 2 of 3 samples"):
        load_targets(js, images)
    (tmp_path / "bad.txt").write_text("a no tab here\n")
    with pytest.raises(DataError, match="line 1 has no tab"):
        load_targets(tmp_path / "bad.txt", images)
    with pytest.raises(DataError, match="ground truth not found"):
        load_targets(tmp_path / "nope.json", images)


def test_coco_and_yolo_give_boxes_per_image(images, tmp_path):
    coco = {"images": [{"id": i + 1, "file_name": f"{n}.png", "height": 40, "width": 60}
                       for i, n in enumerate(["a", "sub/b", "c"])],
            "annotations": [{"id": 1, "image_id": 2, "category_id": 1, "bbox": [10, 5, 20, 10],
                             "iscrowd": 0, "area": 200}],
            "categories": [{"id": 1, "name": "text"}]}
    (tmp_path / "coco.json").write_text(json.dumps(coco))
    gt = load_targets(tmp_path / "coco.json", images)
    assert all(isinstance(g, GroundTruth) for g in gt) and [len(g) for g in gt] == [0, 1, 0]
    np.testing.assert_allclose(gt[1].boxes, [[10, 5, 30, 15]])
    yolo = tmp_path / "yolo"
    (yolo / "sub").mkdir(parents=True)
    (yolo / "sub" / "b.txt").write_text("0 0.5 0.5 0.5 0.5\n")
    (yolo / "a.txt").write_text("")
    (yolo / "c.txt").write_text("")
    gt = load_targets(yolo, images)
    np.testing.assert_allclose(gt[1].boxes, [[15, 10, 45, 30]])  # fractions of the 60 x 40 image


def test_targets_reach_the_evaluator_by_task(images):
    with_text = with_targets(images, ["x", "y", "z"])
    assert with_text.labels == [0, 1, 0] and with_text.subset([2, 0]).targets == ["z", "x"]
    np.testing.assert_array_equal(task_labels(with_text, "classify"), [0, 1, 0])
    assert task_labels(with_text, "sequence") == ["x", "y", "z"]
    assert task_labels(images, "detect") is None
    samples = with_targets(SampleSet({"x": np.zeros((2, 3))}), ["p", "q"])
    assert task_labels(samples, "sequence") == ["p", "q"]
