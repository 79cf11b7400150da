"""The real-time pipelines: a latest-frame ring buffer between two threads, and the naive loop.

Ring: a capture thread reads the source and writes every frame into a :class:`RingBuffer`
of N slots that overwrites the oldest; the inference thread (the caller's thread, so
Ctrl-C lands there) always takes the newest frame, skipping the stale ones, then
detects, draws and writes. Latency stays near one detection time however long it runs.

Sequential: read, detect, draw, write in one loop. With a real-time source the next
frame is read only when the previous is written, so frames queue in the source and the
latency grows (until the source's queue is full, then frames are lost there instead).

With a source that is not real time (a video file, an image folder) the capture thread
reads as fast as it decodes, so the ring pipeline skips most frames: use the sequential
pipeline to annotate every frame of a file.

Glass-to-glass latency = time the annotated frame was handed to the output - the
frame's capture timestamp.

Shutdown: at the end of the stream, on Ctrl-C and when the viewer closes the window
(:class:`OutputClosed`) the output is finalised (complete, renamed into place) and a
report returned (``interrupted`` set on Ctrl-C and a closed window); on an
exception in either thread the capture thread is stopped and joined, the partial output
deleted, and the exception re-raised once (the original object).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np

from ..errors import EdgeoptError
from .draw import draw_frame
from .metrics import StreamMetrics, StreamReport
from .sources import Frame, Source

if TYPE_CHECKING:
    from ..detect import MtcnnDetector
    from ..detect.db import TextDetector

JOIN_TIMEOUT_S = 5.0


class OutputClosed(Exception):
    """Raised by a sink's ``write`` when its viewer closed it: the stream stops as on Ctrl-C."""


class PipelineError(EdgeoptError):
    """A pipeline setting or output is invalid."""


# -- ring buffer ------------------------------------------------------------------------
class RingBuffer:
    """N slots; ``put`` overwrites the oldest, ``take_latest`` returns the newest unread.

    Thread-safe (one condition variable). Counts: ``written`` frames put, ``taken``
    frames returned, ``skipped`` = written - taken once drained (overwritten before
    being read, or passed over by a take because a newer frame was there).

    Args:
        slots: capacity (>= 1; default 3).

    Raises:
        PipelineError: slots < 1.
    """

    def __init__(self, slots: int = 3) -> None:
        if not isinstance(slots, int) or slots < 1:
            raise PipelineError(f"ring buffer of {slots!r} slots: use a positive integer, e.g. 3")
        self.slots = slots
        self._items: list[object] = [None] * slots
        self._seq = [-1] * slots  # sequence number held in each slot
        self.written = 0
        self.taken = 0
        self._last_taken = -1
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: object) -> None:
        """Write ``item`` into the oldest slot (overwriting it)."""
        with self._cond:
            slot = self.written % self.slots
            self._items[slot], self._seq[slot] = item, self.written
            self.written += 1
            self._cond.notify_all()

    def close(self) -> None:
        """No more puts: a waiting ``take_latest`` returns what is left, then None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def skipped(self) -> int:
        """Frames written that were never taken and can no longer be (older than the last take
        or overwritten)."""
        with self._cond:
            return self.written - self.taken - self._pending()

    def _pending(self) -> int:
        return 1 if self._seq[(self.written - 1) % self.slots] > self._last_taken and self.written else 0

    def contents(self) -> list[object]:
        """Items in the buffer, oldest first (for inspection and tests)."""
        with self._cond:
            order = sorted((s, i) for i, s in enumerate(self._seq) if s >= 0)
            return [self._items[i] for _, i in order]

    def take_latest(self, timeout: float | None = None) -> object | None:
        """The newest item not taken yet; waits up to ``timeout`` s (None: forever) for one.

        Returns None when nothing new came in time, or the buffer is closed and drained.
        """
        with self._cond:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                slot = (self.written - 1) % self.slots
                if self.written and self._seq[slot] > self._last_taken:
                    self._last_taken = self._seq[slot]
                    self.taken += 1
                    item, self._items[slot] = self._items[slot], None
                    return item
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(left)


# -- detectors --------------------------------------------------------------------------
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


# -- outputs ----------------------------------------------------------------------------
class Sink:
    """Where annotated frames go. ``write`` each, then ``finish`` (keep) or ``abort`` (delete)."""

    def write(self, image: np.ndarray) -> None:
        raise NotImplementedError

    def finish(self) -> None:
        """Complete the output and move it into place."""

    def abort(self) -> None:
        """Delete everything written so far."""


class NullSink(Sink):
    """Discards frames (benchmarks of the pipeline alone)."""

    def write(self, image: np.ndarray) -> None:
        pass


class VideoSink(Sink):
    """An H.264 video (imageio-ffmpeg), written to a temp file renamed on ``finish``.

    A ring pipeline writes only the frames it processed, so at the source's fps the
    video plays faster than real time; pass the measured fps to keep real time.

    Args:
        path: output file (.mp4, .mkv, .avi, ...); its folder must exist.
        fps: frame rate stored in the file (> 0).

    Raises:
        PipelineError: fps <= 0, missing folder, or imageio-ffmpeg missing.
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        try:
            import imageio.v2 as iio
            import imageio_ffmpeg  # noqa: F401
        except ImportError:
            raise PipelineError("video output needs imageio-ffmpeg: pip install imageio imageio-ffmpeg, "
                                "or pass --out FOLDER for images") from None
        self.path = Path(path)
        if not fps > 0:
            raise PipelineError(f"video fps {fps} is not positive: pass e.g. 30")
        if not self.path.parent.is_dir():
            raise PipelineError(f"folder {self.path.parent} does not exist: create it or pick another --out")
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.stem}.", suffix=self.path.suffix)
        os.close(fd)
        self._tmp = Path(tmp)
        # ultrafast: the encoder runs in an ffmpeg process sharing the CPU with the
        # detector; macro_block_size 2 keeps odd-free sizes without resizing.
        self._writer = iio.get_writer(str(self._tmp), format="FFMPEG", mode="I", fps=fps, codec="libx264",
                                      output_params=["-preset", "ultrafast"], macro_block_size=2)
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self._writer.append_data(image)
        self.frames += 1

    def finish(self) -> None:
        self._writer.close()
        if self.frames == 0:
            self._tmp.unlink(missing_ok=True)
            raise PipelineError(f"no frame was processed, so {self.path} was not written: check the source")
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        except Exception:  # ffmpeg may refuse an empty or broken stream; the file goes anyway
            pass
        self._tmp.unlink(missing_ok=True)


