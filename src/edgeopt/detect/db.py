"""Text detection with a DB (Differentiable Binarization) network, e.g. ``zoo:ppocr-det``.

Liao, Wan, Yao, Chen & Bai, "Real-time Scene Text Detection with Differentiable
Binarization", AAAI 2020 (arXiv:1911.08947). The network outputs a text probability map
(N, 1, H, W) at the input's resolution; the post-processing (paper section 3.4, and
PaddleOCR's ``ppocr/postprocess/db_postprocess.py`` ``DBPostProcess`` for the details)
turns it into boxes:

1. Binarize the map at ``thresh`` (0.3).
2. Connected components of the binary map (8-connected, as OpenCV's contours).
3. Per component: score = mean probability over its pixels (PaddleOCR's "slow" mode,
   the exact one); drop it below ``box_thresh``. Box = minimum-area rotated rectangle of
   the component's pixel centres (rotating calipers over the convex hull, as
   ``cv2.minAreaRect``); drop it when its short side is below ``min_size``.
4. Unclip: the shrunk text kernel is grown back by ``D = A * r / L`` (A area, L
   perimeter, r = ``unclip_ratio``; paper eq. 10). PaddleOCR offsets the polygon with
   pyclipper's round joins and takes the min-area rectangle again; for a rectangle that
   is exactly the rectangle with width and height grown by 2D, which is what we do.
5. Scale to the original image and clip to it.

No OpenCV, shapely or pyclipper: numpy and ``scipy.ndimage``.

The image is resized keeping its aspect so its longer side is at most ``limit_side``
(PaddleOCR's ``DetResizeForTest``, limit_type "max", 960), each side rounded to a
multiple of 32 (the network downsamples 32x). A Model fixes its input H, W, so the
detector re-fixes the input per size with :func:`~edgeopt.detect.mtcnn.pnet_at_size`
(any fully convolutional graph) and keeps one session per size; the frames of a stream
share one size, so one session. ``limit_side=None`` uses the Model's own input size
instead (aspect not kept), for graphs or backends that need one fixed shape.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image
from scipy import ndimage

from ..backends import registry
from ..errors import ShapeError
from .._util.images import as_rgb_uint8
from ..model import Model
from ..preprocess import Preprocess
from .mtcnn import DetectorConfigError, pnet_at_size

if TYPE_CHECKING:
    from ..backends.base import Session

# PP-OCRv4 det's training normalisation (PaddleOCR det configs, NormalizeImage), used when
# the Model carries no Preprocess. PaddleOCR applies these to BGR channels as listed.
_DEFAULT_PREPROCESS = Preprocess(size=(640, 640), channels="BGR", mean=(0.485, 0.456, 0.406),
                                 std=(0.229, 0.224, 0.225))


@dataclass(frozen=True)
class DbConfig:
    """DB post-processing and resizing settings (defaults: PaddleOCR's DBPostProcess and
    DetResizeForTest; rapidocr-onnxruntime uses box_thresh 0.5, unclip_ratio 1.6,
    dilation True and limit_side 736 on the short side).

    Attributes:
        thresh: probability above which a map pixel is text, in (0, 1).
        box_thresh: mean probability a component needs to become a box, in [0, 1].
        unclip_ratio: r of the unclip offset ``area * r / perimeter`` (> 0).
        max_candidates: most components examined per image (>= 1), in raster order.
        min_size: smallest short side of a box, in map pixels, before unclipping
            (after it, ``min_size + 2``), >= 0.
        dilation: dilate the binary map with a 2x2 square first (rapidocr does).
        limit_side: longest resized side in pixels (>= 32), or None for the Model's
            fixed input size.
    """

    thresh: float = 0.3
    box_thresh: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    min_size: float = 3.0
    dilation: bool = False
    limit_side: int | None = 960

    def __post_init__(self) -> None:
        if not 0 < self.thresh < 1:
            raise DetectorConfigError(f"thresh {self.thresh} is not in (0, 1): use e.g. 0.3")
        if not 0 <= self.box_thresh <= 1:
            raise DetectorConfigError(f"box_thresh {self.box_thresh} is not in [0, 1]: use e.g. 0.6")
        if not self.unclip_ratio > 0:
            raise DetectorConfigError(f"unclip_ratio {self.unclip_ratio} is not positive: use e.g. 1.5")
        if not isinstance(self.max_candidates, int) or self.max_candidates < 1:
            raise DetectorConfigError(f"max_candidates {self.max_candidates!r} is not a positive integer: "
                                      "use e.g. 1000")
        if not self.min_size >= 0:
            raise DetectorConfigError(f"min_size {self.min_size} is negative: use e.g. 3")
        if self.limit_side is not None and (not isinstance(self.limit_side, int) or self.limit_side < 32):
            raise DetectorConfigError(f"limit_side {self.limit_side!r} is not an integer >= 32: "
                                      "use e.g. 960, or None for the model's input size")


@dataclass(frozen=True)
class Texts:
    """Text regions found in one image, in raster order of their components.

    Attributes:
        quads: (N, 4, 2) float32 (x, y) pixel corners of rotated rectangles, in the
            order top-left, top-right, bottom-right, bottom-left (PaddleOCR's order),
            clipped to [0, W] x [0, H] of the input image.
        scores: (N,) float32 mean text probability of each component.
    """

    quads: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.scores)

    def boxes(self) -> np.ndarray:
        """(N, 4) float32 axis-aligned x1, y1, x2, y2 bounds of the quads (for drawers
        and metrics that take boxes)."""
        if not len(self.quads):
            return np.zeros((0, 4), np.float32)
        return np.concatenate([self.quads.min(axis=1), self.quads.max(axis=1)], axis=1).astype(np.float32)


# -- geometry ------------------------------------------------------------------------------
def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (Andrew's monotone chain) of (K, 2) points, counter-clockwise, without
    collinear points; degenerate sets give 1 or 2 points."""
    pts = np.unique(np.asarray(points, np.float64), axis=0)  # sorted by x, then y
    if len(pts) <= 2:
        return pts

    def half(seq: np.ndarray) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2:
                (ax, ay), (bx, by) = out[-2], out[-1]
                if (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax) > 0:
                    break
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.asarray(lower[:-1] + upper[:-1])


def min_area_rect(points: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """Minimum-area enclosing rectangle of a point set (rotating calipers: one side of the
    optimal rectangle lies on a convex hull edge; Freeman & Shapira, CACM 1975; Toussaint,
    "Solving geometric problems with the rotating calipers", 1983).

    Args:
        points: (K, 2) x, y, K >= 1 (pixel centres in DB).

    Returns:
        (corners (4, 2) float64 in the order of :func:`order_quad`, width, height,
        angle in degrees in [0, 90) of the side measured as width, height across it).
        A degenerate set gives a zero width and/or height.

    Raises:
        ShapeError: points are not a non-empty (K, 2) array.
    """
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or not len(pts):
        raise ShapeError(f"min_area_rect needs (K, 2) points with K >= 1, got {pts.shape}: pass x, y rows")
    hull = _convex_hull(pts)
    if len(hull) == 1:
        return order_quad(np.repeat(hull, 4, axis=0)), 0.0, 0.0, 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    c, s = np.cos(angles), np.sin(angles)
    # Hull points in each candidate frame (u along the edge, v across): (A, H).
    u = hull[None, :, 0] * c[:, None] + hull[None, :, 1] * s[:, None]
    v = -hull[None, :, 0] * s[:, None] + hull[None, :, 1] * c[:, None]
    du, dv = u.max(1) - u.min(1), v.max(1) - v.min(1)
    k = int(np.argmin(du * dv))
    ca, sa = c[k], s[k]
    uu = np.array([u[k].min(), u[k].max(), u[k].max(), u[k].min()])
    vv = np.array([v[k].min(), v[k].min(), v[k].max(), v[k].max()])
    corners = np.stack([uu * ca - vv * sa, uu * sa + vv * ca], axis=1)
    return order_quad(corners), float(du[k]), float(dv[k]), float(np.degrees(angles[k]))


def order_quad(corners: np.ndarray) -> np.ndarray:
    """A rectangle's 4 corners as top-left, top-right, bottom-right, bottom-left (image
    coordinates, y down), by PaddleOCR's ``get_mini_boxes`` rule: the two leftmost corners
    by x give the left side, the upper of them is top-left; same for the right side."""
    p = corners[np.argsort(corners[:, 0], kind="stable")]
    tl, bl = (p[0], p[1]) if p[1, 1] > p[0, 1] else (p[1], p[0])
    tr, br = (p[2], p[3]) if p[3, 1] > p[2, 1] else (p[3], p[2])
    return np.stack([tl, tr, br, bl])


def unclip_offset(width: float, height: float, ratio: float) -> float:
    """DB's unclip distance ``D = A * r / L`` for a width x height rectangle (paper eq. 10:
    A area, L perimeter, r ``ratio``), in the rectangle's units; 0 for a degenerate one."""
    perimeter = 2.0 * (width + height)
    return width * height * ratio / perimeter if perimeter > 0 else 0.0


def unclip_rect(corners: np.ndarray, ratio: float) -> tuple[np.ndarray, float, float]:
    """Rectangle ``corners`` (4, 2), in :func:`order_quad` order, grown by
    :func:`unclip_offset` D on every side (what pyclipper's offset followed by a
    min-area rectangle gives in PaddleOCR).

    Returns:
        (new corners (4, 2) in the same order, new top-side length ``w + 2D``, new
        left-side length ``h + 2D``), about the same centre.
    """
    c = np.asarray(corners, np.float64)
    side_w, side_h = c[1] - c[0], c[3] - c[0]
    w, h = float(np.linalg.norm(side_w)), float(np.linalg.norm(side_h))
    d = unclip_offset(w, h, ratio)
    # Unit axes of the rectangle; a degenerate side takes the normal of the other one.
    if w > 0:
        ex = side_w / w
        ey = side_h / h if h > 0 else np.array([-ex[1], ex[0]])
    elif h > 0:
        ey = side_h / h
        ex = np.array([ey[1], -ey[0]])
    else:
        ex, ey = np.array([1.0, 0.0]), np.array([0.0, 1.0])
    # Corner k sits at (sx * (w/2 + D), sy * (h/2 + D)) about the centre in (ex, ey).
    sx, sy = np.array([-1, 1, 1, -1]), np.array([-1, -1, 1, 1])
    centre = c.mean(axis=0)
    out = centre + (sx * (w / 2 + d))[:, None] * ex + (sy * (h / 2 + d))[:, None] * ey
    return out, w + 2 * d, h + 2 * d


def _row_extremes(mask: np.ndarray) -> np.ndarray:
    """(K, 2) x, y of the first and last True pixel of every row of ``mask``: the convex
    hull of a pixel set is that of its row extremes (far fewer points)."""
    rows = np.flatnonzero(mask.any(axis=1))
    sub = mask[rows]
    first = sub.argmax(axis=1)
    last = sub.shape[1] - 1 - sub[:, ::-1].argmax(axis=1)
    return np.concatenate([np.stack([first, rows], 1), np.stack([last, rows], 1)]).astype(np.float64)


def db_postprocess(prob: np.ndarray, image_size: tuple[int, int], config: DbConfig = DbConfig()) -> Texts:
    """Text quads from a DB probability map (steps 1-5 of the module docstring).

    Args:
        prob: (H, W), (1, H, W) or (1, 1, H, W) float text probability in [0, 1], at
            the resolution of the network input.
        image_size: (height, width) of the original image in pixels.
        config: thresholds and unclip ratio.

    Returns:
        :class:`Texts` in original-image pixels.

    Raises:
        ShapeError: ``prob`` is not one 2-D map, or ``image_size`` is not positive.
    """
    p = np.asarray(prob, np.float32)
    while p.ndim > 2 and p.shape[0] == 1:
        p = p[0]
    if p.ndim != 2 or not p.size:
        raise ShapeError(f"DB map of shape {np.shape(prob)} is not one (1, 1, H, W) map: pass a batch of 1")
    dest_h, dest_w = (int(v) for v in image_size)
    if dest_h <= 0 or dest_w <= 0:
        raise ShapeError(f"image size {image_size} is not positive: pass (height, width)")
    h, w = p.shape
    binary = p > config.thresh
    if config.dilation:
        binary = ndimage.binary_dilation(binary, structure=np.ones((2, 2), bool))
    # 8-connectivity, as OpenCV's findContours that PaddleOCR uses.
    labels, n = ndimage.label(binary, structure=np.ones((3, 3), int))
    n = min(n, config.max_candidates)
    if not n:
        return Texts(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
    ids = np.arange(1, n + 1)
    means = np.asarray(ndimage.mean(p, labels, ids))
    quads, scores = [], []
    scale = np.array([dest_w / w, dest_h / h])
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is None or means[k] < config.box_thresh:
            continue
        pts = _row_extremes(labels[sl] == k + 1)
        pts += [sl[1].start, sl[0].start]
        corners, rw, rh, _ = min_area_rect(pts)
        if min(rw, rh) < config.min_size:
            continue
        corners, rw, rh = unclip_rect(corners, config.unclip_ratio)
        if min(rw, rh) < config.min_size + 2:
            continue
        quad = corners * scale
        quad[:, 0] = np.clip(quad[:, 0], 0, dest_w)
        quad[:, 1] = np.clip(quad[:, 1], 0, dest_h)
        quads.append(quad)
        scores.append(means[k])
    if not quads:
        return Texts(np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32))
    return Texts(np.asarray(quads, np.float32), np.asarray(scores, np.float32))


def resized_size(height: int, width: int, limit_side: int) -> tuple[int, int]:
    """(h, w) the image is resized to: longer side at most ``limit_side``, aspect kept,
    each side rounded to a multiple of 32, at least 32 (PaddleOCR DetResizeForTest)."""
    ratio = min(1.0, limit_side / max(height, width))
    return (max(32, int(round(int(height * ratio) / 32)) * 32),
            max(32, int(round(int(width * ratio) / 32)) * 32))


# -- the detector --------------------------------------------------------------------------
class TextDetector:
    """DB text detector whose network runs on an edgeopt backend.

    Args:
        model: ``edgeopt.load_model("zoo:ppocr-det")`` or a version of it made by edgeopt
            passes: one (N, 3, H, W) input, one (N, 1, H, W) probability output.
        backend: registry name of the backend ("ort", "openvino", ...).
        threads: intra-op threads of each session (>= 1).
        config: see :class:`DbConfig`.

    Raises:
        ShapeError: the model has not one 3-channel NCHW input and one output.
        DetectorConfigError: threads < 1.
        BackendUnavailable: the backend is unknown or not installed.

    Attributes:
        last_ms: {"preprocess", "inference", "postprocess": ms} of the last ``detect``.

    Not thread-safe (a session per input size, made on first use).

    Example:
        >>> det = TextDetector(edgeopt.load_model("zoo:ppocr-det"))
        >>> texts = det.detect(skimage.data.page())   # ~ one quad per text line
    """

    def __init__(self, model: Model, *, backend: str = "ort", threads: int = 1,
                 config: DbConfig = DbConfig()) -> None:
        if not isinstance(threads, int) or threads < 1:
            raise DetectorConfigError(f"threads must be a positive integer, got {threads!r}: use e.g. 1")
        shape = model.inputs[0].shape if len(model.inputs) == 1 else ()
        if len(shape) != 4 or shape[1] != 3 or len(model.output_names) != 1:
            raise ShapeError(f"{model.name} has inputs {[i.shape for i in model.inputs]} and outputs "
                             f"{model.output_names}, not one Nx3xHxW input and one map: pass zoo:ppocr-det "
                             "or a model derived from it")
        self.model, self.backend, self.threads, self.config = model, backend, threads, config
        self._backend = registry.require(backend)
        self._preprocess = model.preprocess or _DEFAULT_PREPROCESS
        self._sessions: dict[tuple[int, int], Session] = {}
        self.last_ms: dict[str, float] = {}

    def _session(self, size: tuple[int, int]) -> "Session":
        session = self._sessions.get(size)
        if session is None:
            model = self.model if size == tuple(self.model.inputs[0].shape[2:]) else pnet_at_size(self.model, *size)
            session = self._sessions[size] = self._backend.prepare(model, threads=self.threads)
        return session

    def input_for(self, image: np.ndarray | Image.Image, config: DbConfig | None = None) -> np.ndarray:
        """The (1, 3, h, w) float32 network input for ``image`` (resized and normalised
        as the Model's Preprocess says, at the size :func:`resized_size` picks)."""
        cfg = config or self.config
        rgb = np.asarray(image.convert("RGB")) if isinstance(image, Image.Image) else as_rgb_uint8(image)
        size = (tuple(self.model.inputs[0].shape[2:]) if cfg.limit_side is None
                else resized_size(*rgb.shape[:2], cfg.limit_side))
        return replace(self._preprocess, size=size, resize_short=None)(rgb)[None]

    def detect(self, image: np.ndarray | Image.Image, *, config: DbConfig | None = None) -> Texts:
        """Find the text regions in one image.

        Args:
            image: (H, W) gray or (H, W, 3|4) RGB(A) uint8 array, or a PIL image.
            config: settings for this call (default: the detector's).

        Returns:
            :class:`Texts` in pixels of ``image``.

        Raises:
            DataError: the image is not uint8 gray/RGB.
            ShapeError: the graph cannot take the resized size (use ``limit_side=None``).
            BackendUnavailable: the backend cannot run the model.
        """
        cfg = config or self.config
        t0 = time.perf_counter()
        h, w = (image.height, image.width) if isinstance(image, Image.Image) else np.asarray(image).shape[:2]
        x = self.input_for(image, cfg)
        session = self._session(tuple(x.shape[2:]))
        t1 = time.perf_counter()
        prob = session.run({self.model.inputs[0].name: x})[0]
        t2 = time.perf_counter()
        texts = db_postprocess(prob[:1], (h, w), cfg)
        # Stage times for the stream pipeline's report (session creation on a new size
        # counts as preprocess).
        self.last_ms = {"preprocess": (t1 - t0) * 1e3, "inference": (t2 - t1) * 1e3,
                        "postprocess": (time.perf_counter() - t2) * 1e3}
        return texts

    def close(self) -> None:
        """Release every session."""
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()
