"""One stream run as a function: a ``--source`` spec, a detector by name, a pipeline and
an output in, a :class:`~edgeopt.stream.metrics.StreamReport` out (``edgeopt stream``)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Callable

from ..detect import MtcnnDetector
from ..detect.db import TextDetector
from ..load import load_model
from .clip import TestClip
from .metrics import StreamReport
from .detectors import MtcnnFrameDetector, TextFrameDetector
from .pipeline import PIPELINES
from .sinks import make_sink
from .status import StatusLine
from .sources import (
    CameraSource,
    ImageFolderSource,
    LazyImages,
    SimCamera,
    Source,
    SourceError,
    VideoFileSource,
)
from .window import check_show

_AT_FPS = re.compile(r"^(?P<what>.*?)(?:@(?P<fps>\d+(?:\.\d+)?)fps)?$")
# Each detector with the test clip it finds something in (``clip@30fps`` picks it).
MODELS = {"zoo:mtcnn": "faces", "zoo:ppocr-det": "text"}
CLIP_SECONDS = 4.0


def parse_source(spec: str, *, seconds: float | None, buffers: int | None, clip: str = "faces",
                 clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> Source:
    """A :class:`~edgeopt.stream.sources.Source` from a ``--source`` value.

    ``clip@30fps`` (the test clip of kind ``clip``, ``seconds`` long, default 4),
    ``clip:faces@30fps`` or ``clip:text@30fps`` (a given clip), ``sim:DIR@30fps`` (a
    folder replayed by a SimCamera), ``camera:0`` or ``camera:/dev/video2`` (OpenCV), a
    video file, or a folder. ``clock`` and ``sleep`` drive the simulated cameras (tests
    inject a fake time).

    Raises:
        SourceError: unknown form, missing file/folder, or a missing library;
        ClipError: an unknown clip.
    """
    m = _AT_FPS.match(spec)
    what, fps = m.group("what"), float(m.group("fps") or 30)
    if what == "clip" or what.startswith("clip:"):
        kind = what[5:] or clip
        return SimCamera(TestClip(seconds or CLIP_SECONDS, fps, kind=kind), fps, buffers=buffers,
                         clock=clock, sleep=sleep)
    if what.startswith("sim:"):
        return SimCamera(LazyImages(what[4:]), fps, buffers=buffers, clock=clock, sleep=sleep)
    if what.startswith("camera:"):
        device = what[7:]
        if not (device.isdigit() or "/" in device):
            raise SourceError(f"--source {spec}: camera {device!r} is neither an index nor a device path: "
                              "use e.g. camera:0 or camera:/dev/video2")
        return CameraSource(int(device) if device.isdigit() else device)
    if m.group("fps"):
        raise SourceError(f"--source {spec}: @NNfps applies to clip and sim:DIR only")
    path = Path(what)
    if path.is_dir():
        return ImageFolderSource(path)
    if path.is_file():
        return VideoFileSource(path)
    raise SourceError(f"--source {spec} is neither clip@FPS, sim:DIR@FPS, camera:N, a video file nor a folder")


def is_clip(spec: str) -> bool:
    """True for the test clip forms (``clip@FPS``, ``clip:KIND@FPS``)."""
    what = _AT_FPS.match(spec).group("what")
    return what == "clip" or what.startswith("clip:")


def source_path(spec: str) -> Path | None:
    """The file or folder a ``--source`` value reads (a video, a folder, ``sim:DIR``),
    None for the test clip and cameras."""
    what = _AT_FPS.match(spec).group("what")
    if is_clip(spec) or what.startswith("camera:"):
        return None
    return Path(what[4:] if what.startswith("sim:") else what)


def frame_detector(model: str, *, pnet: Path | None = None, backend: str = "ort",
                   threads: int = 1) -> MtcnnFrameDetector | TextFrameDetector:
    """The detector ``model`` (a key of :data:`MODELS`) as a frame detector with stage times.

    Args:
        pnet: zoo:mtcnn only: an ONNX file that replaces MTCNN's P-Net (e.g. optimized).
        backend, threads: where the networks run (intra-op threads per network).

    Raises:
        ModelLoadError: ``pnet`` cannot be loaded; BackendUnavailable: see the backend.
    """
    if model == "zoo:ppocr-det":
        return TextFrameDetector(TextDetector(load_model("zoo:ppocr-det"), backend=backend, threads=threads))
    nets = [load_model(str(pnet)) if pnet else load_model("zoo:mtcnn-pnet")]
    nets += [load_model(f"zoo:mtcnn-{n}") for n in ("rnet", "onet")]
    return MtcnnFrameDetector(MtcnnDetector(*nets, backend=backend, threads=threads))


def run_stream(model: str, source: str, *, pipeline: str = "ring", out: Path | None = None, show: bool = False,
               backend: str = "ort", threads: int = 1, pnet: Path | None = None, seconds: float | None = None,
               slots: int = 3, camera_buffers: int | None = 4, status: StatusLine | None = None,
               clock: Callable[[], float] = time.perf_counter,
               sleep: Callable[[float], None] = time.sleep) -> StreamReport:
    """Detect with ``model`` on the frames of ``source`` through ``pipeline``; draw into ``out``.

    The ring pipeline takes the newest frame while a capture thread fills a ring buffer;
    the sequential one reads, detects and writes one frame at a time (frames that arrive
    meanwhile wait or are dropped by the camera). A simulated camera's first frame warms
    the detector up before timing starts. The video written keeps the stream's time
    (see :class:`~edgeopt.stream.sinks.VideoSink`).

    Args:
        model: a key of :data:`MODELS`.
        source: a ``--source`` spec (see :func:`parse_source`); ``clip@FPS`` is the
            model's clip (faces for MTCNN, document pages for the text detector).
        pipeline: "ring" or "sequential" (:data:`~edgeopt.stream.pipeline.PIPELINES`).
        out: annotated video (.mp4 ...) or a new folder of PNGs; None: no file.
        show: also show the annotated frames in a window.
        seconds: stop after this long (wall time, every source); also the clip's
            length (default 4 s).
        slots: ring buffer slots (ring pipeline only).
        camera_buffers: sim/clip: the simulated driver queue in frames; None or 0: unbounded.
        status: the live status line (stderr in the CLI), or None.
        clock, sleep: the time of the simulated cameras and of ``seconds`` (tests inject
            a fake one).

    Returns:
        the StreamReport (fps, dropped frames, glass-to-glass latency, stage times).

    Raises:
        EdgeoptError: ``show`` without a usable display; SourceError: see
            :func:`parse_source`; see also :func:`frame_detector` and the pipelines.
    """
    check_show(show)
    src = parse_source(source, seconds=seconds, buffers=camera_buffers or None, clip=MODELS[model],
                       clock=clock, sleep=sleep)
    try:
        if status is not None:
            status.note(f"loading {model}...")
        detector = frame_detector(model, pnet=pnet, backend=backend, threads=threads)
        try:
            if isinstance(src, SimCamera):
                detector.warmup(src.frames[0])
            sink = make_sink(out, src.fps or 30.0, show=show, title=f"edgeopt stream: {model} ({pipeline})")
            kwargs = {"slots": slots} if pipeline == "ring" else {}
            return PIPELINES[pipeline](src, detector, sink, max_seconds=seconds, status=status, clock=clock,
                                       **kwargs)
        finally:
            detector.close()
    finally:
        src.close()
