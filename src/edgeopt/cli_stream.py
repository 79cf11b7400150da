"""``edgeopt stream``: a detector on live frames, with measured glass-to-glass latency.

The lead registers :func:`command` with ``app.command("stream")(command)``. The work is
in :mod:`edgeopt.stream`; this module parses options, builds the source, detector and
output, runs the pipeline and prints / writes the report.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional

import typer

from .errors import EdgeoptError

_AT_FPS = re.compile(r"^(?P<what>.*?)(?:@(?P<fps>\d+(?:\.\d+)?)fps)?$")
MODELS = ("zoo:mtcnn", "zoo:ppocr-det")


def parse_source(spec: str, *, seconds: float | None, buffers: int | None):
    """A :class:`~edgeopt.stream.sources.Source` from a ``--source`` value.

    ``clip@30fps`` (the test clip, ``seconds`` long, default 4), ``sim:DIR@30fps`` (a
    folder replayed by a SimCamera), ``camera:0`` or ``camera:/dev/video2`` (OpenCV), a
    video file, or a folder.

    Raises:
        SourceError: unknown form, missing file/folder, or a missing library.
    """
    from .stream.clip import TestClip
    from .stream.sources import (
        CameraSource,
        ImageFolderSource,
        LazyImages,
        SimCamera,
        SourceError,
        VideoFileSource,
    )

    m = _AT_FPS.match(spec)
    what, fps = m.group("what"), float(m.group("fps") or 30)
    if what == "clip":
        return SimCamera(TestClip(seconds or 4.0, fps), fps, buffers=buffers)
    if what.startswith("sim:"):
        return SimCamera(LazyImages(what[4:]), fps, buffers=buffers)
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


def command(
    model: str = typer.Option("zoo:mtcnn", "--model", help="Detector: zoo:mtcnn (P-Net, R-Net, O-Net) or zoo:ppocr-det (DB text detection)."),
    source: str = typer.Option("clip@30fps", "--source",
                               help="VIDEO file, image FOLDER, camera:0, sim:DIR@30fps (real-time replay) "
                                    "or clip@30fps (test clip of scikit-image photos)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Annotated video (.mp4 ...) or a new folder of PNGs."),
    show: bool = typer.Option(False, "--show", help="Show the annotated frames in a window (needs a display; "
                                                    "close it or press q to stop)."),
    pipeline: str = typer.Option("ring", "--pipeline", help="ring (latest frame, two threads) or sequential."),
    backend: str = typer.Option("ort", "--backend", help="Backend running the networks."),
    threads: int = typer.Option(1, "--threads", help="Intra-op threads per network (on 2 cores, 2 threads "
                                                     "ran 4x slower than 1 beside the capture thread)."),
    pnet: Optional[Path] = typer.Option(None, "--pnet", help="An optimized P-Net ONNX file (e.g. from "
                                                             "`edgeopt optimize zoo:mtcnn-pnet`)."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="clip length (default 4 s); for other "
                                                                    "sources: stop after this long, s."),
    slots: int = typer.Option(3, "--slots", help="Ring buffer slots."),
    camera_buffers: int = typer.Option(4, "--camera-buffers", help="sim/clip: the simulated driver queue "
                                                                   "(frames); 0 = unbounded."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report (with per-frame latencies) "
                                                                 "as JSON."),
) -> None:
    """Detect on live frames: ring (newest frame) or sequential; prints fps, drops, latency p50/p90/p99."""
    import edgeopt

    from .detect import MtcnnDetector
    from ._util.atomic import atomic_write_bytes
    from .stream.detectors import MtcnnFrameDetector
    from .stream.pipeline import PIPELINES
    from .stream.sinks import make_sink
    from .stream.sources import SimCamera
    from .stream.window import check_show

    if model not in MODELS:
        raise EdgeoptError(f"--model {model} is not supported by stream: use {', '.join(MODELS)}")
    if pnet is not None and model != "zoo:mtcnn":
        raise EdgeoptError(f"--pnet replaces MTCNN's P-Net, not part of {model}: drop --pnet")
    if pipeline not in PIPELINES:
        raise EdgeoptError(f"--pipeline {pipeline}: use ring or sequential")
    if threads < 1 or slots < 1 or camera_buffers < 0:
        raise EdgeoptError("--threads and --slots must be positive and --camera-buffers >= 0")
    if seconds is not None and seconds <= 0:
        raise EdgeoptError(f"--seconds {seconds} must be positive")
    if out is not None and out.exists() and out.is_file():
        raise EdgeoptError(f"{out} exists: remove it or pick another --out")
    check_show(show)
    src = parse_source(source, seconds=seconds, buffers=camera_buffers or None)
    try:
        if model == "zoo:ppocr-det":
            from .detect.db import TextDetector
            from .stream.detectors import TextFrameDetector

            detector = TextFrameDetector(TextDetector(edgeopt.load_model("zoo:ppocr-det"), backend=backend,
                                                      threads=threads))
        else:
            nets = [edgeopt.load_model(str(pnet)) if pnet else edgeopt.load_model("zoo:mtcnn-pnet")]
            nets += [edgeopt.load_model(f"zoo:mtcnn-{n}") for n in ("rnet", "onet")]
            detector = MtcnnFrameDetector(MtcnnDetector(*nets, backend=backend, threads=threads))
        try:
            if isinstance(src, SimCamera):
                detector.warmup(src.frames[0])
            sink = make_sink(out, src.fps or 30.0, show=show, title=f"edgeopt stream: {model} ({pipeline})")
            kwargs = {"slots": slots} if pipeline == "ring" else {}
            limit = None if _AT_FPS.match(source).group("what") == "clip" else seconds
            report = PIPELINES[pipeline](src, detector, sink, max_seconds=limit, **kwargs)
        finally:
            detector.close()
    finally:
        src.close()
    typer.echo(report.summary())
    typer.echo("stages (mean ms/frame): " + ", ".join(f"{k} {v:.1f}" for k, v in report.stage_ms.items()))
    if report.interrupted:
        typer.echo("stopped (Ctrl-C or window closed): output kept up to the last processed frame")
    if out is not None:
        typer.echo(f"wrote {out}")
    if json_out is not None:
        data = {"model": model, "pnet": str(pnet) if pnet else None, "source": source, "backend": backend,
                "threads": threads, **report.to_dict(series=True)}
        atomic_write_bytes(json_out, json.dumps(data, indent=2).encode())
        typer.echo(f"wrote {json_out}")
