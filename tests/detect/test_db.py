"""DB text detection (edgeopt.detect.db): geometry, post-processing, and zoo:ppocr-det on
scikit-image's photos."""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt.detect.db import (
    DbConfig,
    TextDetector,
    db_postprocess,
    min_area_rect,
    resized_size,
    unclip_offset,
    unclip_rect,
)
from edgeopt.detect.mtcnn import DetectorConfigError
from edgeopt.errors import DataError, EdgeoptError, ShapeError

from support import installed

skdata = pytest.importorskip("skimage.data")


needs_model = pytest.mark.skipif(not installed("rapidocr-onnxruntime"),
                                 reason="pip install --no-deps rapidocr-onnxruntime")


# -- geometry ---------------------------------------------------------------------------------
def _rotated_rect_pixels(length: float, width: float, degrees: float, centre=(150.0, 120.0)) -> np.ndarray:
    """(K, 2) x, y pixel centres inside a length x width rectangle rotated by ``degrees``."""
    ys, xs = np.mgrid[0:240, 0:300].astype(float)
    t = np.radians(degrees)
    dx, dy = xs - centre[0], ys - centre[1]
    u = dx * np.cos(t) + dy * np.sin(t)
    v = -dx * np.sin(t) + dy * np.cos(t)
    inside = (np.abs(u) <= length / 2) & (np.abs(v) <= width / 2)
    return np.stack([xs[inside], ys[inside]], axis=1)


@pytest.mark.parametrize("degrees", [0.0, 17.0, 30.0, 63.0])
def test_min_area_rect_recovers_a_rotated_rectangle_of_pixels(degrees):
    pts = _rotated_rect_pixels(200, 60, degrees)
    corners, w, h, angle = min_area_rect(pts)
    long_side, short_side = max(w, h), min(w, h)
    # The angle is that of one side, modulo 90 degrees.
    diff = (angle - degrees) % 90
    assert min(diff, 90 - diff) < 1.0
    assert long_side == pytest.approx(200, rel=0.03)
    assert short_side == pytest.approx(60, rel=0.05)
    assert long_side * short_side == pytest.approx(200 * 60, rel=0.06)
    assert np.allclose(corners.mean(axis=0), [150, 120], atol=1.0)
    # Every pixel centre lies inside (or on) the rectangle: project on its two sides.
    ex, ey = corners[1] - corners[0], corners[3] - corners[0]
    a = (pts - corners[0]) @ ex / (ex @ ex)
    b = (pts - corners[0]) @ ey / (ey @ ey)
    assert a.min() > -1e-9 and a.max() < 1 + 1e-9 and b.min() > -1e-9 and b.max() < 1 + 1e-9


def test_min_area_rect_of_an_axis_aligned_block_and_degenerate_sets():
    ys, xs = np.mgrid[5:15, 10:40]
    corners, w, h, angle = min_area_rect(np.stack([xs.ravel(), ys.ravel()], 1))
    assert sorted([w, h]) == pytest.approx([9, 29])
    # top-left, top-right, bottom-right, bottom-left
    np.testing.assert_allclose(corners, [[10, 5], [39, 5], [39, 14], [10, 14]], atol=1e-9)
    _, w, h, _ = min_area_rect(np.array([[3.0, 4.0]]))
    assert (w, h) == (0.0, 0.0)
    _, w, h, _ = min_area_rect(np.array([[0.0, 0.0], [10.0, 0.0], [5.0, 0.0]]))
    assert sorted([w, h]) == pytest.approx([0, 10])
    with pytest.raises(ShapeError):
        min_area_rect(np.zeros((0, 2)))


