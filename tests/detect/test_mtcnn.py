"""MTCNN: the networks against their weights, the numpy geometry, and the detector on real faces.

Real data: ``skimage.data.astronaut()`` (one face) and ``skimage.data.lfw_subset()``
(200 gray 25x25 crops: the first 100 are faces from LFW, the last 100 non-faces cut from
the same photos' backgrounds; scikit-image's docstring).
"""

from __future__ import annotations

import numpy as np
import pytest

from edgeopt.detect import (
    DetectorConfigError,
    MtcnnConfig,
    MtcnnDetector,
    nms,
    pnet_at_size,
)
from edgeopt.detect.mtcnn import pyramid_scales
from edgeopt.errors import DataError, ShapeError

from support import installed

skdata = pytest.importorskip("skimage.data")


needs_weights = pytest.mark.skipif(
    not installed("facenet-pytorch"), reason="pip install --no-deps facenet-pytorch==2.6.0")


# -- geometry ---------------------------------------------------------------------------------
def test_nms_union_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 0, 10, 10]], float)
    scores = np.array([0.8, 0.9, 0.5, 0.7])
    # IoU(box1, box0) = 90 / 110 = 0.818; box2 does not overlap.
    assert nms(boxes, scores, 0.7).tolist() == [1, 2]
    assert nms(boxes, scores, 0.85).tolist() == [1, 0, 2]  # box3 == box0: IoU 1
    assert nms(boxes[:0], scores[:0], 0.5).tolist() == []


def test_nms_min_mode_drops_a_box_inside_a_larger_one():
    boxes = np.array([[0, 0, 20, 20], [5, 5, 10, 10]], float)
    scores = np.array([0.9, 0.95])
    # Inside: IoU = 25 / 400 = 0.0625, intersection / smaller area = 1.
    assert nms(boxes, scores, 0.7, "union").tolist() == [1, 0]
    assert nms(boxes, scores, 0.7, "min").tolist() == [1]
    with pytest.raises(DetectorConfigError, match="mode"):
        nms(boxes, scores, 0.7, "max")


def test_pyramid_scales_stop_when_the_short_side_drops_below_12_pixels():
    scales = pyramid_scales(512, 512, 20.0, 0.709)
    assert scales[0] == pytest.approx(0.6)
    assert scales[1] == pytest.approx(0.6 * 0.709)
    # 512 * 0.6 * 0.709**k >= 12  <=>  k <= 9.17
    assert len(scales) == 10
    assert pyramid_scales(10, 500, 20.0, 0.709) == []


def test_config_errors_name_the_setting():
    with pytest.raises(DetectorConfigError, match="factor"):
        MtcnnConfig(factor=1.2)
    with pytest.raises(DetectorConfigError, match="thresholds"):
        MtcnnConfig(thresholds=(0.6, 0.7))
    with pytest.raises(DetectorConfigError, match="max_batch"):
        MtcnnConfig(max_batch=100)


# -- networks ---------------------------------------------------------------------------------
@needs_weights
def test_networks_load_facenet_weights_and_export_to_the_same_numbers(one_torch_thread):
    import onnxruntime as ort
    import torch

    from edgeopt.zoo import mtcnn

    rng = np.random.default_rng(0)
    for net, params, side in (("pnet", 6_632, 30), ("rnet", 100_178, 24), ("onet", 389_040, 48)):
        module = mtcnn.pretrained(net)
        assert sum(p.numel() for p in module.parameters()) == params
        x = rng.uniform(-1, 1, (3, 3, side, side)).astype(np.float32)
        with torch.no_grad():
            want = [t.numpy() for t in module(torch.from_numpy(x))]
        sess = ort.InferenceSession(mtcnn.export_onnx(module, net), providers=["CPUExecutionProvider"])
        got = sess.run(None, {"input": x})
        assert [o.name for o in sess.get_outputs()] == list(mtcnn.OUTPUT_NAMES[net])
        for w, g in zip(want, got):
            np.testing.assert_allclose(g, w, atol=2e-5)
        np.testing.assert_allclose(got[-1].sum(axis=1), 1.0, atol=1e-5)  # softmax over 2 classes


