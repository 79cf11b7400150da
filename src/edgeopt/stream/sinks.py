"""Where the annotated frames go: a video file, a folder of PNGs, several outputs at once,
a window (:mod:`.window`), or nowhere; :func:`make_sink` picks from the command line.

Files are written to a temp file or folder in the target's folder and renamed into place
on ``finish``, deleted on ``abort``: a stream that fails leaves no partial output.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from .base import PipelineError, Sink
from .window import WindowSink


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