def test_unclip_on_a_hand_example():
    # 10 x 4 rectangle, r = 1.5: A = 40, L = 28, D = 40 * 1.5 / 28 = 15 / 7.
    assert unclip_offset(10, 4, 1.5) == pytest.approx(15 / 7)
    corners = np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 4.0], [0.0, 4.0]])
    out, w, h = unclip_rect(corners, 1.5)
    d = 15 / 7
    assert (w, h) == pytest.approx((10 + 2 * d, 4 + 2 * d))
    np.testing.assert_allclose(out, [[-d, -d], [10 + d, -d], [10 + d, 4 + d], [-d, 4 + d]], atol=1e-9)
    # A rotated square keeps its centre and grows by D along both of its own axes.
    sq = np.array([[0.0, -1.0], [1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])  # side sqrt(2)
    out, w, h = unclip_rect(sq, 2.0)
    d = unclip_offset(np.sqrt(2), np.sqrt(2), 2.0)  # = sqrt(2) / 2
    assert w == pytest.approx(np.sqrt(2) + 2 * d)
    assert np.linalg.norm(out, axis=1) == pytest.approx(np.full(4, (np.sqrt(2) / 2 + d) * np.sqrt(2)))


def test_resized_size_keeps_the_aspect_in_multiples_of_32():
    assert resized_size(191, 384, 960) == (192, 384)
    assert resized_size(1080, 1920, 960) == (544, 960)
    assert resized_size(10, 10, 960) == (32, 32)


# -- post-processing --------------------------------------------------------------------------
def test_db_postprocess_on_a_synthetic_map():
    prob = np.zeros((1, 1, 64, 128), np.float32)
    prob[0, 0, 20:40, 30:90] = 0.9    # a text line: kept
    prob[0, 0, 45:55, 100:120] = 0.5  # above thresh, below box_thresh 0.6: dropped
    prob[0, 0, 5:7, 5:60] = 0.95      # 2 pixels high: short side 1 < min_size 3, dropped
    texts = db_postprocess(prob, (128, 256))  # the image is twice the map
    assert len(texts) == 1
    assert texts.scores.tolist() == pytest.approx([0.9])
    # Pixel-centre rectangle 59 x 19, D = 59 * 19 * 1.5 / 156.
    d = 59 * 19 * 1.5 / 156
    x1, y1, x2, y2 = 30 - d, 20 - d, 89 + d, 39 + d
    want = 2 * np.array([[x1, y1], [x2, y1], [x2, y2], [x1, y2]])
    assert texts.quads.dtype == np.float32 and texts.quads.shape == (1, 4, 2)
    assert texts.quads[0] == pytest.approx(want, abs=1e-3)
    assert texts.boxes()[0] == pytest.approx([want[0, 0], want[0, 1], want[2, 0], want[2, 1]], abs=1e-3)
    # box_thresh 0.4 keeps the faint block too.
    assert len(db_postprocess(prob, (128, 256), DbConfig(box_thresh=0.4))) == 2
    assert len(db_postprocess(np.zeros((32, 32), np.float32), (32, 32))) == 0
    with pytest.raises(ShapeError):
        db_postprocess(np.zeros((2, 1, 8, 8)), (8, 8))


@pytest.mark.parametrize("kwargs", [
    {"thresh": 0.0}, {"thresh": 1.0}, {"box_thresh": 1.5}, {"unclip_ratio": 0.0},
    {"max_candidates": 0}, {"min_size": -1.0}, {"limit_side": 16},
])
def test_bad_config_raises(kwargs):
    with pytest.raises(DetectorConfigError) as info:
        DbConfig(**kwargs)
    assert isinstance(info.value, EdgeoptError)
    assert "use" in str(info.value)


# -- the network ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def detector():
    import edgeopt

    det = TextDetector(edgeopt.load_model("zoo:ppocr-det"), backend="ort", threads=1)
    yield det
    det.close()


@needs_model
def test_page_text_lines_are_found(detector):
    page = skdata.page()  # 191 x 384 gray scan of a book page: 7 text lines
    texts = detector.detect(page)
    # Measured: 7 quads, one per line (6 prose lines and one code line), scores >= 0.98.
    assert len(texts) >= 6
    assert len(texts) <= 9
    assert texts.scores.min() >= 0.6
    assert texts.quads.shape[1:] == (4, 2)
    xs, ys = texts.quads[..., 0], texts.quads[..., 1]
    assert xs.min() >= 0 and xs.max() <= 384 and ys.min() >= 0 and ys.max() <= 191
    # Lines are wide and short: every quad is wider than tall.
    wh = texts.boxes()[:, 2:] - texts.boxes()[:, :2]
    assert (wh[:, 0] > 2 * wh[:, 1]).all()
    assert set(detector.last_ms) == {"preprocess", "inference", "postprocess"}
    assert all(v > 0 for v in detector.last_ms.values())
    # At the model's fixed 640 x 640 input (aspect not kept) the same 7 lines are found.
    assert len(detector.detect(page, config=DbConfig(limit_side=None))) >= 6


@needs_model
def test_photos_without_text_give_few_boxes(detector):
    # Measured: astronaut 0 quads, camera 0.
    assert len(detector.detect(skdata.astronaut())) <= 2
    assert len(detector.detect(skdata.camera())) <= 2


@needs_model
def test_detector_rejects_bad_input(detector):
    import edgeopt

    with pytest.raises(DataError):
        detector.detect(np.zeros((32, 32, 3), np.float32))
    with pytest.raises(DetectorConfigError):
        TextDetector(edgeopt.load_model("zoo:ppocr-det"), threads=0)
