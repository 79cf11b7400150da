"""Ground-truth readers (edgeopt.data.detections): COCO JSON and YOLO txt folders."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgeopt.data.detections import GroundTruth, read_coco_json, read_yolo_folder
from edgeopt.errors import DataError

from support import one_line


def _coco(tmp_path, doc: dict):
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(doc))
    return path


COCO = {
    "images": [{"id": 7, "file_name": "val/a.jpg", "width": 640, "height": 480},
               {"id": 9, "file_name": "b.png", "width": 100, "height": 50}],
    "annotations": [
        {"id": 1, "image_id": 7, "category_id": 18, "bbox": [10, 20, 30, 40], "iscrowd": 0},
        {"id": 2, "image_id": 7, "category_id": 1, "bbox": [0, 0, 640, 480], "iscrowd": 0},
        {"id": 3, "image_id": 7, "category_id": 1, "bbox": [5, 5, 10, 10], "iscrowd": 1},
    ],
    "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}],
}


def test_coco_json_boxes_in_image_pixels_by_sample_name(tmp_path):
    labels = read_coco_json(_coco(tmp_path, COCO), ["b", "val/a"])
    b, a = labels.per_sample
    assert len(b) == 0 and b.image_size == (50, 100)
    assert a.boxes.tolist() == [[10, 20, 40, 60], [0, 0, 640, 480]]
    assert a.classes.tolist() == [18, 1] and a.image_size == (480, 640)
    assert labels.classes == {1: "person", 18: "dog"} and labels.skipped_crowd == 1
    # Contiguous class ids: sorted category ids 1, 18 -> 0, 1. A bare stem matches too.
    contiguous = read_coco_json(_coco(tmp_path, COCO), ["a"], contiguous=True)
    assert contiguous[0].classes.tolist() == [1, 0] and contiguous.classes == {0: "person", 1: "dog"}


@pytest.mark.parametrize("change, needle", [
    (lambda d: d["annotations"].append({"image_id": 3, "category_id": 1, "bbox": [0, 0, 1, 1]}),
     "names image 3"),
    (lambda d: d["annotations"].append({"image_id": 7, "category_id": 5, "bbox": [0, 0, 1, 1]}),
     "names category 5"),
    (lambda d: d["annotations"].append({"image_id": 7, "category_id": 1, "bbox": [0, 0, 1]}),
     "a 4-number bbox"),
    (lambda d: d.pop("annotations"), "'images' and 'annotations'"),
])
def test_coco_json_errors_name_the_problem(tmp_path, change, needle):
    doc = json.loads(json.dumps(COCO))
    change(doc)
    with pytest.raises(DataError) as e:
        read_coco_json(_coco(tmp_path, doc), ["a"])
    assert needle in one_line(e)


def test_coco_json_missing_file_or_image(tmp_path):
    with pytest.raises(DataError) as e:
        read_coco_json(tmp_path / "nope.json", ["a"])
    assert "not found" in one_line(e)
    with pytest.raises(DataError) as e:
        read_coco_json(_coco(tmp_path, COCO), ["c"])
    assert "image 'c' has no entry" in one_line(e)


def test_yolo_folder_fractions_to_pixels(tmp_path):
    (tmp_path / "a.txt").write_text("0 0.5 0.5 0.25 0.5\n\n3 0.1 0.2 0.3 0.2 0.2 0.4\n")
    (tmp_path / "classes.txt").write_text("cat\ndog\nbird\nfish\n")
    labels = read_yolo_folder(tmp_path, ["a", "b"], [(100, 200), (10, 10)])
    a, b = labels.per_sample
    # 200 x 100 image: centre (100, 50), size 50 x 50; the polygon's bounds (0.1..0.3, 0.2..0.4).
    np.testing.assert_allclose(a.boxes, [[75, 25, 125, 75], [20, 20, 60, 40]])
    assert a.classes.tolist() == [0, 3] and a.image_size == (100, 200)
    assert len(b) == 0  # no label file: no object
    assert labels.classes == {0: "cat", 1: "dog", 2: "bird", 3: "fish"}


@pytest.mark.parametrize("line, needle", [
    ("0 0.5 0.5 0.2", "4 numbers"),
    ("1.5 0.5 0.5 0.2 0.2", "not an integer"),
    ("0 50 50 20 20", "fractions of the image size"),
    ("cat 0.5 0.5 0.2 0.2", "is not numbers"),
])
def test_yolo_folder_bad_lines(tmp_path, line, needle):
    (tmp_path / "a.txt").write_text(line + "\n")
    with pytest.raises(DataError) as e:
        read_yolo_folder(tmp_path, ["a"], [(10, 10)])
    msg = one_line(e)
    assert needle in msg and "a.txt:1" in msg


def test_yolo_folder_without_any_label_file_is_an_error(tmp_path):
    with pytest.raises(DataError) as e:
        read_yolo_folder(tmp_path, ["a", "b"], [(10, 10), (10, 10)])
    assert "no label file" in one_line(e)
    with pytest.raises(DataError):
        read_yolo_folder(tmp_path / "missing", ["a"], [(10, 10)])


def test_ground_truth_checks_its_boxes():
    g = GroundTruth([], [], (4, 5))
    assert g.boxes.shape == (0, 4) and len(g) == 0
    with pytest.raises(DataError):
        GroundTruth([[5, 0, 1, 1]], [0], (4, 5))
    with pytest.raises(DataError):
        GroundTruth([[0, 0, 1, 1]], [0, 1], (4, 5))
