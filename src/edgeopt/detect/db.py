"""Text detection with a DB (Differentiable Binarization) network, e.g. ``zoo:ppocr-det``.

Liao, Wan, Yao, Chen & Bai, "Real-time Scene Text Detection with Differentiable
Binarization", AAAI 2020 (arXiv:1911.08947). The network outputs a text probability map
(N, 1, H, W) at the input's resolution; the post-processing (binarize, connected
components, minimum-area rectangles, unclip, scale to the image) is
:func:`edgeopt.evaluate.tasks.detect.db.db_quads`, whose module docstring gives its steps
and sources (the detect task's evaluator decodes DB maps with it too). This module
resizes images, runs the network and returns :class:`Texts`.

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

from ..backends import registry
from ..errors import ShapeError
from .._util.images import as_rgb_uint8
from ..evaluate.tasks.detect.db import DbParams, db_quads, quad_bounds
# The geometry stays importable from here, where it was written first.
from ..evaluate.tasks.detect.db import min_area_rect, order_quad, unclip_offset, unclip_rect  # noqa: F401
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
class DbConfig(DbParams):
    """DB post-processing and resizing settings (defaults: PaddleOCR's DBPostProcess and
    DetResizeForTest; rapidocr-onnxruntime uses box_thresh 0.5, unclip_ratio 1.6,
    dilation True and limit_side 736 on the short side).

    Attributes:
        thresh, box_thresh, unclip_ratio, max_candidates, min_size, dilation: the
            post-processing's, see :class:`~edgeopt.evaluate.tasks.detect.db.DbParams`.
        limit_side: longest resized side in pixels (>= 32), or None for the Model's
            fixed input size.

    Raises:
        DetectorConfigError: a setting out of range.
    """

    limit_side: int | None = 960

    def __post_init__(self) -> None:
        self.check(DetectorConfigError)
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
        return quad_bounds(self.quads)


def db_postprocess(prob: np.ndarray, image_size: tuple[int, int], config: DbConfig = DbConfig()) -> Texts:
    """Text quads from a DB probability map (:func:`~edgeopt.evaluate.tasks.detect.db.db_quads`).

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
    return Texts(*db_quads(prob, image_size, config))


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
