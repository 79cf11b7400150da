"""Frame detectors: what the pipelines call on each frame (:class:`FrameDetector`), and the
adapters that time MTCNN's and the text detector's stages for the stream's report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from ..detect import MtcnnDetector
    from ..detect.db import TextDetector


@dataclass(frozen=True)
class Detections:
    """Output of a frame detector.

    Attributes:
        boxes: (N, 4) float32 x1, y1, x2, y2 pixels.
        scores: (N,) float32.
        stages_ms: {"preprocess", "inference", "postprocess": ms} for this frame.
        quads: (N, 4, 2) float32 corners of rotated boxes (text), drawn as polygons, or None.
    """

    boxes: np.ndarray
    scores: np.ndarray
    stages_ms: dict[str, float]
    quads: np.ndarray | None = None


class FrameDetector(Protocol):
    """Anything that maps an (H, W, 3) uint8 RGB frame to :class:`Detections`."""

    def __call__(self, image: np.ndarray) -> Detections: ...


class _TimedSession:
    """Session proxy adding the time spent in ``run`` to a shared accumulator (s)."""

    def __init__(self, session, acc: list[float]) -> None:
        self._session, self._acc = session, acc

    def run(self, feeds):
        t = time.perf_counter()
        try:
            return self._session.run(feeds)
        finally:
            self._acc[0] += time.perf_counter() - t

    def close(self) -> None:
        self._session.close()


class _TimedBackend:
    """Backend proxy whose sessions are timed (P-Net sessions are made lazily per size)."""

    def __init__(self, backend, acc: list[float]) -> None:
        self._backend, self._acc = backend, acc

    def prepare(self, model, *, threads: int):
        return _TimedSession(self._backend.prepare(model, threads=threads), self._acc)


class TextFrameDetector:
    """:class:`~edgeopt.detect.db.TextDetector` as a frame detector: boxes are the quads'
    axis-aligned bounds; the quads ride along for drawing; stage times from ``last_ms``."""

    def __init__(self, detector: "TextDetector") -> None:
        self.detector = detector

    def __call__(self, image: np.ndarray) -> Detections:
        texts = self.detector.detect(image)
        return Detections(texts.boxes(), texts.scores, dict(self.detector.last_ms), quads=texts.quads)

    def warmup(self, image: np.ndarray) -> None:
        """Detect once so the session for this frame size exists before timing starts."""
        self.detector.detect(np.zeros_like(image))

    def close(self) -> None:
        self.detector.close()


class MtcnnFrameDetector:
    """:class:`~edgeopt.detect.MtcnnDetector` as a :class:`FrameDetector` with stage times.

    MTCNN interleaves image work (pyramid resizing, crops, NMS) with its three networks,
    so the stages are: preprocess = frame to contiguous RGB; inference = time inside
    backend ``Session.run`` calls (all three nets); postprocess = the rest of
    ``detect`` (pyramid resize, crops, NMS, box regression).

    Wraps the detector's sessions in timing proxies (it uses the detector's private
    ``_backend`` / ``_sessions``: a timing hook in MtcnnDetector would be cleaner).

    Args:
        detector: the detector (this object takes it over: use it from one thread).
    """

    def __init__(self, detector: "MtcnnDetector") -> None:
        self.detector = detector
        self._acc = [0.0]
        detector._backend = _TimedBackend(detector._backend, self._acc)
        detector._sessions = {k: _TimedSession(s, self._acc) for k, s in detector._sessions.items()}

    def __call__(self, image: np.ndarray) -> Detections:
        t0 = time.perf_counter()
        rgb = np.ascontiguousarray(image)
        t1 = time.perf_counter()
        self._acc[0] = 0.0
        faces = self.detector.detect(rgb)
        t2 = time.perf_counter()
        infer = self._acc[0]
        return Detections(faces.boxes, faces.scores, {
            "preprocess": (t1 - t0) * 1e3, "inference": infer * 1e3,
            "postprocess": (t2 - t1 - infer) * 1e3})

    def warmup(self, image: np.ndarray) -> None:
        """Detect once on ``image`` (e.g. a black frame of the stream's size): P-Net
        sessions are made per pyramid size on first use (~0.4 s at 640x480), which would
        otherwise land in the first frame's latency."""
        self(np.zeros_like(image))

    def close(self) -> None:
        self.detector.close()
