"""Evaluation data (image folders, demo sets), quality metrics and the prediction runner."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from edgeopt.errors import DataError, ShapeError
from edgeopt.data.images import (
    ORIENTATION_LABELS, ImageSet, demo_orientation_set, load_image_folder, save_image_folder,
)
from edgeopt.evaluate.metrics import QualityReport, compare, cosine_similarity, snr_db
from edgeopt.evaluate.runner import predict
from edgeopt.load import load_model
from edgeopt.preprocess import Preprocess

from support import one_line


# -- image folders -----------------------------------------------------------------------
def test_load_flat_folder_reads_pixels_exactly(tmp_path):
    astro = skdata.astronaut()[:40, :50]
    cam = skdata.camera()[100:130, 200:260]
    Image.fromarray(astro).save(tmp_path / "b.png")
    Image.fromarray(cam).save(tmp_path / "a.bmp")
    (tmp_path / "notes.txt").write_text("not an image")
    s = load_image_folder(tmp_path)
    assert s.names == ["a", "b"] and s.labels is None and s.classes is None
    np.testing.assert_array_equal(s.images[0], cam)  # gray stays HxW
    np.testing.assert_array_equal(s.images[1], astro)


def test_transparent_png_is_shown_on_white(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:4, :, :] = (255, 0, 0, 255)  # opaque red top; transparent black bottom
    Image.fromarray(rgba, "RGBA").save(tmp_path / "t.png")
    img = load_image_folder(tmp_path).images[0]
    assert img.shape == (8, 8, 3)
    assert tuple(img[0, 0]) == (255, 0, 0) and tuple(img[7, 7]) == (255, 255, 255)


def test_16_bit_gray_keeps_its_high_byte(tmp_path):
    cam = skdata.camera()[:32, :32]
    Image.fromarray(cam.astype(np.uint16) * 257).save(tmp_path / "c16.png")  # 0..65535
    np.testing.assert_array_equal(load_image_folder(tmp_path).images[0], cam)


def test_subfolder_labels_follow_model_label_list(tmp_path):
    page = skdata.page()
    for k, angle in enumerate(["0", "90", "180", "270"]):
        (tmp_path / angle).mkdir()
        Image.fromarray(np.rot90(page[:64, :64], -k)).save(tmp_path / angle / f"p{k}.png")
    s = load_image_folder(tmp_path, labels=ORIENTATION_LABELS)
    by_name = dict(zip(s.names, s.labels))
    assert by_name == {"0/p0": 0, "90/p1": 1, "180/p2": 2, "270/p3": 3}
    # Without the model's list, classes are the folder names in natural order, so the
    # indices come out the same here ("90" < "180", unlike a plain string sort).
    s2 = load_image_folder(tmp_path)
    assert s2.classes == ["0", "90", "180", "270"]
    assert dict(zip(s2.names, s2.labels)) == by_name


def test_save_then_load_round_trip(tmp_path):
    demo = demo_orientation_set().subset([0, 1, 2, 3, 100, 101])
    save_image_folder(demo, tmp_path / "out")
    back = load_image_folder(tmp_path / "out", labels=demo.classes)
    assert sorted(zip(back.names, back.labels)) == sorted(
        (f"{demo.classes[y]}/{n}", y) for n, y in zip(demo.names, demo.labels))
    for name, img in zip(back.names, back.images):
        np.testing.assert_array_equal(img, demo.images[demo.names.index(name.split("/")[1])])
    assert not list((tmp_path / "out").rglob("*.tmp"))


def test_bad_folders_raise_one_line_data_errors(tmp_path):
    with pytest.raises(DataError) as e:
        load_image_folder(tmp_path / "missing")
    assert "not found" in one_line(e)
    (tmp_path / "f.png").write_bytes(b"x")
    with pytest.raises(DataError) as e:
        load_image_folder(tmp_path / "f.png")
    assert "not a folder" in one_line(e)
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "broken.png").write_bytes(b"\x89PNG truncated")
    (junk / "readme.txt").write_text("hi")
    with pytest.raises(DataError) as e:
        load_image_folder(junk)
    msg = one_line(e)
    assert "2 file(s) skipped" in msg and ".png" in msg and ".jpg" in msg
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError) as e:
        load_image_folder(empty)
    assert "0 file(s) skipped" in one_line(e)


def test_a_decompression_bomb_is_skipped_with_a_warning(tmp_path, caplog):
    from hostile.test_inputs import bomb_png

    good = np.full((8, 8, 3), 200, np.uint8)
    Image.fromarray(good).save(tmp_path / "a.png")
    bomb_png(tmp_path / "b.png")
    with caplog.at_level("WARNING"):
        s = load_image_folder(tmp_path)
    assert s.names == ["a"] and np.array_equal(s.images[0], good)
    assert "skipped 1 file(s)" in caplog.text and "decompression-bomb limit" in caplog.text
    (tmp_path / "a.png").unlink()
    with pytest.raises(DataError) as e:
        load_image_folder(tmp_path)
    assert "1 file(s) skipped" in one_line(e) and "decompression-bomb limit" in str(e.value)


def test_unknown_class_folder_and_mixed_layout_are_rejected(tmp_path):
    img = skdata.page()[:32, :32]
    (tmp_path / "45").mkdir()
    Image.fromarray(img).save(tmp_path / "45" / "a.png")
    with pytest.raises(DataError) as e:
        load_image_folder(tmp_path, labels=ORIENTATION_LABELS)
    assert "45" in one_line(e)
    Image.fromarray(img).save(tmp_path / "loose.png")
    with pytest.raises(DataError) as e:
        load_image_folder(tmp_path)
    assert "sub-folder" in one_line(e)


def test_imageset_rejects_bad_arrays():
    with pytest.raises(DataError):
        ImageSet(images=[np.zeros((4, 4, 3), np.float32)])
    with pytest.raises(DataError):
        ImageSet(images=[np.zeros((4, 4), np.uint8)], labels=[0, 1])


def test_split_is_disjoint_stratified_and_seeded():
    s = demo_orientation_set()
    a, b = s.split(0.25, seed=3)
    assert len(a) == 33 and len(b) == 99
    assert not set(a.names) & set(b.names)
    # 33 per class * 0.25 = 8.25: every class gets 8 or 9 images.
    assert set(Counter(a.labels).values()) <= {8, 9}
    a2, _ = s.split(0.25, seed=3)
    a3, _ = s.split(0.25, seed=4)
    assert a.names == a2.names and a.names != a3.names
    with pytest.raises(DataError):
        s.split(1.0)


def test_batches_and_tensor_shapes():
    s = demo_orientation_set().subset(range(7))
    pre = Preprocess(size=(32, 48))
    assert [b.shape for b in s.batches(pre, 3)] == [(3, 3, 32, 48)] * 2 + [(1, 3, 32, 48)]
    t = s.tensor(pre)
    assert t.shape == (7, 3, 32, 48) and t.dtype == np.float32


# -- demo sets -----------------------------------------------------------------------------
def test_demo_set_is_deterministic_balanced_and_rotated_consistently():
    a, b = demo_orientation_set(), demo_orientation_set()
    assert a.names == b.names and a.labels == b.labels
    assert all(np.array_equal(x, y) for x, y in zip(a.images, b.images))
    assert 100 <= len(a) <= 200
    assert Counter(a.labels) == {k: len(a) // 4 for k in range(4)}
    assert a.classes == ["0", "90", "180", "270"]
    # Every crop appears at the four rotations: class k is the upright crop turned
    # clockwise by k * 90 degrees, which is what np.rot90(., -k) does.
    for i in range(0, len(a), 4):
        assert a.labels[i:i + 4] == [0, 1, 2, 3]
        for k in range(4):
            np.testing.assert_array_equal(a.images[i + k], np.rot90(a.images[i], -k))


def _crop_origin(name: str) -> tuple[str, int, int, int]:
    source, s, y, x, _ = name.split("-")
    return source, int(s[1:]), int(y[1:]), int(x[1:])


def test_demo_calibration_shares_no_page_pixel_with_evaluation():
    page = np.repeat(skdata.page()[:, :, None], 3, axis=2)
    ev, cal = demo_orientation_set(), demo_orientation_set("calibration")
    assert cal.labels is None and len(cal) >= 64
    eval_cols, cal_cols = set(), set()
    for name, img in zip(ev.names, ev.images):
        source, s, y, x = _crop_origin(name)
        if source == "page" and name.endswith("rot0"):
            np.testing.assert_array_equal(img, page[y:y + s, x:x + s])
            eval_cols.update(range(x, x + s))
    for name, img in zip(cal.names, cal.images):
        if name.startswith("pagecal") and name.endswith("rot0"):
            _, s, y, x = _crop_origin(name)
            np.testing.assert_array_equal(img, page[y:y + s, 288 + x:288 + x + s])
            cal_cols.update(range(288 + x, 288 + x + s))
    assert eval_cols and cal_cols and not eval_cols & cal_cols
    assert {n.split("-")[0] for n in cal.names} >= {"pagecal", "astronaut", "coffee", "rocket"}


# -- the real model on the demo set --------------------------------------------------------
