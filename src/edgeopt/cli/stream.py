"""``edgeopt stream``: a detector on live frames, with measured glass-to-glass latency.

The work is in :mod:`edgeopt.stream` (:func:`edgeopt.stream.run.run_stream`); this module
checks the options, runs it and prints / writes the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .._util.resources import check_threads
from ..errors import EdgeoptError


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
    from ..report.json_file import write_json
    from ..report.stream_summary import stream_summary
    from ..stream.pipeline import PIPELINES
    from ..stream.run import MODELS, run_stream

    if model not in MODELS:
        raise EdgeoptError(f"--model {model} is not supported by stream: use {', '.join(MODELS)}")
    if pnet is not None and model != "zoo:mtcnn":
        raise EdgeoptError(f"--pnet replaces MTCNN's P-Net, not part of {model}: drop --pnet")
    if pipeline not in PIPELINES:
        raise EdgeoptError(f"--pipeline {pipeline}: use ring or sequential")
    if threads < 1 or slots < 1 or camera_buffers < 0:
        raise EdgeoptError("--threads and --slots must be positive and --camera-buffers >= 0")
    check_threads(threads)
    if seconds is not None and seconds <= 0:
        raise EdgeoptError(f"--seconds {seconds} must be positive")
    if out is not None and out.exists() and out.is_file():
        raise EdgeoptError(f"{out} exists: remove it or pick another --out")
    report = run_stream(model, source, pipeline=pipeline, out=out, show=show, backend=backend, threads=threads,
                        pnet=pnet, seconds=seconds, slots=slots, camera_buffers=camera_buffers)
    typer.echo(stream_summary(report))
    if out is not None:
        typer.echo(f"wrote {out}")
    if json_out is not None:
        write_json(json_out, {"model": model, "pnet": str(pnet) if pnet else None, "source": source,
                              "backend": backend, "threads": threads, **report.to_dict(series=True)})
        typer.echo(f"wrote {json_out}")
