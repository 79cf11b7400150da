"""Frame sources for the real-time pipeline; every frame carries its capture timestamp.

- :class:`SimCamera`: replays a sequence of frames at a fixed rate in real time. Frame
  ``i`` *arrives* at ``t0 + i / fps`` whether or not anyone reads; it waits in a small
  driver queue (default 4 slots, OpenCV's V4L2 default ``DEFAULT_V4L_BUFFERS``,
  ``modules/videoio/src/cap_v4l.cpp``) and when the queue is full the oldest queued frame
  is overwritten and lost. ``buffers=None`` queues every frame (a video file or network
  stream replayed at real time): a slow reader then falls further behind every frame.
- :class:`ImageFolderSource`, :class:`VideoFileSource` (imageio + imageio-ffmpeg) and
  :class:`CameraSource` (OpenCV, V4L2 index): read as fast as asked; the timestamp is
  the moment the frame was decoded / grabbed.

A folder of images (:class:`LazyImages`) behaves as a camera: files PIL cannot read are
skipped with a warning, and every frame comes at the first frame's size (resized when
the files differ), as a camera delivers one resolution and a video file needs one.

Timestamps are ``time.perf_counter()`` seconds, so latency = output time - timestamp.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from ..data.images import image_size, read_image, unreadable_note
from ..errors import EdgeoptError
from .._util.images import as_rgb_uint8

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
V4L2_DEFAULT_BUFFERS = 4
log = logging.getLogger(__name__)


class SourceError(EdgeoptError):
    """A frame source cannot be opened or read."""


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    Attributes:
        index: position in the source (0-based; gaps are frames lost before reading).
        image: (H, W, 3) uint8 RGB.
        t_capture: capture time, ``time.perf_counter()`` seconds.
        pts: the frame's presentation time in its file, s (a video file: index / fps),
            or None when the capture time is the stream's timeline (cameras, simulated
            cameras, image folders).
    """

    index: int
    image: np.ndarray
    t_capture: float
    pts: float | None = None

    @property
    def t_video(self) -> float:
        """Where the frame sits on the output video's timeline, s: ``pts`` when the
        source has one, else ``t_capture`` (so a live session's video lasts as long as
        the session)."""
        return self.t_capture if self.pts is None else self.pts


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB frame (see :func:`edgeopt._util.images.as_rgb_uint8`).

    Raises:
        DataError: another dtype or shape.
    """
    return as_rgb_uint8(image, what="frame")


class Source:
    """Base of all sources: ``read()`` the next frame, ``close()``.

    Attributes:
        fps: nominal frame rate (frames/s), or None when unknown.
        realtime: True when frames arrive on the source's own clock (a camera).
        captured: frames the source produced so far (read or lost).
        lost: frames lost inside the source before anyone read them.
    """

    fps: float | None = None
    realtime: bool = False

    def __init__(self) -> None:
        self.captured = 0
        self.lost = 0

    def read(self, stop: threading.Event | None = None) -> Frame | None:
        """The next frame, or None at the end of the stream (or once ``stop`` is set)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release the device or file (idempotent)."""

    def update_counts(self) -> None:
        """Bring ``captured`` up to date (a camera keeps producing while nobody reads)."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SimCamera(Source):
    """A simulated camera replaying ``frames`` at ``fps`` in real time.

    The camera starts on :meth:`start` (or the first :meth:`read`). Frame ``i`` arrives
    at ``t0 + i / fps``; its timestamp is that arrival time. ``read`` returns the oldest
    queued frame, waiting for the next arrival when the queue is empty.

    Args:
        frames: sequence of (H, W, 3) uint8 frames (indexed lazily, so a generated clip
            need not sit in memory).
        fps: frames per second (> 0).
        buffers: driver queue length (>= 1); when full, the oldest queued frame is
            overwritten and counted in ``lost`` (V4L2 itself drops the incoming frame
            instead, which only changes which of the K queued frames is lost). None:
            unbounded, nothing is lost and a slow reader's backlog grows without end.
        clock, sleep: injectable for tests (seconds).

    Raises:
        SourceError: fps <= 0, buffers < 1 or no frames.
    """

    realtime = True

    def __init__(self, frames: Sequence[np.ndarray], fps: float, *, buffers: int | None = V4L2_DEFAULT_BUFFERS,
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        super().__init__()
        if not fps > 0:
            raise SourceError(f"fps {fps} is not positive: use e.g. 30")
        if buffers is not None and buffers < 1:
            raise SourceError(f"buffers {buffers} is below 1: use e.g. 4, or None for an unbounded queue")
        if len(frames) == 0:
            raise SourceError("the simulated camera got no frames: pass at least one")
        self.frames = frames
        self.fps = float(fps)
        self.buffers = buffers
        self._clock, self._sleep = clock, sleep
        self._t0: float | None = None
        self._next = 0  # oldest frame not yet read or lost

    def start(self) -> None:
        """Start the camera clock now (idempotent)."""
        if self._t0 is None:
            self._t0 = self._clock()

    def update_counts(self) -> None:
        if self._t0 is not None:
            self.captured = self._arrived(self._clock())

    def _arrived(self, now: float) -> int:
        """Frames arrived by ``now`` (frame i arrives at t0 + i / fps)."""
        # The small epsilon keeps a read at exactly t0 + i / fps from missing frame i.
        return min(len(self.frames), math.floor((now - self._t0) * self.fps + 1e-9) + 1)

    def read(self, stop: threading.Event | None = None) -> Frame | None:
        self.start()
        n = len(self.frames)
        while True:
            if self._next >= n or (stop is not None and stop.is_set()):
                self.captured = self._arrived(self._clock())
                return None
            now = self._clock()
            arrived = self._arrived(now)
            self.captured = arrived
            if arrived > self._next:
                break
            # Sleep until the next arrival, at most 50 ms at a time so a stop request is
            # seen quickly.
            self._sleep(min(max(self._t0 + self._next / self.fps - now, 0.0), 0.05))
        oldest = self._next if self.buffers is None else max(self._next, arrived - self.buffers)
        self.lost += oldest - self._next
        self._next = oldest + 1
        return Frame(oldest, as_rgb(self.frames[oldest]), self._t0 + oldest / self.fps)


class _IterSource(Source):
    """A non-realtime source over an iterator of images; timestamp = time of decoding;
    ``pts`` = index / fps when the rate is known (a video file's own timeline)."""

    def __init__(self, images: Iterator[np.ndarray], fps: float | None) -> None:
        super().__init__()
        self._it = images
        self.fps = fps

    def read(self, stop: threading.Event | None = None) -> Frame | None:
        if stop is not None and stop.is_set():
            return None
        try:
            image = next(self._it)
        except StopIteration:
            return None
        pts = self.captured / self.fps if self.fps else None
        frame = Frame(self.captured, as_rgb(image), time.perf_counter(), pts)
        self.captured += 1
        return frame


def list_images(folder: str | Path) -> list[Path]:
    """Image files of ``folder`` in name order (regular files with an image suffix; a
    FIFO or device named like an image is not opened).

    Raises:
        SourceError: not a folder, or no image in it.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder} is not a folder: pass a folder of images")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise SourceError(f"{folder} has no images ({', '.join(IMAGE_SUFFIXES)}): add some or pick another folder")
    return files


class LazyImages(Sequence):
    """Images of a folder as frames: decoded on access, (H, W, 3) uint8 RGB, all of one size.

    Files whose header PIL cannot read (not images, or over its decompression-bomb
    limit) are left out, with one log warning. Every frame is resized (bilinear) to the
    first frame's size when it differs.

    Attributes:
        files: the readable files, in name order.
        size: (height, width) of every frame.

    Raises:
        SourceError: not a folder, or no readable image in it; on access, a file that
            opened but cannot be decoded (truncated).
    """

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        listed = list_images(folder)
        sizes = {f: image_size(f) for f in listed}
        self.files = [f for f in listed if sizes[f] is not None]
        skipped = len(listed) - len(self.files)
        if not self.files:
            raise SourceError(f"no readable image in {self.folder} ({skipped} file(s) skipped: {unreadable_note()}): "
                              f"put frames there or pick another folder")
        if skipped:
            log.warning("%s: skipped %d file(s): %s", self.folder, skipped, unreadable_note())
        self.size: tuple[int, int] = self._decode(0).shape[:2]
        if len({sizes[f] for f in self.files}) > 1:
            log.warning("%s: the images differ in size; every frame is resized to the first one's, %dx%d",
                        self.folder, self.size[1], self.size[0])

    def __len__(self) -> int:
        return len(self.files)

    def _decode(self, i: int) -> np.ndarray:
        image = read_image(self.files[i])
        if image is None:
            raise SourceError(f"frame {self.files[i]} cannot be decoded (truncated or corrupt): remove it "
                              f"from {self.folder}")
        return as_rgb(image)

    def __getitem__(self, i):  # type: ignore[override]
        from PIL import Image

        frame = self._decode(i)
        if frame.shape[:2] == self.size:
            return frame
        return np.asarray(Image.fromarray(frame).resize((self.size[1], self.size[0]), Image.BILINEAR))


class ImageFolderSource(_IterSource):
    """The images of a folder in name order, read as fast as asked.

    For a real-time replay use ``SimCamera(LazyImages(folder), fps)`` (CLI ``sim:DIR@30fps``).

    Raises:
        SourceError: not a folder or no image in it.
    """

    def __init__(self, folder: str | Path, fps: float | None = None) -> None:
        images = LazyImages(folder)
        super().__init__(iter(images), fps)


def _need_imageio_ffmpeg() -> None:
    try:
        import imageio  # noqa: F401
        import imageio_ffmpeg  # noqa: F401
    except ImportError:
        raise SourceError("video files need imageio and imageio-ffmpeg: pip install imageio imageio-ffmpeg") from None


class VideoFileSource(_IterSource):
    """Frames of a video file (any format ffmpeg reads), decoded by imageio-ffmpeg.

    Raises:
        SourceError: imageio-ffmpeg is missing or the file cannot be opened.
    """

    def __init__(self, path: str | Path) -> None:
        _need_imageio_ffmpeg()
        import imageio.v2 as iio

        if not Path(path).is_file():
            raise SourceError(f"video {path} does not exist: pass a video file, camera:0, sim:DIR@30fps or clip@30fps")
        self.path = Path(path)
        try:
            self._reader = iio.get_reader(str(path), format="FFMPEG")
            fps = self._reader.get_meta_data().get("fps")
        except Exception as e:  # imageio raises several types for unreadable files
            raise SourceError(f"cannot open video {path} ({ffmpeg_reason(e)}): pass a file ffmpeg can decode") from None
        super().__init__(iter(self._reader), fps)

    def read(self, stop: threading.Event | None = None) -> Frame | None:
        try:
            return super().read(stop)
        except EdgeoptError:
            raise
        except Exception as e:  # a file that opened but breaks off mid-stream
            raise SourceError(f"cannot decode frame {self.captured} of video {self.path} ({ffmpeg_reason(e)}): "
                              f"pass a file ffmpeg can decode") from None

    def close(self) -> None:
        self._reader.close()


def ffmpeg_reason(e: BaseException) -> str:
    """The line that says why, from an imageio-ffmpeg error: its message carries ffmpeg's
    whole stderr (version banner, build configuration), whose last line is the reason."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return (lines[-1] if lines else type(e).__name__)[:160]


class CameraSource(Source):
    """A camera through OpenCV; timestamp = time the grab returned.

    Args:
        device: a V4L2 index (0 for /dev/video0) or a device path / URL OpenCV opens
            (``/dev/video2``, ``rtsp://...``).

    Raises:
        SourceError: OpenCV is not installed (the message has the pip command) or the
            camera cannot be opened.
    """

    realtime = True

    def __init__(self, device: int | str) -> None:
        super().__init__()
        try:
            import cv2
        except ImportError:
            raise SourceError("camera sources need OpenCV: pip install opencv-python-headless") from None
        self._cv2 = cv2
        self._cap = cv2.VideoCapture(device)
        if not self._cap.isOpened():
            where = f"/dev/video{device}" if isinstance(device, int) else device
            raise SourceError(f"camera {device} cannot be opened: check {where} and its permissions")
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or None

    def read(self, stop: threading.Event | None = None) -> Frame | None:
        if stop is not None and stop.is_set():
            return None
        ok, bgr = self._cap.read()
        t = time.perf_counter()
        if not ok:
            return None
        frame = Frame(self.captured, np.ascontiguousarray(bgr[:, :, ::-1]), t)
        self.captured += 1
        return frame

    def close(self) -> None:
        self._cap.release()
