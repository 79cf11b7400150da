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

import threading
import time
from typing import Callable

from .base import OutputClosed, PipelineError, Sink
from .detectors import FrameDetector
from .draw import draw_frame
from .metrics import StreamMetrics, StreamReport
from .sinks import NullSink
from .sources import Frame, Source
from .status import StatusLine

JOIN_TIMEOUT_S = 5.0


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


# -- the two pipelines --------------------------------------------------------------------
def _process(frame: Frame, detector: FrameDetector, sink: Sink, metrics: StreamMetrics, overlay: bool) -> None:
    det = detector(frame.image)
    t = metrics.clock()
    text = metrics.overlay(frame.t_capture) if overlay else ""
    # Text lines sit closer than a score label's height: their scores would cover the line above.
    scores = det.scores if det.quads is None else None
    image = draw_frame(frame.image, det.boxes, scores, text, quads=det.quads)
    sink.write(image, frame.t_video)
    t_out = metrics.clock()
    metrics.record(frame.t_capture, t_out, {**det.stages_ms, "draw": (t_out - t) * 1e3}, len(det.boxes))


def run_sequential(source: Source, detector: FrameDetector, sink: Sink | None = None, *,
                   max_seconds: float | None = None, overlay: bool = True,
                   clock: Callable[[], float] = time.perf_counter, status: StatusLine | None = None) -> StreamReport:
    """Read, detect, draw, write in one loop until the source ends.

    Args:
        source: frames (a :class:`SimCamera` shows the growing latency).
        detector: a :class:`FrameDetector`.
        sink: output (default: discard); finished on success, Ctrl-C and a closed window
            (:class:`OutputClosed`), aborted on errors.
        max_seconds: stop after this long (wall time), or None.
        overlay: draw the fps / latency line.
        clock: the clock of the source's timestamps, seconds (tests inject the one their
            simulated camera runs on).
        status: the live status line, updated after each frame (None: silent).

    Returns:
        the :class:`StreamReport` (``interrupted`` after Ctrl-C).

    Raises:
        whatever the source, detector or sink raised (the output is deleted first).
    """
    sink = sink or NullSink()
    metrics = StreamMetrics(clock=clock)
    interrupted = False
    last: Frame | None = None
    try:
        while max_seconds is None or clock() - metrics.t_start < max_seconds:
            frame = source.read()
            if frame is None:
                break
            _process(frame, detector, sink, metrics, overlay)
            last = frame
            if status is not None:
                status.update(metrics, source.captured)
    except (KeyboardInterrupt, OutputClosed):
        interrupted = True
    except BaseException:
        _close(status)
        sink.abort()
        raise
    return _finish("sequential", source, sink, metrics, status, interrupted, last)


def run_ring(source: Source, detector: FrameDetector, sink: Sink | None = None, *, slots: int = 3,
             max_seconds: float | None = None, overlay: bool = True,
             clock: Callable[[], float] = time.perf_counter, status: StatusLine | None = None) -> StreamReport:
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

    metrics = StreamMetrics(clock=clock)
    thread = threading.Thread(target=capture, name="edgeopt-capture", daemon=True)
    interrupted = False
    last: Frame | None = None
    try:
        thread.start()
        while max_seconds is None or clock() - metrics.t_start < max_seconds:
            frame = ring.take_latest(timeout=0.1)
            if frame is None:
                if ring.closed:
                    break
                continue
            _process(frame, detector, sink, metrics, overlay)
            last = frame
            if status is not None:
                status.update(metrics, source.captured)
    except (KeyboardInterrupt, OutputClosed):
        interrupted = True
    except BaseException:
        _close(status)
        _stop(stop, thread)
        sink.abort()
        raise
    _stop(stop, thread)
    if errors:
        _close(status)
        sink.abort()
        raise errors[0]
    return _finish("ring", source, sink, metrics, status, interrupted, last)


def _finish(pipeline: str, source: Source, sink: Sink, metrics: StreamMetrics, status: StatusLine | None,
            interrupted: bool, last: Frame | None) -> StreamReport:
    """Complete the output and report (the last status line first, so it shows the end).

    A live source's output lasts until now (its timeline is the capture clock: the last
    frame stays on screen until the stream ends); a file's ends one period after its last
    frame (its timeline is the file's own)."""
    source.update_counts()
    if status is not None:
        status.close(metrics, source.captured)
    sink.finish(metrics.clock() if last is not None and last.pts is None else None)
    return metrics.report(pipeline, source.captured, interrupted=interrupted)


def _close(status: StatusLine | None) -> None:
    if status is not None:
        status.close()


def _stop(stop: threading.Event, thread: threading.Thread) -> None:
    """Ask the capture thread to stop and join it (daemon: a read stuck in a driver
    cannot keep the process alive past the timeout)."""
    stop.set()
    thread.join(JOIN_TIMEOUT_S)
    if thread.is_alive():
        raise PipelineError(f"the capture thread did not stop within {JOIN_TIMEOUT_S:g} s: "
                            "the source's read() blocks; check the camera or file")


PIPELINES: dict[str, Callable[..., StreamReport]] = {"ring": run_ring, "sequential": run_sequential}
