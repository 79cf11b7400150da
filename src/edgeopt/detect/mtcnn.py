"""MTCNN face detection: the three-stage cascade, each network run by an edgeopt backend.

Zhang, Zhang, Li & Qiao, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE SPL 2016 (arXiv:1604.02878), section II.A; the details the
paper leaves out (pyramid rounding, NMS thresholds and modes, where boxes are squared)
follow the authors' MATLAB code (``detect_face.m`` of kpzhang93/MTCNN_face_detection_
alignment) and facenet-pytorch's port (``facenet_pytorch/models/utils/detect_face.py``).

1. Image pyramid: scales ``12 / min_face * factor**k`` while the short side stays >= 12
   pixels (a face of ``min_face`` pixels becomes P-Net's 12x12 window). P-Net runs on
   each level and proposes a box for every cell of its probability map above
   ``thresholds[0]`` (cell 12, stride 2); NMS (IoU 0.5) per level, NMS (IoU 0.7) across
   levels, box regression with P-Net's offsets, boxes made square.
2. R-Net scores 24x24 crops of those boxes: keep score > ``thresholds[1]``, NMS (0.7),
   regression, square.
3. O-Net scores 48x48 crops: keep score > ``thresholds[2]``; 5 landmarks; regression;
   NMS (0.7) in "min" mode (overlap / smaller area), which also drops a small box lying
   inside a larger face box.

Coordinates are continuous pixels: pixel (i, j) covers [j, j+1) x [i, i+1), so a box
(x1, y1, x2, y2) has width ``x2 - x1``. The reference code counts inclusive integer
pixels (width ``x2 - x1 + 1``, 1-based) and floors the stage-1 boxes; the two agree to
about one pixel. Crops reaching outside the image are zero-padded (black), as in the
authors' code, so a crop keeps the square shape the networks were trained on
(facenet-pytorch clips them instead, which stretches faces at the border).

Each network is a :class:`~edgeopt.model.Model` prepared on a backend, so any backend
runs the cascade and an optimised network (int8, pruned, ...) can replace the original.
P-Net is fully convolutional; a Model has fixed non-batch dims, so the detector re-fixes
P-Net's input at each pyramid size it meets (:func:`pnet_at_size`) and keeps one
session per size. R-Net and O-Net take their crops in batches padded to a few sizes
(1, 2, 4, 8, then multiples of 8), so a backend that compiles per input shape
(OpenVINO) compiles a handful of batch sizes instead of one per crop count.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from .. import zoo
from ..backends import registry
from ..errors import EdgeoptError, ShapeError
from .._util.images import as_rgb_uint8
from .._util.onnxgraph import copy_proto
from ..model import Model
from ..shapes import fix_input_shapes
from ..zoo.mtcnn_io import INPUT_SIDE, NETS, OUTPUT_NAMES

if TYPE_CHECKING:
    from ..backends.base import Session

_CELL, _STRIDE = INPUT_SIDE["pnet"], 2  # P-Net's window and the stride of its output map


class DetectorConfigError(EdgeoptError):
    """A detector setting is out of range."""


@dataclass(frozen=True)
class MtcnnConfig:
    """Settings of the cascade (defaults: the paper's / facenet-pytorch's).

    Attributes:
        min_face: smallest face side to find, in pixels (>= 1). Smaller values add
            pyramid levels (slower); below 12 the image is upsampled.
        factor: ratio between pyramid levels, in (0, 1); 0.709 ~ 1/sqrt(2) halves the
            area per level.
        thresholds: face probability each stage needs (P-Net, R-Net, O-Net), in [0, 1].
        nms_level: IoU above which P-Net boxes of one pyramid level are suppressed.
        nms_pnet: IoU for P-Net boxes across levels.
        nms_rnet: IoU for R-Net boxes.
        nms_onet: overlap / smaller area ("min" mode) for the final O-Net boxes.
        max_batch: most crops per R-Net / O-Net run (a multiple of 8).
    """

    min_face: float = 20.0
    factor: float = 0.709
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    nms_level: float = 0.5
    nms_pnet: float = 0.7
    nms_rnet: float = 0.7
    nms_onet: float = 0.7
    max_batch: int = 128

    def __post_init__(self) -> None:
        if not self.min_face >= 1:
            raise DetectorConfigError(f"min_face {self.min_face} is below 1 pixel: use e.g. 20")
        if not 0 < self.factor < 1:
            raise DetectorConfigError(f"factor {self.factor} is not in (0, 1): use e.g. 0.709")
        if len(self.thresholds) != 3 or not all(0 <= t <= 1 for t in self.thresholds):
            raise DetectorConfigError(
                f"thresholds {self.thresholds} must be 3 probabilities in [0, 1]: use e.g. (0.6, 0.7, 0.7)")
        for name in ("nms_level", "nms_pnet", "nms_rnet", "nms_onet"):
            if not 0 < getattr(self, name) <= 1:
                raise DetectorConfigError(f"{name} {getattr(self, name)} is not in (0, 1]: use e.g. 0.7")
        if self.max_batch < 8 or self.max_batch % 8:
            raise DetectorConfigError(f"max_batch {self.max_batch} is not a multiple of 8: use e.g. 128")


@dataclass(frozen=True)
class Faces:
    """Faces found in one image, best score first.

    Attributes:
        boxes: (N, 4) float32 x1, y1, x2, y2 in pixels of the input image (may reach
            outside it for faces cut by the border).
        scores: (N,) float32 O-Net face probability.
        landmarks: (N, 5, 2) float32 (x, y) pixels of the left eye, right eye, nose,
            left and right mouth corners (left/right as seen in the image).
    """

    boxes: np.ndarray
    scores: np.ndarray
    landmarks: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)


def _empty() -> Faces:
    return Faces(np.zeros((0, 4), np.float32), np.zeros((0,), np.float32), np.zeros((0, 5, 2), np.float32))


# -- geometry (numpy) -----------------------------------------------------------------------
def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression (Neubeck & Van Gool, "Efficient Non-Maximum
    Suppression", ICPR 2006): keep the best box, drop those overlapping it by more than
    ``threshold``, repeat with the rest.

    Args:
        boxes: (K, 4) x1, y1, x2, y2 in continuous pixels (area = width * height).
        scores: (K,) higher is better; ties keep the earlier box.
        threshold: overlap above which a box is suppressed.
        mode: "union" (intersection over union) or "min" (intersection over the smaller
            area, MTCNN's last stage).

    Returns:
        int64 indices of the kept boxes, best score first.

    Raises:
        DetectorConfigError: unknown mode, or boxes/scores of mismatched shapes.
    """
    if mode not in ("union", "min"):
        raise DetectorConfigError(f"NMS mode {mode!r} is unknown: use 'union' or 'min'")
    boxes = np.asarray(boxes, np.float64)
    scores = np.asarray(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4 or scores.shape != (len(boxes),):
        raise DetectorConfigError(
            f"NMS needs boxes (K, 4) and scores (K,), got {boxes.shape} and {scores.shape}: pass matching arrays")
    x1, y1, x2, y2 = boxes.T
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0)
        ih = np.maximum(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if mode == "min" else area[i] + area[rest] - inter
        # A degenerate (zero-area) box overlaps nothing rather than dividing by zero.
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales of the image pyramid: ``12 / min_face * factor**k`` while the scaled short
    side is >= 12 pixels (paper section II.A; the authors' ``detect_face.m``)."""
    scale = 12.0 / min_face
    short = min(height, width) * scale
    scales = []
    while short >= _CELL:
        scales.append(scale)
        scale *= factor
        short *= factor
    return scales


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) moved by offsets (K, 4) given as fractions of their width/height."""
    wh = np.concatenate([boxes[:, 2:4] - boxes[:, 0:2]] * 2, axis=1)
    return boxes + offsets * wh


def _square(boxes: np.ndarray) -> np.ndarray:
    """Boxes (K, 4) grown to squares of side max(w, h) about the same centre."""
    wh = boxes[:, 2:4] - boxes[:, 0:2]
    side = wh.max(axis=1, keepdims=True)
    top_left = boxes[:, 0:2] + (wh - side) / 2
    return np.concatenate([top_left, top_left + side], axis=1)


def _proposals(prob: np.ndarray, reg: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net cells above ``threshold`` as (K, 9) rows: box (4, original pixels), score,
    offsets (4). prob (h, w) face probability, reg (4, h, w)."""
    ys, xs = np.nonzero(prob >= threshold)
    corner = np.stack([xs, ys], axis=1).astype(np.float64) * _STRIDE
    boxes = np.concatenate([corner, corner + _CELL], axis=1) / scale
    return np.concatenate([boxes, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)


# -- images ------------------------------------------------------------------------------
def _as_rgb(image: np.ndarray | Image.Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a PIL image or an (H, W), (H, W, 1|3|4) uint8 array.

    Raises:
        DataError: another dtype or shape.
    """
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"))
    return as_rgb_uint8(image, what="image")


def _normalize(rgb: np.ndarray) -> np.ndarray:
    """(..., H, W, 3) uint8 -> (..., 3, H, W) float32 ``(x - 127.5) * 0.0078125``."""
    x = (rgb.astype(np.float32) - np.float32(127.5)) * np.float32(0.0078125)
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def _crops(rgb: np.ndarray, boxes: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """Square crops of ``boxes`` resized to ``side`` (bilinear), zero outside the image.

    Returns:
        ((M, 3, side, side) float32 normalised, (K,) bool: which boxes gave a crop; a box
        that does not overlap the image gives none).
    """
    h, w = rgb.shape[:2]
    ib = np.round(boxes).astype(np.int64)
    ib[:, 2:] = np.maximum(ib[:, 2:], ib[:, :2] + 1)
    valid = (ib[:, 0] < w) & (ib[:, 1] < h) & (ib[:, 2] > 0) & (ib[:, 3] > 0)
    out = np.empty((int(valid.sum()), side, side, 3), np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(ib[valid]):
        patch = np.zeros((y2 - y1, x2 - x1, 3), np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)
        patch[sy1 - y1:sy2 - y1, sx1 - x1:sx2 - x1] = rgb[sy1:sy2, sx1:sx2]
        out[k] = np.asarray(Image.fromarray(patch).resize((side, side), Image.Resampling.BILINEAR))
    return _normalize(out), valid


# -- models ------------------------------------------------------------------------------
def pnet_at_size(pnet: Model, height: int, width: int) -> Model:
    """``pnet`` with its input fixed at (N, C, height, width).

    P-Net is fully convolutional, but a Model fixes every non-batch dim: each pyramid
    level needs its own. Works on any P-Net graph without size-dependent constants:
    the exported original and versions made by passes (tested: int8-static).

    Raises:
        ShapeError: the graph does not accept that size (e.g. below 12x12).
    """
    proto = copy_proto(pnet.proto)
    inits = {i.name for i in proto.graph.initializer}
    first = next(i for i in proto.graph.input if i.name not in inits)
    # Free the spatial dims (input and outputs) so fix_input_shapes accepts the new size
    # and shape inference recomputes the rest.
    for vi, names in [(first, ("H", "W"))] + [(o, ("h", "w")) for o in proto.graph.output]:
        dims = vi.type.tensor_type.shape.dim
        for d, name in zip(list(dims)[2:4], names):
            d.Clear()
            d.dim_param = f"{vi.name}_{name}"
    channels = pnet.inputs[0].shape[1]
    proto, specs = fix_input_shapes(proto, {first.name: (1, channels, height, width)})
    preprocess = dataclasses.replace(pnet.preprocess, size=(height, width)) if pnet.preprocess else None
    return dataclasses.replace(pnet, proto=proto, inputs=specs, preprocess=preprocess)


def _check_models(pnet: Model, rnet: Model, onet: Model) -> None:
    """Raise ShapeError unless the three Models have the inputs and outputs MTCNN needs."""
    for net, model in zip(NETS, (pnet, rnet, onet)):
        if len(model.inputs) != 1:
            raise ShapeError(f"the MTCNN {net} {model.name} has {len(model.inputs)} inputs, not 1: "
                             f"pass a model exported from zoo:mtcnn-{net}")
        shape = model.inputs[0].shape
        side = None if net == "pnet" else INPUT_SIDE[net]  # P-Net is fully convolutional: any H, W
        want = (3, side, side) if side else None
        if len(shape) != 4 or shape[1] != 3 or (want and tuple(shape[1:]) != want):
            raise ShapeError(
                f"the MTCNN {net} {model.name} takes {'x'.join(map(str, shape))}, not "
                f"Nx3x{side or 'H'}x{side or 'W'}: pass a model derived from zoo:mtcnn-{net}")
        if len(model.output_names) != len(OUTPUT_NAMES[net]):
            raise ShapeError(
                f"the MTCNN {net} {model.name} has outputs {model.output_names}, not "
                f"{list(OUTPUT_NAMES[net])}: pass a model derived from zoo:mtcnn-{net}")


def _outputs(net: str, model: Model, outs: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Outputs by role; by name when the graph kept edgeopt's names, else in graph order."""
    names = model.output_names
    if set(OUTPUT_NAMES[net]) <= set(names):
        return dict(zip(names, outs))
    return dict(zip(OUTPUT_NAMES[net], outs))


def _bucket(n: int) -> int:
    """Batch size that ``n`` crops are padded to: 1, 2, 4, 8, then multiples of 8.

    A backend that compiles per input shape (OpenVINO) then compiles at most 19 batch
    sizes up to 128, and padding wastes at most 7 crops (R-Net/O-Net crops per image
    vary from 0 to hundreds).
    """
    return 1 << (n - 1).bit_length() if n <= 8 else -(-n // 8) * 8


class MtcnnDetector:
    """MTCNN face detector whose three networks run on an edgeopt backend.

    Args:
        pnet, rnet, onet: the networks as Models: ``edgeopt.load_model("zoo:mtcnn-pnet")``
            etc., or versions of them made by edgeopt passes (same inputs and outputs).
        backend: registry name of the backend ("ort", "openvino", "tvm", ...).
        threads: intra-op threads of every session.
        config: cascade settings (see :class:`MtcnnConfig`).

    Raises:
        ShapeError: a Model does not have the inputs/outputs of its network.
        BackendUnavailable: the backend is unknown, missing or cannot run a network.

    Not thread-safe (sessions are reused and created lazily per P-Net input size).

    Example:
        >>> det = MtcnnDetector.from_zoo(backend="ort", threads=2)
        >>> faces = det.detect(skimage.data.astronaut())   # one face, score ~1.0
    """

    def __init__(self, pnet: Model, rnet: Model, onet: Model, *, backend: str = "ort",
                 threads: int = 2, config: MtcnnConfig = MtcnnConfig()) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise DetectorConfigError(f"threads must be a positive integer, got {threads!r}: use e.g. 2")
        _check_models(pnet, rnet, onet)
        self.models = {"pnet": pnet, "rnet": rnet, "onet": onet}
        self.backend = backend
        self.threads = threads
        self.config = config
        self._backend = registry.require(backend)
        self._sessions: dict[object, Session] = {
            net: self._backend.prepare(self.models[net], threads=threads) for net in ("rnet", "onet")}

    @classmethod
    def from_zoo(cls, *, backend: str = "ort", threads: int = 2,
                 config: MtcnnConfig = MtcnnConfig()) -> "MtcnnDetector":
        """The detector with facenet-pytorch's pretrained networks (``zoo:mtcnn-*``).

        Raises:
            ModelLoadError: facenet-pytorch is not installed (the message has the
                ``pip install --no-deps`` command).
            BackendUnavailable: see the constructor.
        """
        pnet, rnet, onet = (zoo.load(f"mtcnn-{net}") for net in NETS)
        return cls(pnet, rnet, onet, backend=backend, threads=threads, config=config)

    # -- running the networks -----------------------------------------------------------
    def _pnet(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """P-Net on one (1, 3, h, w) level: (offsets (4, h', w'), face prob (h', w'))."""
        key = ("pnet", *x.shape[2:])
        session = self._sessions.get(key)
        if session is None:
            model = pnet_at_size(self.models["pnet"], *x.shape[2:])
            session = self._sessions[key] = self._backend.prepare(model, threads=self.threads)
        out = _outputs("pnet", self.models["pnet"], session.run({self.models["pnet"].inputs[0].name: x}))
        return out["regression"][0], out["probability"][0, 1]

    def _batched(self, net: str, x: np.ndarray, max_batch: int) -> dict[str, np.ndarray]:
        """R-Net or O-Net on (K, 3, s, s) crops, in chunks padded to :func:`_bucket` sizes."""
        model, session = self.models[net], self._sessions[net]
        parts: list[dict[str, np.ndarray]] = []
        for start in range(0, len(x), max_batch):
            chunk = x[start:start + max_batch]
            n = len(chunk)
            padded = _bucket(n)
            if padded > n:
                chunk = np.concatenate([chunk, np.zeros((padded - n, *chunk.shape[1:]), chunk.dtype)])
            out = _outputs(net, model, session.run({model.inputs[0].name: chunk}))
            parts.append({k: v[:n] for k, v in out.items()})
        return {k: np.concatenate([p[k] for p in parts]) for k in OUTPUT_NAMES[net]}

    # -- the cascade --------------------------------------------------------------------
    def detect(self, image: np.ndarray | Image.Image, *, config: MtcnnConfig | None = None) -> Faces:
        """Find the faces in one image.

        Args:
            image: (H, W) gray or (H, W, 3|4) RGB(A) uint8 array, or a PIL image.
            config: settings for this call (default: the detector's).

        Returns:
            :class:`Faces`, best first; empty when none passes the three stages or the
            image is smaller than ``min_face``.

        Raises:
            DataError: the image is not uint8 gray/RGB.
            BackendUnavailable: the backend cannot run P-Net at a new pyramid size.
        """
        cfg = config or self.config
        rgb = _as_rgb(image)
        boxes = self._stage1(rgb, cfg)
        if len(boxes):
            boxes = self._stage2(rgb, boxes, cfg)
        if not len(boxes):
            return _empty()
        return self._stage3(rgb, boxes, cfg)

    def _stage1(self, rgb: np.ndarray, cfg: MtcnnConfig) -> np.ndarray:
        """P-Net over the pyramid -> (K, 4) square candidate boxes."""
        h, w = rgb.shape[:2]
        pil = Image.fromarray(rgb)
        found = []
        for scale in pyramid_scales(h, w, cfg.min_face, cfg.factor):
            hs, ws = math.ceil(h * scale), math.ceil(w * scale)
            # Area averaging (BOX), as facenet-pytorch's interpolate(mode="area") and the
            # TensorFlow port's cv2.INTER_AREA: no aliasing when shrinking.
            level = np.asarray(pil.resize((ws, hs), Image.Resampling.BOX))
            reg, prob = self._pnet(_normalize(level)[None])
            cand = _proposals(prob, reg, scale, cfg.thresholds[0])
            found.append(cand[nms(cand[:, :4], cand[:, 4], cfg.nms_level)])
        cand = np.concatenate(found) if found else np.zeros((0, 9))
        cand = cand[nms(cand[:, :4], cand[:, 4], cfg.nms_pnet)]
        return _square(_regress(cand[:, :4], cand[:, 5:9]))

    def _stage2(self, rgb: np.ndarray, boxes: np.ndarray, cfg: MtcnnConfig) -> np.ndarray:
        """R-Net on 24x24 crops -> (K', 4) refined square boxes."""
        crops, valid = _crops(rgb, boxes, INPUT_SIDE["rnet"])
        boxes = boxes[valid]
        if not len(boxes):
            return boxes
        out = self._batched("rnet", crops, cfg.max_batch)
        score = out["probability"][:, 1]
        keep = score > cfg.thresholds[1]
        boxes, score, reg = boxes[keep], score[keep], out["regression"][keep]
        pick = nms(boxes, score, cfg.nms_rnet)
        return _square(_regress(boxes[pick], reg[pick]))

    def _stage3(self, rgb: np.ndarray, boxes: np.ndarray, cfg: MtcnnConfig) -> Faces:
        """O-Net on 48x48 crops -> final boxes, scores and landmarks."""
        crops, valid = _crops(rgb, boxes, INPUT_SIDE["onet"])
        boxes = boxes[valid]
        if not len(boxes):
            return _empty()
        out = self._batched("onet", crops, cfg.max_batch)
        score = out["probability"][:, 1]
        keep = score > cfg.thresholds[2]
        boxes, score = boxes[keep], score[keep]
        reg, points = out["regression"][keep], out["landmarks"][keep]
        # Landmarks are fractions of the box O-Net saw (before its own regression).
        size = boxes[:, 2:4] - boxes[:, 0:2]
        marks = np.stack([boxes[:, None, 0] + size[:, None, 0] * points[:, :5],
                          boxes[:, None, 1] + size[:, None, 1] * points[:, 5:]], axis=2)
        boxes = _regress(boxes, reg)
        pick = nms(boxes, score, cfg.nms_onet, mode="min")
        return Faces(boxes[pick].astype(np.float32), score[pick].astype(np.float32),
                     marks[pick].astype(np.float32))

    def close(self) -> None:
        """Release every session."""
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