class FolderSink(Sink):
    """Numbered PNGs in a temp folder renamed to ``path`` on ``finish``.

    Raises:
        PipelineError: ``path`` exists and is not an empty folder.
    """

    def __init__(self, path: str | Path) -> None:
        from PIL import Image

        self._Image = Image
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise PipelineError(f"{self.path} exists and is not an empty folder: pick a new --out")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
        self.frames = 0

    def write(self, image: np.ndarray) -> None:
        self._Image.fromarray(image).save(self._tmp / f"{self.frames:06d}.png", compress_level=1)
        self.frames += 1

    def finish(self) -> None:
        if self.path.is_dir():
            self.path.rmdir()  # empty (checked in __init__); rename needs it gone
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)


class TeeSink(Sink):
    """Every frame to each of ``sinks`` (e.g. a window and a video file), in order.

    ``finish`` finishes all of them even when one raises (the first error is re-raised
    after), ``abort`` aborts all.
    """

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, image: np.ndarray) -> None:
        for sink in self.sinks:
            sink.write(image)

    def finish(self) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.finish()
            except Exception as e:  # the other outputs are still completed
                errors.append(e)
        if errors:
            raise errors[0]

    def abort(self) -> None:
        for sink in self.sinks:
            sink.abort()


def make_sink(out: str | Path | None, fps: float, *, show: bool = False, title: str = "edgeopt stream") -> Sink:
    """The output: a window (``show``, :class:`~edgeopt.stream.window.WindowSink`) and/or
    a VideoSink for a path with a video suffix, a FolderSink for another path; NullSink
    when neither is asked for.

    Raises:
        PipelineError: a bad path (see the sinks) or no display for ``show``.
    """
    sinks: list[Sink] = []
    if show:
        from .window import WindowSink

        sinks.append(WindowSink(title))
    if out is not None:
        try:
            sinks.append(_file_sink(Path(out), fps))
        except BaseException:
            for sink in sinks:
                sink.abort()
            raise
    if not sinks:
        return NullSink()
    return sinks[0] if len(sinks) == 1 else TeeSink(sinks)


