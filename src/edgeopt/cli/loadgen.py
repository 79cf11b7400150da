"""``edgeopt loadgen``: MLPerf's scenarios through MLCommons LoadGen (:mod:`edgeopt.bench.loadgen`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.outputs import check_outputs
from .._util.resources import check_threads
from ..errors import EdgeoptError
from .options import InputsOpt, ModelArg, ShapeOpt, duration_option, in_range, load_real_inputs

out = Console()


def command(
    model: str = ModelArg,
    scenario: str = typer.Option(..., "--scenario", help="SingleStream, MultiStream, Server or Offline (MLPerf's)."),
    target_qps: Optional[float] = typer.Option(None, "--target-qps", callback=in_range(gt=0, example=50), help="Server (needed): queries/s LoadGen issues (Poisson arrivals); Offline: the samples/s expected, which sizes its one query (default: twice a short probe's)."),
    latency_bound: Optional[float] = duration_option(None, "--latency-bound", help="Server: the p99 latency bound, e.g. 30ms (needed)."),
    duration: float = duration_option("10s", "--duration", help="Minimum test duration (LoadGen's min_duration; MLPerf submissions: 10m)."),
    min_queries: int = typer.Option(100, "--min-queries", callback=in_range(ge=1), help="Minimum query count (LoadGen's min_query_count)."),
    backend: str = typer.Option("ort", "--backend", help="The runtime of the system under test: ort or openvino (any registered backend)."),
    threads: int = typer.Option(2, "--threads", callback=in_range(ge=1), help="Threads of the system under test in total."),
    streams: Optional[int] = typer.Option(None, "--streams", callback=in_range(ge=1, example=2), help="Requests in flight (MultiStream, Server, Offline; default: --threads). SingleStream runs one at a time."),
    images: Optional[Path] = typer.Option(None, "--images", help="Folder of images the queries carry (through the model's preprocessing); default: random inputs."),
    inputs: Optional[Path] = InputsOpt,
    shape: Optional[List[str]] = ShapeOpt,
    out_dir: Path = typer.Option(Path("loadgen-out"), "--out", help="Folder for loadgen.json and LoadGen's own mlperf_log_summary.txt and mlperf_log_detail.txt."),
    as_json: bool = typer.Option(False, "--json", help="Print loadgen.json instead of the summary."),
) -> None:
    """Run an MLPerf scenario with MLCommons LoadGen as the load generator and judge: LoadGen's
    verdict (VALID/INVALID and why), the scenario's metric, early-stopping estimates and
    latency percentiles."""
    from ..bench.loadgen import MAX_SAMPLES, LoadGenConfig, run_loadgen
    from ..report.loadgen_report import LOADGEN_FILES, print_loadgen, write_loadgen_outputs

    config = LoadGenConfig.parse(scenario, target_qps=target_qps, duration_s=duration,
                                 latency_bound_ms=None if latency_bound is None else latency_bound * 1000,
                                 min_queries=min_queries)
    if streams is not None and config.scenario == "SingleStream":
        raise EdgeoptError("--streams does not apply to --scenario SingleStream (one query at a time): drop --streams")
    if images is not None and inputs is not None:
        raise EdgeoptError("--images and --inputs both name the queries' data: give one of them")
    check_threads([threads, streams or threads])
    folder = images or inputs
    check_outputs(inputs=(model, folder), folders=[("--out", out_dir, LOADGEN_FILES)])
    m = edgeopt.load_model(model, shape=shape)
    samples = None
    if folder is not None:  # as bench reads them: images through the preprocessing, samples as they are
        m, real = load_real_inputs(m, folder)
        samples = real.feeds(m, 1, limit=MAX_SAMPLES)
    run = run_loadgen(m, backend, config, threads=threads, streams=streams or threads, samples=samples,
                      inputs="random" if folder is None else str(folder))
    paths = write_loadgen_outputs(run, out_dir)
    if as_json:
        print(json.dumps(run.to_dict(), indent=2))
        return
    print_loadgen(run, out)
    out.print("wrote " + ", ".join(map(str, paths)))
