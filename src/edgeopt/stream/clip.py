"""The test clips: still pictures panned and zoomed like a hand-held camera (deterministic).

``faces`` (for face detectors): four 2-second shots of scikit-image photos repeat:
``astronaut`` zooming in on her face, ``coffee`` panned (no face), ``camera`` (the
cameraman, one face) panned, ``chelsea`` zooming in (a cat, no human face).

``text`` (for text detectors): document pages rendered by
:func:`edgeopt.data.documents.document_page` (title, paragraphs, figure, table) read
from top to bottom, scikit-image's scanned ``page`` and its ``text`` photo.

Frames are generated on access (:class:`TestClip` is a Sequence), so a 20 s clip at
30 fps does not hold 600 frames (550 MB) in memory.

Also :func:`lfw_rates`, the face check on ``skimage.data.lfw_subset()`` used by
``tests/test_mtcnn.py``: 100 faces and 100 non-face crops of LFW photos.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..data.documents import document_page
from ..detect import MtcnnConfig
from ..errors import EdgeoptError
from .sources import as_rgb

SHOT_SECONDS = 2.0
# (picture, zoom at start, zoom at end, pan x start..end, pan y start..end): zoom is the
# crop width as a fraction of the picture's width; pan is the crop centre in [0, 1].
# A picture "page:N" is the rendered document page of seed N, others are
# ``skimage.data`` functions.
CLIPS = {
    "faces": (
        ("astronaut", 1.0, 0.45, (0.5, 0.43), (0.5, 0.25)),
        ("coffee", 0.6, 0.6, (0.3, 0.7), (0.5, 0.5)),
        ("camera", 0.8, 0.7, (0.45, 0.55), (0.45, 0.4)),
        ("chelsea", 0.9, 0.5, (0.5, 0.45), (0.5, 0.4)),
    ),
    "text": (
        ("page:0", 0.8, 0.6, (0.45, 0.35), (0.15, 0.4)),
        ("page", 1.0, 0.75, (0.5, 0.45), (0.5, 0.4)),
        ("page:1", 0.65, 0.65, (0.38, 0.38), (0.2, 0.6)),
        ("text", 1.0, 0.7, (0.5, 0.4), (0.5, 0.5)),
    ),
}


class ClipError(EdgeoptError):
    """The clip settings are out of range."""


@lru_cache(maxsize=None)
def _picture(name: str) -> np.ndarray:
    if name.startswith("page:"):
        return document_page(int(name[5:]))
    from skimage import data

    return as_rgb(getattr(data, name)())


class TestClip(Sequence):
    """``seconds`` x ``fps`` frames of (height, width, 3) uint8 RGB.

    Args:
        seconds: clip length, s (> 0).
        fps: frames per second (> 0).
        size: (width, height) in pixels, default 640x480.
        kind: "faces" or "text" (a key of :data:`CLIPS`).

    Raises:
        ClipError: non-positive seconds, fps or size, or an unknown kind.
    """

    __test__ = False  # not a pytest class

    def __init__(self, seconds: float = 4.0, fps: float = 30.0, size: tuple[int, int] = (640, 480),
                 kind: str = "faces") -> None:
        if not (seconds > 0 and fps > 0 and min(size) > 0):
            raise ClipError(f"clip of {seconds} s at {fps} fps, size {size}: all must be positive, e.g. 4 s at 30")
        if kind not in CLIPS:
            raise ClipError(f"no test clip {kind!r}: use {' or '.join(CLIPS)}")
        self.seconds, self.fps, self.size = float(seconds), float(fps), (int(size[0]), int(size[1]))
        self.kind, self._shots = kind, CLIPS[kind]
        self._n = max(1, round(seconds * fps))

    def __len__(self) -> int:
        return self._n

    def shot(self, i: int) -> str:
        """Name of the picture frame ``i`` shows."""
        return self._shots[int(i / self.fps / SHOT_SECONDS) % len(self._shots)][0]

    def __getitem__(self, i):  # type: ignore[override]
        from PIL import Image

        if not -self._n <= i < self._n:
            raise IndexError(i)
        i %= self._n
        t = i / self.fps
        name, z0, z1, (x0, x1), (y0, y1) = self._shots[int(t / SHOT_SECONDS) % len(self._shots)]
        u = (t % SHOT_SECONDS) / SHOT_SECONDS  # progress through the shot, 0..1
        picture = _picture(name)
        ph, pw = picture.shape[:2]
        w_out, h_out = self.size
        cw = (z0 + (z1 - z0) * u) * pw
        ch = cw * h_out / w_out
        if ch > ph:  # keep the output's aspect ratio inside the picture
            ch, cw = ph, ph * w_out / h_out
        cx = np.clip((x0 + (x1 - x0) * u) * pw, cw / 2, pw - cw / 2)
        cy = np.clip((y0 + (y1 - y0) * u) * ph, ch / 2, ph - ch / 2)
        box = (cx - cw / 2, cy - ch / 2, cx + cw / 2, cy + ch / 2)
        return np.asarray(Image.fromarray(picture).resize((w_out, h_out), Image.Resampling.BILINEAR, box=box))


def lfw_images() -> list[np.ndarray]:
    """The 200 ``lfw_subset`` crops (100 faces, then 100 non-faces) as 100x100 uint8,
    bilinear 4x (25x25 is below MTCNN's smallest useful face), as in tests/test_mtcnn.py."""
    from PIL import Image
    from skimage import data
    from skimage.util import img_as_ubyte

    crops = img_as_ubyte(data.lfw_subset())
    return [np.asarray(Image.fromarray(c).resize((100, 100), Image.Resampling.BILINEAR)) for c in crops]


def lfw_rates(detector) -> tuple[float, float]:
    """(detection rate on the 100 faces, false-positive rate on the 100 non-faces).

    A face counts as found when the best box has IoU >= 0.5 with the whole 100x100
    crop; a non-face is a false positive when any box is found. ``min_face=40`` as in
    tests/test_mtcnn.py (measured there: 0.97 / 0.00 with the original networks).

    Args:
        detector: an :class:`edgeopt.detect.MtcnnDetector`.
    """
    cfg = MtcnnConfig(min_face=40)
    results = [detector.detect(im, config=cfg) for im in lfw_images()]

    def iou(a, b) -> float:
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    frame = (0.0, 0.0, 100.0, 100.0)
    found = [len(r) > 0 and iou(r.boxes[0], frame) >= 0.5 for r in results[:100]]
    return float(np.mean(found)), float(np.mean([len(r) > 0 for r in results[100:]]))
