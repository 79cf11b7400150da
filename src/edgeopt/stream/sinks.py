"""Where the annotated frames go: a video file, a folder of PNGs, several outputs at once,
a window (:mod:`.window`), or nowhere; :func:`make_sink` picks from the command line.

Files are written to a temp file or folder in the target's folder and renamed into place
on ``finish``, deleted on ``abort`` (with the folders made for them): a stream that fails
leaves no partial output.
"""

from __future__ import annotations

import errno
import math
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np

from .._util.atomic import NewFolders, check_replaceable, folder_mode, temp_file
from .._util.outputs import WRITE_ERRNOS, write_error
from ..errors import EdgeoptError
from .base import PipelineError, Sink
from .window import WindowSink

VIDEO_SUFFIXES = (".mp4", ".mkv", ".avi", ".mov", ".webm")


class NullSink(Sink):
    """Discards frames (benchmarks of the pipeline alone)."""

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        pass


class _PipeFeeder:
    """Writes ``(data, copies)`` items into a pipe from a thread of its own, so the
    stream's thread does not wait for the encoder: a frame held for a second is 30
    copies. At most ``depth`` items wait; then ``put`` waits (the encoder sets the pace).

    Attributes:
        error: the OSError the pipe raised (the reader quit), else None.
    """

    def __init__(self, pipe, depth: int = 4) -> None:
        self._pipe, self._queue = pipe, queue.Queue(depth)
        self.error: OSError | None = None
        self._thread = threading.Thread(target=self._run, name="edgeopt-video-feed", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            data, copies = item
            try:
                for _ in range(copies):
                    self._pipe.write(data)
            except OSError as e:  # handed to the stream's thread by put / close
                self.error = e
                return

    def put(self, data: bytes, copies: int) -> bool:
        """Queue ``copies`` writes of ``data``; False once the pipe broke."""
        while self.error is None and self._thread.is_alive():
            try:
                self._queue.put((data, copies), timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> OSError | None:
        """Wait until everything queued was written (or the pipe broke); the error or None."""
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=0.1)
                break
            except queue.Full:
                continue
        self._thread.join()
        return self.error


class VideoSink(Sink):
    """An H.264 video, encoded by the ffmpeg of imageio-ffmpeg into a temp file beside
    ``path`` that is renamed into place on ``finish`` once ffmpeg has exited cleanly (a
    video cut short by a full disk or a size limit is deleted, not reported).

    The video keeps the stream's time: it has a constant rate ``fps`` (what every player
    takes), and each frame written with a time ``t`` is held (repeated) from the period
    ``t`` falls in until the next frame's; the last one until ``finish``'s ``t_end`` (a
    video of t_end - first t, +/- half a period), or for one period without ``t_end`` (a
    video of T to T + 1/fps s when the last frame came at T). A ring pipeline processes a
    fraction of the camera's frames; its 20 s session still makes 20 s of video. Two frames within one
    period: the newer replaces the older (counted in ``merged``). Frames written without
    ``t`` take one period each.

    Args:
        path: output file (.mp4, .mkv, .avi, ...); missing folders are created (and
            removed again when the video fails).
        fps: frame rate stored in the file (> 0): the source's.

    Attributes:
        frames: frames written; video_frames: frames in the file (with the repeats);
        merged: frames replaced by a newer one within one period.

    Raises:
        PipelineError: fps <= 0, imageio-ffmpeg missing, frames of changing size, or
            ffmpeg failed; OutputError: the file system refused the video (full,
            read-only, file size limit, permission).
    """

    def __init__(self, path: str | Path, fps: float) -> None:
        try:
            import imageio_ffmpeg
        except ImportError:
            raise PipelineError("video output needs imageio-ffmpeg: pip install imageio imageio-ffmpeg, "
                                "or pass --out FOLDER for images") from None
        self.path = Path(path)
        if not fps > 0:
            raise PipelineError(f"video fps {fps} is not positive: pass e.g. 30")
        self._exe = imageio_ffmpeg.get_ffmpeg_exe()
        self._rate = Fraction(fps).limit_denominator(1001)
        self._folders = NewFolders(self.path.parent, self.path)
        try:
            self._tmp = temp_file(self.path)
        except OSError as e:
            self._folders.remove()
            raise write_error(e, self.path, "--out") from None
        self._proc: subprocess.Popen | None = None
        self._log = tempfile.TemporaryFile()  # ffmpeg's messages: read for the error line only
        self._size: tuple[int, int] | None = None
        self._held: bytes | None = None  # the last frame, shown until the next one's time
        self._t0: float | None = None
        self.frames = self.video_frames = self.merged = 0

    def _start(self, width: int, height: int) -> None:
        # ultrafast: the encoder shares the CPU with the detector; yuv420p (what players
        # take) needs even sizes, so an odd edge is padded by one pixel.
        cmd = [self._exe, "-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}",
               "-r", str(self._rate), "-i", "-", "-an", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264",
               "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(self._tmp)]
        # Its own process group: Ctrl-C stops the stream, which then closes the video
        # cleanly, instead of killing ffmpeg before the trailer.
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log,
                                      start_new_session=True)
        self._feed = _PipeFeeder(self._proc.stdin)
        self._size = (width, height)

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        if image.ndim == 2:
            image = np.repeat(image[:, :, None], 3, axis=2)
        height, width = image.shape[:2]
        if self._proc is None:
            self._start(width, height)
        elif (width, height) != self._size:
            raise PipelineError(f"frame {self.frames} is {width}x{height}, the video {self.path} is "
                                f"{self._size[0]}x{self._size[1]}: give a source whose frames share one size")
        data = np.ascontiguousarray(image[:, :, :3], dtype=np.uint8).tobytes()
        if self._held is None:
            self._t0 = t
        else:
            # The period the frame's time falls in (the epsilon keeps pts = i / fps in slot i).
            slot = self.video_frames + 1 if t is None or self._t0 is None else \
                math.floor((t - self._t0) * self._rate + 1e-6)
            if slot > self.video_frames:
                self._emit(slot - self.video_frames)
            else:
                self.merged += 1
        self._held = data
        self.frames += 1

    def _emit(self, copies: int) -> None:
        """The held frame into ffmpeg ``copies`` times (its slots up to the next frame's)."""
        if not self._feed.put(self._held, copies):  # ffmpeg quit (a full disk, a size limit): its log says why
            self._proc.wait()
            raise self._failed()
        self.video_frames += copies

    def finish(self, t_end: float | None = None) -> None:
        if self.frames == 0:
            self.abort()
            raise PipelineError(f"no frame was processed, so {self.path} was not written: check the source")
        end = self.video_frames + 1 if t_end is None or self._t0 is None else round((t_end - self._t0) * self._rate)
        self._emit(max(1, end - self.video_frames))
        if self._feed.close() is not None:
            self._proc.wait()
            raise self._failed()
        try:
            self._proc.stdin.close()
        except OSError:  # ffmpeg quit before the last frame: its exit status says so
            pass
        if self._proc.wait() != 0:
            raise self._failed()
        try:
            check_replaceable(self.path)
            os.replace(self._tmp, self.path)
        except BaseException as e:
            self.abort()
            if isinstance(e, OSError):
                raise write_error(e, self.path, "--out") from None
            raise
        self._log.close()
        self._folders.keep()

    def _failed(self) -> EdgeoptError:
        """The error of a failed ffmpeg (the file it left deleted): the file system's
        problem when its log names one, else ffmpeg's last line."""
        log = self._read_log()
        self.abort()
        if self._proc.returncode == -signal.SIGXFSZ:  # Popen restores SIGXFSZ, which Python ignores
            log = os.strerror(errno.EFBIG)
        for code in sorted(WRITE_ERRNOS):
            if os.strerror(code) in log:
                return write_error(OSError(code, os.strerror(code)), self.path, "--out")
        last = log.strip().splitlines()[-1] if log.strip() else f"exit status {self._proc.returncode}"
        return PipelineError(f"ffmpeg could not write {self.path} ({last[:200]}): check the disk and the file name")

    def _read_log(self) -> str:
        try:
            self._log.seek(0)
            return self._log.read().decode(errors="replace")
        except (OSError, ValueError):  # closed already
            return ""

    def abort(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        if self._proc is not None:
            self._feed.close()  # its writes fail on the dead pipe: it ends
        if self._proc is not None and self._proc.stdin and not self._proc.stdin.closed:
            try:
                self._proc.stdin.close()
            except OSError:  # the pipe to a dead ffmpeg
                pass
        self._tmp.unlink(missing_ok=True)
        self._folders.remove()
        self._log.close()


class FolderSink(Sink):
    """Numbered PNGs in a temp folder renamed to ``path`` on ``finish``, with
    ``timestamps.csv``: each file's time on the stream's timeline (ms from the first
    frame; empty for frames written without a time), since a folder has no frame rate.

    Raises:
        PipelineError: ``path`` exists and is not an empty folder; OutputError: the
            file system refused a frame (full, read-only, ...).
    """

    TIMESTAMPS = "timestamps.csv"

    def __init__(self, path: str | Path) -> None:
        from PIL import Image

        self._Image = Image
        self.path = Path(path)
        if self.path.exists() and (not self.path.is_dir() or any(self.path.iterdir())):
            raise PipelineError(f"{self.path} exists and is not an empty folder: pick a new --out")
        self._folders = NewFolders(self.path.parent, self.path)
        try:
            self._tmp = Path(tempfile.mkdtemp(dir=self.path.parent, prefix=f".{self.path.name}."))
            os.chmod(self._tmp, folder_mode())  # mkdtemp's 0700 would stay on the output
        except OSError as e:
            self._folders.remove()
            raise write_error(e, self.path, "--out") from None
        self.frames = 0
        self._rows = ["file,t_ms"]
        self._t0: float | None = None

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        name = f"{self.frames:06d}.png"
        try:
            self._Image.fromarray(image).save(self._tmp / name, compress_level=1)
        except OSError as e:
            raise write_error(e, self.path, "--out") from None
        if t is not None and self._t0 is None:
            self._t0 = t
        self._rows.append(f"{name}," + ("" if t is None else f"{(t - self._t0) * 1e3:.1f}"))
        self.frames += 1

    def finish(self, t_end: float | None = None) -> None:
        try:
            (self._tmp / self.TIMESTAMPS).write_text("\n".join(self._rows) + "\n")
            if self.path.is_dir():
                self.path.rmdir()  # empty (checked in __init__); rename needs it gone
            os.replace(self._tmp, self.path)
        except OSError as e:
            self.abort()
            raise write_error(e, self.path, "--out") from None
        self._folders.keep()

    def abort(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)
        self._folders.remove()


class TeeSink(Sink):
    """Every frame to each of ``sinks`` (e.g. a window and a video file), in order.

    ``finish`` finishes all of them even when one raises (the first error is re-raised
    after), ``abort`` aborts all.
    """

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = sinks

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        for sink in self.sinks:
            sink.write(image, t)

    def finish(self, t_end: float | None = None) -> None:
        errors = []
        for sink in self.sinks:
            try:
                sink.finish(t_end)
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
    if p.suffix.lower() in VIDEO_SUFFIXES:
        return VideoSink(p, fps)
    if p.suffix:
        raise PipelineError(f"--out {p}: use a video file (.mp4, .mkv, .avi, .mov, .webm) or a folder name")
    return FolderSink(p)
