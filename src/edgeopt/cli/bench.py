"""``edgeopt bench``, ``suite``, ``compare`` and ``history``: timing runs and their history."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.deadline import Deadline, command_budget, command_elapsed_s
from .._util.options import csv_ints, csv_list
from .._util.outputs import check_outputs
from ..errors import EdgeoptError
from .device import InsecureOpt, SchedulerOpt, TlsOpt
from ..report.console_table import Printer
from .options import (ChannelsOpt, InputsOpt, JsonOpt, MeanOpt, ModelArg, ResizeShortOpt, SampleRateOpt, ShapeOpt,
                      StdOpt, duration_option, given, in_range, json_command, load_real_inputs, only_with)

out = Console()


@json_command
def bench(
    ctx: typer.Context,
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    backend: str = typer.Option("ort", help="Backends, comma-separated (ort, openvino, torch, torch-onednn, torch-nnpack, torch-im2col, tvm, litert)."),
    batch: str = typer.Option("1", help="Batch sizes, comma-separated, e.g. 1,2,4,8,16,32,64,128,256."),
    threads: str = typer.Option("2", help="Thread counts, comma-separated."),
    budget: float = duration_option("120s", help="Total time budget of the command (start-up, loading and writing included)."),
    out_dir: Path = typer.Option(Path("bench-out"), "--out", help="Folder for JSON, CSV and plots."),
    pin: bool = typer.Option(False, "--pin/--no-pin", help="Pin each cell's threads to the first cores (recorded as 'pinned' in each result)."),
    cooldown: float = duration_option("0", zero=True, help="Before each cell, wait up to this long for the CPU temperature and frequency to settle (polled; 0: no wait)."),
    streams: Optional[str] = typer.Option(None, "--streams", help="Also measure throughput with N requests in flight, comma-separated, e.g. 1,2,4 (OpenVINO: asynchronous infer requests on N streams; other backends: N sessions sharing the threads), per backend and thread count."),
    sessions: int = typer.Option(3, callback=in_range(ge=1, le=20), help="Fresh sessions each cell is timed in, each in its own worker process, every cell's first session before any second (its p50 interval then covers what a second run of the command would see)."),
    images: Optional[Path] = typer.Option(None, help="Folder of real images to time on (through the model's preprocessing; class sub-folders are read too), cycled through the runs in full batches of each --batch; default: random inputs."),
    inputs: Optional[Path] = InputsOpt,
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
    sample_rate: Optional[int] = SampleRateOpt,
    profile: bool = typer.Option(False, "--profile", help="After the timing, one profiled session per cell: its slowest layers (ONNX node, op, median ms, % of the total) are printed and written to bench.json; ort and openvino only, a fifth of the budget kept for it."),
    history: Optional[Path] = typer.Option(None, help="Results history file (default $EDGEOPT_HISTORY or ~/.local/share/edgeopt/history.db)."),
    no_history: bool = typer.Option(False, "--no-history", help="Do not store the run in the results history."),
    device: Optional[str] = typer.Option(None, "--device", help="Time on a board of this kind (`edgeopt device serve --kind KIND`) through the device scheduler, not here."),
    scheduler: str = SchedulerOpt,
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Latency and throughput per backend x batch x threads (warm-up excluded, percentiles),
    the peak resident memory of each cell, on random or real inputs (--images/--inputs),
    optionally per layer (--profile). Each result records the conditions it was measured
    under (load, other processes' CPU share, steal, frequency, temperature, throttling,
    pinning); the run is stored in the results history (`edgeopt history`)."""
    from .. import store
    from ..backends import registry
    from ..bench.layer_profile import check_profile_backends, profile_cells
    from ..report.bench_output import BENCH_FILES, write_bench_outputs
    from ..bench.throughput import throughput_sweep
    from ..report.bench_extras import layer_profile_tables
    from ..report.bench_table import bench_table
    from ..report.throughput_table import throughput_table

    only_with(ctx, "--device KIND", device is not None, "scheduler", "tls", "insecure", typed_only=True)
    folder = _bench_folder(ctx, images, inputs, device, profile, no_history)
    check_outputs(inputs=(model, folder, None if no_history else history), folders=[("--out", out_dir, BENCH_FILES)])
    backend_list = csv_list(backend, "--backend", "ort,openvino")
    for name in backend_list:
        registry.require(name)
    if profile:
        check_profile_backends(backend_list)
    if not no_history:  # a file that cannot take the run is refused before the run, not after it
        store.check_history(history)
    m = edgeopt.load_model(model, shape=shape)
    real = None
    if folder is not None:
        m, real = load_real_inputs(m, folder, mean, std, channels, resize_short, sample_rate)
    grid = (m, backend_list, csv_ints(batch, "--batch"), csv_ints(threads, "--threads"))
    stream_list = streams_option(streams, device)
    deadline = Deadline(command_budget(budget))  # from when the command started
    results = _sweep_cells(grid, dict(pin=pin, cooldown_s=cooldown, sessions=sessions, progress=True), deadline,
                           streams=len(stream_list), profile=profile, real=real,
                           board=None if device is None else (device, scheduler, tls, insecure))
    if profile:
        profile_cells(m, results, inputs=real, deadline=deadline)
    printer = Printer(out, as_json=as_json, command="bench")
    printer.table(bench_table(results), *layer_profile_tables(results))
    tput = throughput_sweep(m, backend_list, grid[3], stream_list, budget_s=deadline.remaining(),
                            feeds=real.feeds(m, 1) if real else None) if stream_list else []
    if tput:
        printer.table(throughput_table(tput))
    run_id = None if no_history else store.record_run(
        results, kind="bench", name=m.name, path=history,
        meta=dict(budget_s=budget, backends=backend_list, batches=grid[2], threads=grid[3], sessions=sessions,
                  inputs=real.summary() if real else {}, profile=profile, device=device))
    json_path, csv_path, plots = write_bench_outputs(results, out_dir, tput)
    printer.line("wrote " + ", ".join(map(str, [json_path, csv_path, *plots]))
                 + (f"; history run {run_id} (compare: edgeopt compare history:{run_id} history:ID)" if run_id else ""))
    printer.close()

