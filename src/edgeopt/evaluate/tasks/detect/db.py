"""DB (Differentiable Binarization) text maps -> text boxes: the post-processing.

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
5. Scale to the destination image and clip to it.

No OpenCV, shapely or pyclipper: numpy and ``scipy.ndimage``. The text detector
(:mod:`edgeopt.detect.db`) runs these on its resized images; the evaluator's ``db``
decoder (:class:`DbDecoder`) on a model's maps, in input pixels, with the axis-aligned
bounds of each quad as its box (class 0, score the component's mean probability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np
from scipy import ndimage

from ....errors import DataError, EdgeoptError, ShapeError
from .boxes import Detections
from .decoders import DecodeSettings, Decoder
from .options import flag, number

if TYPE_CHECKING:
    from ....model import Model


@dataclass(frozen=True)
class DbParams:
    """DB post-processing settings (defaults: PaddleOCR's DBPostProcess).

    Attributes:
        thresh: probability above which a map pixel is text, in (0, 1).
        box_thresh: mean probability a component needs to become a box, in [0, 1].
        unclip_ratio: r of the unclip offset ``area * r / perimeter`` (> 0).
        max_candidates: most components examined per image (>= 1), in raster order.
        min_size: smallest short side of a box, in map pixels, before unclipping
            (after it, ``min_size + 2``), >= 0.
        dilation: dilate the binary map with a 2x2 square first (rapidocr does).

    Raises:
        DataError: a setting out of range (see :meth:`check`).
    """

    thresh: float = 0.3
    box_thresh: float = 0.6
    unclip_ratio: float = 1.5
    max_candidates: int = 1000
    min_size: float = 3.0
    dilation: bool = False

    def __post_init__(self) -> None:
        self.check(DataError)

    def check(self, error: type[EdgeoptError]) -> None:
        """Raise ``error`` with a one-line message for the first setting out of range."""
        if not 0 < self.thresh < 1:
            raise error(f"thresh {self.thresh} is not in (0, 1): use e.g. 0.3")
        if not 0 <= self.box_thresh <= 1:
            raise error(f"box_thresh {self.box_thresh} is not in [0, 1]: use e.g. 0.6")
        if not self.unclip_ratio > 0:
            raise error(f"unclip_ratio {self.unclip_ratio} is not positive: use e.g. 1.5")
        if not isinstance(self.max_candidates, int) or self.max_candidates < 1:
            raise error(f"max_candidates {self.max_candidates!r} is not a positive integer: use e.g. 1000")
        if not self.min_size >= 0:
            raise error(f"min_size {self.min_size} is negative: use e.g. 3")


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


# -- post-processing -----------------------------------------------------------------------
def binarize(prob: np.ndarray, params: DbParams) -> np.ndarray:
    """Step 1: the (H, W) bool text mask (dilated by a 2x2 square with ``dilation``)."""
    binary = prob > params.thresh
    if params.dilation:
        binary = ndimage.binary_dilation(binary, structure=np.ones((2, 2), bool))
    return binary


def components(binary: np.ndarray, limit: int) -> tuple[np.ndarray, int]:
    """Step 2: (label image, count) of the 8-connected components (OpenCV's
    findContours, which PaddleOCR uses, is 8-connected), at most ``limit`` of them."""
    labels, n = ndimage.label(binary, structure=np.ones((3, 3), int))
    return labels, min(n, limit)


def _empty() -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((0, 4, 2), np.float32), np.zeros((0,), np.float32)


def db_quads(prob: np.ndarray, image_size: tuple[int, int], params: DbParams = DbParams()
             ) -> tuple[np.ndarray, np.ndarray]:
    """Text quads from a DB probability map (steps 1-5 of the module docstring).

    Args:
        prob: (H, W), (1, H, W) or (1, 1, H, W) float text probability in [0, 1].
        image_size: (height, width) of the destination image in pixels.
        params: thresholds and unclip ratio.

    Returns:
        (quads (M, 4, 2) float32 x, y corners in destination pixels, top-left,
        top-right, bottom-right, bottom-left, clipped to [0, W] x [0, H]; scores (M,)
        float32 mean probability), in raster order of the components.

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
    labels, n = components(binarize(p, params), params.max_candidates)
    if not n:
        return _empty()
    means = np.asarray(ndimage.mean(p, labels, np.arange(1, n + 1)))
    quads, scores = [], []
    scale = np.array([dest_w / w, dest_h / h])
    for k, sl in enumerate(ndimage.find_objects(labels, max_label=n)):
        if sl is None or means[k] < params.box_thresh:
            continue
        pts = _row_extremes(labels[sl] == k + 1)
        pts += [sl[1].start, sl[0].start]
        corners, rw, rh, _ = min_area_rect(pts)
        if min(rw, rh) < params.min_size:
            continue
        corners, rw, rh = unclip_rect(corners, params.unclip_ratio)
        if min(rw, rh) < params.min_size + 2:
            continue
        quad = corners * scale
        quad[:, 0] = np.clip(quad[:, 0], 0, dest_w)
        quad[:, 1] = np.clip(quad[:, 1], 0, dest_h)
        quads.append(quad)
        scores.append(means[k])
    if not quads:
        return _empty()
    return np.asarray(quads, np.float32), np.asarray(scores, np.float32)


def quad_bounds(quads: np.ndarray) -> np.ndarray:
    """(M, 4, 2) quads -> (M, 4) float32 axis-aligned x1, y1, x2, y2 bounds."""
    if not len(quads):
        return np.zeros((0, 4), np.float32)
    return np.concatenate([quads.min(axis=1), quads.max(axis=1)], axis=1).astype(np.float32)


class DbDecoder(Decoder):
    """DB probability maps (N, 1, H, W) -> text boxes in input pixels (module docstring).

    Options: ``output`` (the map's name; default the first output), and the
    :class:`DbParams` fields ``thresh``, ``unclip_ratio``, ``max_candidates``,
    ``min_size``, ``dilation``. ``box_thresh`` is the evaluator's score threshold
    (``score_threshold``, 0.6 for this decoder by default, PaddleOCR's).
    """

    name = "db"
    summary = "DB text probability maps (N, 1, H, W): components -> min-area rectangles, unclipped"
    default_score_threshold = DbParams.box_thresh
    option_names = ("output", "thresh", "unclip_ratio", "max_candidates", "min_size", "dilation")

    def __init__(self, model: "Model", settings: DecodeSettings) -> None:
        super().__init__(model, settings)
        o, d = self.options, DbParams()
        self.params = DbParams(
            thresh=number(o, "thresh", d.thresh, lo=0, hi=1), box_thresh=settings.min_score,
            unclip_ratio=number(o, "unclip_ratio", d.unclip_ratio, lo=0, hi=100),
            max_candidates=number(o, "max_candidates", d.max_candidates, lo=1, hi=1e6, integer=True),
            min_size=number(o, "min_size", d.min_size, lo=0, hi=1e6), dilation=flag(o, "dilation", d.dilation))

    def __call__(self, outputs: Sequence[np.ndarray]) -> list[Detections]:
        maps = self.output(outputs, "output", 0)
        if maps.ndim not in (3, 4) or (maps.ndim == 4 and maps.shape[1] != 1):
            raise DataError(f"the db decoder reads (N, 1, H, W) probability maps, got {maps.shape}: choose another "
                            "decoder= or give output=NAME")
        out = []
        for m in maps:
            quads, scores = db_quads(m, self.settings.input_size, self.params)
            out.append(Detections(quad_bounds(quads), scores, np.zeros(len(scores), np.int64)))
        return out