def _file_sink(p: Path, fps: float) -> Sink:
    if p.suffix.lower() in (".mp4", ".mkv", ".avi", ".mov", ".webm"):
        return VideoSink(p, fps)
    if p.suffix:
        raise PipelineError(f"--out {p}: use a video file (.mp4, .mkv, .avi, .mov, .webm) or a folder name")
    return FolderSink(p)


# -- the two pipelines --------------------------------------------------------------------
def _process(frame: Frame, detector: FrameDetector, sink: Sink, metrics: StreamMetrics, overlay: bool) -> None:
    det = detector(frame.image)
    t = time.perf_counter()
    image = draw_frame(frame.image, det.boxes, det.scores, metrics.overlay() if overlay else "", quads=det.quads)
    sink.write(image)
    t_out = time.perf_counter()
    metrics.record(frame.t_capture, t_out, {**det.stages_ms, "draw": (t_out - t) * 1e3}, len(det.boxes))


def run_sequential(source: Source, detector: FrameDetector, sink: Sink | None = None, *,
                   max_seconds: float | None = None, overlay: bool = True) -> StreamReport:
    """Read, detect, draw, write in one loop until the source ends.

    Args:
        source: frames (a :class:`SimCamera` shows the growing latency).
        detector: a :class:`FrameDetector`.
        sink: output (default: discard); finished on success, Ctrl-C and a closed window
            (:class:`OutputClosed`), aborted on errors.
        max_seconds: stop after this long (wall time), or None.
        overlay: draw the fps / latency line.

    Returns:
        the :class:`StreamReport` (``interrupted`` after Ctrl-C).

    Raises:
        whatever the source, detector or sink raised (the output is deleted first).
    """
    sink = sink or NullSink()
    metrics = StreamMetrics()
    interrupted = False
    try:
        while max_seconds is None or time.perf_counter() - metrics.t_start < max_seconds:
            frame = source.read()
            if frame is None:
                break
            _process(frame, detector, sink, metrics, overlay)
    except (KeyboardInterrupt, OutputClosed):
        interrupted = True
    except BaseException:
        sink.abort()
        raise
    sink.finish()
    source.update_counts()
    return metrics.report("sequential", source.captured, interrupted=interrupted)


def run_ring(source: Source, detector: FrameDetector, sink: Sink | None = None, *, slots: int = 3,
             max_seconds: float | None = None, overlay: bool = True) -> StreamReport:
    """Capture thread -> :class:`RingBuffer` -> newest frame detected, drawn, written here.

    Args, Returns: as :func:`run_sequential`; ``slots`` is the ring size.

    Raises:
        the first exception of either thread, once (the capture thread is joined and the
        output deleted first).
    """
    sink = sink or NullSink()
    ring = RingBuffer(slots)
    stop = threading.Event()
    errors: list[BaseException] = []

    def capture() -> None:
        try:
            while not stop.is_set():
                frame = source.read(stop)
                if frame is None:
                    break
                ring.put(frame)
        except BaseException as e:  # handed to the inference thread, which re-raises it
            errors.append(e)
        finally:
            ring.close()

    metrics = StreamMetrics()
    thread = threading.Thread(target=capture, name="edgeopt-capture", daemon=True)
    interrupted = False
    try:
        thread.start()
        while max_seconds is None or time.perf_counter() - metrics.t_start < max_seconds:
            frame = ring.take_latest(timeout=0.1)
            if frame is None:
                if ring.closed:
                    break
                continue
            _process(frame, detector, sink, metrics, overlay)
    except (KeyboardInterrupt, OutputClosed):
        interrupted = True
    except BaseException:
        _stop(stop, thread)
        sink.abort()
        raise
    _stop(stop, thread)
    if errors:
        sink.abort()
        raise errors[0]
    sink.finish()
    source.update_counts()
    return metrics.report("ring", source.captured, interrupted=interrupted)


def _stop(stop: threading.Event, thread: threading.Thread) -> None:
    """Ask the capture thread to stop and join it (daemon: a read stuck in a driver
    cannot keep the process alive past the timeout)."""
    stop.set()
    thread.join(JOIN_TIMEOUT_S)
    if thread.is_alive():
        raise PipelineError(f"the capture thread did not stop within {JOIN_TIMEOUT_S:g} s: "
                            "the source's read() blocks; check the camera or file")


PIPELINES: dict[str, Callable[..., StreamReport]] = {"ring": run_ring, "sequential": run_sequential}