def _sweep_cells(grid: tuple, settings: dict, deadline, *, streams: int, profile: bool, real,
                 board: tuple | None) -> list:
    """The latency cells of ``grid`` (model, backends, batches, threads): here in worker
    processes, or on a board when ``board`` is (kind, scheduler, tls, insecure). Here, a
    share of the budget is kept for the --streams throughput cells (they also get what the
    rest leaves) and a fifth for --profile's profiled sessions after the timing."""
    from ..bench.sweep import sweep
    from ..bench.throughput import budget_share

    if board is None:
        kept = 1 - budget_share(deadline.remaining(), len(grid[1]) * len(grid[3]) * streams)
        return sweep(*grid, budget_s=deadline.remaining() * (0.8 if profile else 1.0) * kept, isolate=True,
                     inputs=real, **settings)
    from ..device.cluster import connect
    from ..device.runner import DeviceRunner
    from ..device.target import DeviceTarget

    kind, scheduler, tls, insecure = board
    with connect(scheduler, tls_dir=tls, insecure=insecure) as client:
        return sweep(*grid, budget_s=deadline.remaining(), runner=DeviceRunner(DeviceTarget(client, kind), grid[0]),
                     **settings)



def _bench_folder(ctx: typer.Context, images: Optional[Path], inputs: Optional[Path], device: Optional[str],
                  profile: bool, no_history: bool) -> Optional[Path]:
    """The real-input folder of `bench` (--inputs or --images), after refusing the options
    that do not go together."""
    if images is not None and inputs is not None:
        raise EdgeoptError("--images and --inputs both name the inputs to time on: pass one of them")
    folder = inputs if inputs is not None else images
    only_with(ctx, "--images/--inputs DIR", folder is not None, "mean", "std", "channels", "resize_short",
              "sample_rate")
    if device is not None and (folder is not None or profile):
        what = "--profile" if folder is None else "--images/--inputs"
        raise EdgeoptError(f"{what} applies to timing on this machine, not on a --device board: drop one of them")
    if no_history and given(ctx, "history"):
        raise EdgeoptError("--history names the results history that --no-history leaves out: drop one of them")
    return folder


def streams_option(text: str | None, device: str | None) -> list[int]:
    """The --streams counts ([] without the option).

    Raises:
        EdgeoptError: not positive integers, or with --device (the throughput scenario runs here only).
    """
    if text is None:
        return []
    if device is not None:
        raise EdgeoptError("--streams runs here, not on a --device board: drop --streams or --device")
    return csv_ints(text, "--streams")