def test_zoo_pnet_takes_any_size_and_rnet_only_24(nets):
    import onnxruntime as ort

    import edgeopt

    pnet = nets[0]
    assert pnet.inputs[0].shape == (1, 3, 288, 384) and pnet.task == "detection"
    assert pnet.preprocess.mean == (127.5,) * 3 and pnet.preprocess.std == (128.0,) * 3
    small = pnet_at_size(pnet, 50, 71)
    assert small.inputs[0].shape == (1, 3, 50, 71)
    sess = ort.InferenceSession(small.serialized(), providers=["CPUExecutionProvider"])
    reg, prob = sess.run(None, {"input": np.zeros((1, 3, 50, 71), np.float32)})
    # h = ceil((H - 2) / 2) - 4
    assert reg.shape == (1, 4, 20, 31) and prob.shape == (1, 2, 20, 31)
    with pytest.raises(ShapeError):
        pnet_at_size(pnet, 8, 8)
    with pytest.raises(ShapeError):
        edgeopt.load_model("zoo:mtcnn-rnet", shape=["1x3x32x32"])


# -- the detector on real faces -------------------------------------------------------------
# Measured with facenet-pytorch 2.6.0's weights, onnxruntime 1.31 (this machine):
# astronaut: face box (177.9, 58.2, 268.2, 173.7), score 0.99998; a second box on the
# suit's collar (145.4, 203.8, 175.0, 241.3) scores 0.856, below 0.9.
ASTRONAUT_BOX = [177.9, 58.2, 268.2, 173.7]
# left eye, right eye, nose, mouth left, mouth right (checked by eye on the image)
ASTRONAUT_MARKS = [[204.4, 100.5], [247.1, 103.0], [225.1, 128.8], [202.1, 139.2], [245.1, 141.6]]
LFW_CONFIG = MtcnnConfig(min_face=40)  # faces fill the 100x100 upscaled crops
# (detection rate on the 100 faces, false-positive rate on the 100 non-faces), measured
FLOAT_RATES = (0.97, 0.00)
INT8_PNET_RATES = (0.96, 0.00)


@pytest.fixture(scope="module")
def nets():
    if not installed("facenet-pytorch"):
        pytest.skip("pip install --no-deps facenet-pytorch==2.6.0")
    import edgeopt

    return tuple(edgeopt.load_model(f"zoo:mtcnn-{net}") for net in ("pnet", "rnet", "onet"))


@pytest.fixture(scope="module")
def detector(nets):
    # One thread: the 2 cores are shared, and a second spinning thread made runs 4x
    # slower whenever the other core was busy.
    det = MtcnnDetector(*nets, backend="ort", threads=1)
    yield det
    det.close()


@pytest.fixture(scope="module")
def lfw():
    """The 200 lfw_subset crops as 100x100 uint8 (bilinear 4x: 25x25 is below MTCNN's
    smallest useful face, and min_face=40 then keeps the pyramid at 3 levels)."""
    from PIL import Image
    from skimage.util import img_as_ubyte

    crops = img_as_ubyte(skdata.lfw_subset())  # float64 in [0, 1]
    assert crops.shape == (200, 25, 25)
    return [np.asarray(Image.fromarray(c).resize((100, 100), Image.Resampling.BILINEAR)) for c in crops]


def _rates(det: MtcnnDetector, images: list[np.ndarray]) -> tuple[float, float]:
    """(share of the 100 faces whose best box covers the crop, IoU >= 0.5 with the whole
    100x100 frame; share of the 100 non-faces with any box). Measured: every face found
    has exactly one box, with IoU 0.52 to 0.82 (median 0.71)."""
    results = [det.detect(im, config=LFW_CONFIG) for im in images]
    frame = [0.0, 0.0, 100.0, 100.0]
    found = [len(r) > 0 and _iou(r.boxes[0], frame) >= 0.5 for r in results[:100]]
    return float(np.mean(found)), float(np.mean([len(r) > 0 for r in results[100:]]))


