"""``edgeopt stream``: a detector on live frames, with measured glass-to-glass latency.

The work is in :mod:`edgeopt.stream` (:func:`edgeopt.stream.run.run_stream`); this module
checks the options, runs it and prints / writes the report.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Optional

import typer

from .._util.outputs import check_outputs
from .._util.resources import check_threads
from ..errors import EdgeoptError
from .options import duration_option, in_range, only_with


def command(
    ctx: typer.Context,
    model: str = typer.Option("zoo:mtcnn", "--model", help="Detector: zoo:mtcnn (P-Net, R-Net, O-Net) or zoo:ppocr-det (DB text detection)."),
    source: str = typer.Option("clip@30fps", "--source",
                               help="VIDEO file, image FOLDER, camera:0, sim:DIR@30fps (real-time replay) "
                                    "or clip@30fps (the model's test clip: photos with faces for zoo:mtcnn, "
                                    "document pages for zoo:ppocr-det; or clip:faces@30fps, clip:text@30fps)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Annotated video (.mp4 ...; as long as the stream: "
                                                           "each processed frame held until the next) or a new "
                                                           "folder of PNGs (with timestamps.csv)."),
    show: bool = typer.Option(False, "--show", help="Show the annotated frames in a window (needs a display; "
                                                    "close it or press q to stop)."),
    pipeline: str = typer.Option("ring", "--pipeline", help="ring (latest frame, two threads) or sequential."),
    backend: str = typer.Option("ort", "--backend", help="Backend running the networks."),
    threads: int = typer.Option(1, "--threads", callback=in_range(ge=1), help="Intra-op threads per network (on 2 cores, 2 threads "
                                                     "ran 4x slower than 1 beside the capture thread)."),
    pnet: Optional[Path] = typer.Option(None, "--pnet", help="An optimized P-Net ONNX file (e.g. from "
                                                             "`edgeopt optimize zoo:mtcnn-pnet`)."),
    seconds: Optional[float] = duration_option(None, "--seconds", help="Stop after this long (every source); also "
                                                                        "the clip's length (default 4 s)."),
    slots: int = typer.Option(3, "--slots", callback=in_range(ge=1), help="Ring buffer slots."),
    camera_buffers: int = typer.Option(4, "--camera-buffers", callback=in_range(ge=0), help="sim/clip: the simulated driver queue "
                                                                   "(frames); 0 = unbounded."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report (with per-frame latencies) "
                                                                 "as JSON."),
) -> None:
    """Detect on live frames: ring (newest frame) or sequential; a live status line on stderr, then
    fps, drops, latency p50/p90/p99."""
    from ..report.json_file import write_json
    from ..report.stream_summary import stream_summary
    from ..stream.pipeline import PIPELINES
    from ..stream.run import MODELS, is_clip, run_stream, source_path
    from ..stream.sinks import VIDEO_SUFFIXES
    from ..stream.status import StatusLine

    if model not in MODELS:
        raise EdgeoptError(f"--model {model} is not supported by stream: use {', '.join(MODELS)}")
    if pnet is not None and model != "zoo:mtcnn":
        raise EdgeoptError(f"--pnet replaces MTCNN's P-Net, not part of {model}: drop --pnet")
    if pipeline not in PIPELINES:
        raise EdgeoptError(f"--pipeline {pipeline}: use ring or sequential")
    only_with(ctx, "--pipeline ring", pipeline == "ring", "slots")
    # Only the simulated sources have a driver queue to size; a real camera or file has its own.
    only_with(ctx, "--source sim:DIR@FPS or clip@FPS", source.startswith("sim:") or is_clip(source),
              "camera_buffers")
    video = out if out is not None and out.suffix.lower() in VIDEO_SUFFIXES else None
    frames = out if out is not None and not out.suffix else None  # any other suffix: make_sink says so
    check_outputs(inputs=(pnet, source_path(source)), files=[("--out", video), ("--json", json_out)],
                  folders=[("--out", frames, ())])
    check_threads(threads)
    if out is not None and out.exists() and out.is_file():
        raise EdgeoptError(f"{out} exists: remove it or pick another --out")
    out_existed = out is not None and out.exists()  # then an empty folder (the folder sink checks)
    report = run_stream(model, source, pipeline=pipeline, out=out, show=show, backend=backend, threads=threads,
                        pnet=pnet, seconds=seconds, slots=slots, camera_buffers=camera_buffers,
                        status=StatusLine(sys.stderr))
    if json_out is not None:
        try:
            write_json(json_out, {"model": model, "pnet": str(pnet) if pnet else None, "source": source,
                                  "backend": backend, "threads": threads, **report.to_dict(series=True)})
        except BaseException:  # the run's outputs come whole or not at all
            if out is not None:
                _discard(out, keep_folder=out_existed)
            raise
    typer.echo(stream_summary(report))
    for path in (out, json_out):
        if path is not None:
            typer.echo(f"wrote {path}")


def _discard(out: Path, *, keep_folder: bool) -> None:
    """Delete the video or the frames this run wrote to ``out`` (new, or an empty folder
    that stays)."""
    if not out.is_dir():
        out.unlink(missing_ok=True)
        return
    shutil.rmtree(out, ignore_errors=True)
    if keep_folder:
        out.mkdir()