@json_command
def suite(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="seed-rpi, seed-nnpack or mobile."),
    budget: float = duration_option("10m", help="Total wall time (loading and compiling included)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for suite.json, report.md and plots (default suite-NAME)."),
    history: Optional[Path] = typer.Option(None, help="Results history file (default $EDGEOPT_HISTORY or ~/.local/share/edgeopt/history.db)."),
    no_history: bool = typer.Option(False, "--no-history", help="Do not store the run in the results history."),
    backends: Optional[str] = typer.Option(None, "--backends", help="Run only these of the suite's backends, comma-separated, e.g. ort,openvino."),
    pin: bool = typer.Option(False, "--pin/--no-pin", help="Pin each session's threads to the first cores (recorded as 'pinned' in each result)."),
    cooldown: float = duration_option("0", zero=True, help="Before each cell, wait up to this long (at most half its share of the budget) for the CPU temperature and frequency to settle (polled; 0: no wait)."),
    device: Optional[str] = typer.Option(None, "--device", help="Time on a board of this kind (`edgeopt device serve --kind KIND`) through the device scheduler, not here."),
    scheduler: str = SchedulerOpt,
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Reproduce a seed benchmark study on this machine, or on a board with --device, within a
    time budget (breadth first: every model at batch 1 on its fastest runtimes before any
    model gets more)."""
    from .. import store
    from ..report.suite_report import suite_files, suite_measured_on, write_suite_outputs
    from ..report.suite_table import suite_table
    from ..bench.control import CellControl
    from ..suites.catalog import get_suite
    from ..suites.run import run_suite

    if no_history and given(ctx, "history"):
        raise EdgeoptError("--history names the results history that --no-history leaves out: drop one of them")
    only_with(ctx, "--device KIND", device is not None, "scheduler", "tls", "insecure", typed_only=True)
    spec = get_suite(name)
    out_dir = out_dir or Path(f"suite-{spec.name}")
    check_outputs(inputs=(None if no_history else history,), folders=[("--out", out_dir, suite_files(spec.name))])
    budget_s = budget
    if not no_history:  # a file that cannot take the run is refused before the run, not after it
        store.check_history(history)
    chosen = None if backends is None else tuple(csv_list(backends, "--backends", "ort,openvino"))
    settings = dict(budget_s=budget_s, backends=chosen, control=CellControl(pin=pin, cooldown_s=cooldown))
    if device is None:
        run = run_suite(spec, spent_s=command_elapsed_s(), **settings)
    else:
        from ..device.cluster import connect
        from ..device.target import DeviceTarget

        with connect(scheduler, tls_dir=tls, insecure=insecure) as client:
            run = run_suite(spec, target=DeviceTarget(client, device), spent_s=command_elapsed_s(), **settings)
    run_id = None
    if not no_history:
        run_id = store.record_run([c.result for c in run.cells], kind="suite", name=spec.name,
                                  meta=run.meta(), path=history)
    files = write_suite_outputs(run, out_dir, history_id=run_id)
    ran = sum(c.result.ok for c in run.cells)
    printer = Printer(out, as_json=as_json, command="suite")
    printer.table(suite_table(run))
    printer.line(f"{ran} of {len(run.cells)} cells {suite_measured_on(run)} in "
                 f"{run.elapsed_s:.0f} s (budget {budget_s:.0f} s)"
                 + (f"; history run {run_id}" if run_id else ""))
    printer.line("wrote " + ", ".join(str(p) for p in files))
    printer.close()


@json_command
def compare(
    ctx: typer.Context,
    a: str = typer.Argument(..., help="Run A: a bench or suite --out folder, its bench.json/suite.json, or history:ID."),
    b: str = typer.Argument(..., help="Run B, the same way."),
    history: Optional[Path] = typer.Option(None, help="Results history file for history:ID."),
    min_effect: float = typer.Option(0.05, callback=in_range(ge=0, lt=1), help="Smallest relative difference called real (0.05 = 5%)."),
    as_json: bool = JsonOpt,
) -> None:
    """Side-by-side ratios of two benchmark runs, with the noise shown."""
    from ..bench.compare import compare_results
    from ..store import load_results
    from ..report.compare_table import compare_table

    only_with(ctx, "a history:ID run", a.startswith("history:") or b.startswith("history:"), "history")
    a_name, a_cells = load_results(a, history=history)
    b_name, b_cells = load_results(b, history=history)
    printer = Printer(out, as_json=as_json, command="compare")
    printer.table(compare_table(compare_results(a_cells, b_cells, min_effect=min_effect), a_name, b_name))
    printer.close()


@json_command
def history(
    history: Optional[Path] = typer.Option(None, help="Results history file."),
    as_json: bool = JsonOpt,
) -> None:
    """List the runs stored in the results history (compare them with history:ID)."""
    from .. import store
    from ..report.history_table import history_table

    path = history or store.default_path()
    runs = store.list_runs(path, missing_ok=True)
    printer = Printer(out, as_json=as_json, command="history")
    if runs or as_json:  # the document has its table even when empty
        printer.table(history_table(runs, str(path)))
    if not runs:
        printer.line(f"no runs yet in the results history {path}: `edgeopt bench MODEL` or `edgeopt suite NAME` "
                     f"stores one (then `edgeopt compare history:ID history:ID`)")
    printer.close()