def _iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_astronaut_has_one_face_with_its_landmarks(detector):
    faces = detector.detect(skdata.astronaut())
    assert faces.boxes.dtype == np.float32 and faces.landmarks.shape == (len(faces), 5, 2)
    assert list(faces.scores) == sorted(faces.scores, reverse=True)
    assert (faces.scores > 0.9).sum() == 1
    assert faces.scores[0] > 0.999
    np.testing.assert_allclose(faces.boxes[0], ASTRONAUT_BOX, atol=2.0)
    np.testing.assert_allclose(faces.landmarks[0], ASTRONAUT_MARKS, atol=2.0)


def test_lfw_faces_are_found_and_backgrounds_are_not(detector, lfw):
    faces, false_pos = _rates(detector, lfw)
    assert faces >= FLOAT_RATES[0] - 0.03
    assert false_pos <= FLOAT_RATES[1] + 0.03


def test_openvino_finds_the_same_faces_as_ort(nets, detector, lfw):
    from edgeopt.backends import registry

    why = registry.get("openvino").available()
    if why:
        pytest.skip(why)
    ov = MtcnnDetector(*nets, backend="openvino", threads=1)
    try:
        cases = [(skdata.astronaut(), None)] + [(image, LFW_CONFIG) for image in lfw[::20]]
        for image, config in cases:
            a, b = detector.detect(image, config=config), ov.detect(image, config=config)
            assert len(a) == len(b)
            np.testing.assert_allclose(b.boxes, a.boxes, atol=0.01)
            np.testing.assert_allclose(b.landmarks, a.landmarks, atol=0.01)
            np.testing.assert_allclose(b.scores, a.scores, atol=1e-4)
    finally:
        ov.close()


def test_an_int8_pnet_from_edgeopt_replaces_the_original(nets, detector, lfw):
    from PIL import Image

    from edgeopt.detect.mtcnn import _normalize
    from edgeopt.passes.quantize import StaticQuantConfig, apply_static

    pnet, rnet, onet = nets
    h, w = pnet.inputs[0].shape[2:]
    photos = [skdata.astronaut(), skdata.chelsea(), skdata.coffee()]
    calibration = np.stack([_normalize(np.asarray(Image.fromarray(p).resize((w, h), Image.Resampling.BOX)))
                            for p in photos])
    int8 = apply_static(pnet, StaticQuantConfig(), calibration=calibration)
    assert "QuantizeLinear" in {n.op_type for n in int8.proto.graph.node}
    det = MtcnnDetector(int8, rnet, onet, backend="ort", threads=1)
    try:
        faces = det.detect(skdata.astronaut())
        assert (faces.scores > 0.9).sum() == 1
        assert _iou(faces.boxes[0], ASTRONAUT_BOX) > 0.97
        found, false_pos = _rates(det, lfw)
        assert found >= INT8_PNET_RATES[0] - 0.03
        assert false_pos <= INT8_PNET_RATES[1] + 0.03
    finally:
        det.close()


def test_models_that_do_not_fit_are_rejected(nets):
    pnet, rnet, onet = nets
    with pytest.raises(ShapeError, match="rnet"):
        MtcnnDetector(pnet, onet, onet)
    with pytest.raises(DetectorConfigError, match="threads"):
        MtcnnDetector(pnet, rnet, onet, threads=0)


def test_bad_images_are_rejected(detector):
    with pytest.raises(DataError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(DataError, match="shape"):
        detector.detect(np.zeros((64, 64, 2), np.uint8))
    assert len(detector.detect(np.zeros((10, 10), np.uint8))) == 0  # smaller than min_face
