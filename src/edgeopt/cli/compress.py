"""``edgeopt apply``, ``prune`` and ``compress-size``: compression passes that write a model."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.atomic import atomic_write_files, write_staged
from .._util.options import csv_items, csv_list
from .._util.outputs import check_outputs
from .._util.requires import require
from ..errors import EdgeoptError
from ..model import Model
from ..report.console_table import Printer
from .options import (
    ChannelsOpt,
    JsonOpt,
    MeanOpt,
    ModelArg,
    ResizeShortOpt,
    ShapeOpt,
    StdOpt,
    duration_option,
    in_range,
    json_command,
    load_data,
    only_with,
    preprocess_options,
)

out = Console()


def _check_torch_bridge(m: Model) -> None:
    """Pruning and training convert an ONNX graph to torch: check that onnx2torch imports
    before any image is read (a Model made from a torch module needs no conversion).

    Raises:
        EdgeoptError: onnx2torch or torch is missing (the message gives the install command).
    """
    from ..convert.onnx2torch_loader import import_onnx2torch

    if m.torch_module is None:
        import_onnx2torch()


def apply_cmd(
    ctx: typer.Context,
    model: str = ModelArg,
    passes: str = typer.Option(..., "--passes", help="Passes in order, comma-separated: cleanup, fp16, int8-static, int8-nncf, int8-dynamic, int8-ort-defaults, int8-nncf-defaults (the libraries' own settings); weight-only low-bit: weights-int4, weights-int2, weights-pow2 (smaller files, not faster: see README); qat (int8 by quantization-aware training, distilled from the original on --images); weights-ternary, weights-binary (2-bit / 1-bit weights trained the same way on --images)."),
    images: Optional[Path] = typer.Option(None, help="Calibration images or inputs (folder: images, .npy/.npz samples, .wav/.flac) for the calibrated int8 passes (int8-static, int8-nncf, int8-*-defaults)."),
    exclude_nodes: Optional[str] = typer.Option(None, "--exclude-nodes", help="int8: node names to keep in float, comma-separated (as the ONNX file and the int8 per-layer error report name them)."),
    int8_op_types: Optional[str] = typer.Option(None, "--int8-op-types", help="int8: op types to quantize, comma-separated, e.g. Conv,MatMul (default: int8-static and int8-nncf all they support, int8-dynamic MatMul, or Conv in a graph without MatMul/Gemm)."),
    no_preprocess: bool = typer.Option(False, "--no-preprocess", help="int8-static: quantize the graph as given, without ONNX Runtime's pre-processing (by default tried first, and dropped when it fails)."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Output ONNX file (written atomically)."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
) -> None:
    """Apply compression passes and write the resulting ONNX model."""
    from ..data.feeds import calibration_data
    from ..passes.base import check_packages, run_pass
    from ..passes.quantize import read_note

    names = csv_list(passes, "--passes", "cleanup,int8-static")
    for name in names:
        check_packages(name)
    only_with(ctx, "--images DIR", images is not None, "mean", "std", "channels", "resize_short")
    _refuse_unused_images(names, images)
    check_outputs(inputs=(model, images), files=[("--out", out_file)])
    m = edgeopt.load_model(model, shape=shape)
    configs = _pass_configs(names, {
        "--exclude-nodes": (("nodes_to_exclude", "ignored_nodes"),
                            None if exclude_nodes is None else tuple(csv_items(exclude_nodes))),
        "--int8-op-types": (("op_types",), None if int8_op_types is None
                            else tuple(csv_list(int8_op_types, "--int8-op-types", "Conv,MatMul"))),
        "--no-preprocess": (("preprocess",), False if no_preprocess else None),
    })
    tensor = data = None
    if images is not None:
        m, data = load_data(m, images, mean, std, channels, resize_short)
        tensor = calibration_data(m, data)
    result = m
    for name in names:
        result = run_pass(name, result, configs.get(name), calibration=tensor)
    result.save(out_file)
    out.print(f"wrote {out_file} ({result.size_bytes:,} bytes, was {m.size_bytes:,}); passes: {', '.join(result.passes)}")
    note = read_note(result)
    if note:
        out.print(note)
    if data is not None:
        _print_agreement(m, result, data)


def _print_agreement(original: Model, result: Model, data) -> None:
    """How far the written model agrees with the original on the --images, in the task's
    own measure as optimize judges it (top-1 agreement for a classifier,
    :mod:`edgeopt.evaluate.tasks`), both run on ONNX Runtime; a warning on stderr when it
    lost more than the task's default budget (1 point of agreement for a classifier)."""
    from ..evaluate.runner import predict_outputs
    from ..evaluate.tasks import make
    from ..evaluate.tasks.infer import infer_task

    evaluator = make(infer_task(original).task, original)
    reference, outputs = (predict_outputs(x, "ort", data) for x in (original, result))
    score = evaluator.score(reference, outputs)
    out.print(f"{score.metric} with the original on the {len(data)} --images (the calibration images; held-out "
              f"images may agree less): {score.value:.2f}{'' if score.unit == '%' else ' '}{score.unit}, "
              f"{score.drop:.2f} {score.drop_unit} lost")
    budget = evaluator.default_tolerance
    if score.drop > budget:
        typer.echo(f"edgeopt: warning: {', '.join(result.passes)} lost {score.drop:.2f} {score.drop_unit} of "
                   f"{score.metric} (> {budget:g}): check it on your own data, or let `edgeopt optimize` choose "
                   f"a recipe within a quality budget", err=True)


def _refuse_unused_images(names: list[str], images: Path | None) -> None:
    """Refuse --images when none of the passes calibrates with them (they would be read
    and ignored).

    Raises:
        EdgeoptError: the message names the passes that take images.
    """
    from ..passes.base import CALIBRATION, get
    from ..passes.base import names as pass_names

    def calibrates(name: str) -> bool:
        spec = get(name)
        return CALIBRATION in spec.requires or CALIBRATION in spec.accepts

    if images is not None and not any(calibrates(n) for n in names):
        raise EdgeoptError(f"--images calibrates {', '.join(n for n in pass_names() if calibrates(n))}, which "
                           f"--passes {','.join(names)} does not include: add one of them or drop --images")


def _pass_configs(names: list[str], options: dict[str, tuple[tuple[str, ...], object]]) -> dict[str, object]:
    """{pass name: its config with the options given} for the passes that take any of them.

    Args:
        options: {flag: (config field names it sets, value or None when not given)}.

    Raises:
        EdgeoptError: an option given reaches none of the passes (the message says which
            passes take it).
    """
    from ..passes.base import config_with, get
    from ..passes.base import names as pass_names

    configs: dict[str, object] = {}
    reached: set[str] = set()
    for name in dict.fromkeys(names):
        values = {f: value for fields, value in options.values() if value is not None for f in fields}
        if not values:
            break
        config, used = config_with(name, values)
        if used:
            configs[name] = config
            reached |= {flag for flag, (fields, value) in options.items() if value is not None and used & set(fields)}
    missed = [flag for flag, (_, value) in options.items() if value is not None and flag not in reached]
    if missed:
        fields = set(options[missed[0]][0])
        takers = [n for n in pass_names() if fields & {f.name for f in dataclasses.fields(get(n).load()[1])}]
        raise EdgeoptError(f"{missed[0]} applies to {', '.join(takers)}, which --passes {','.join(names)} "
                           f"does not include: add one of them or drop {missed[0]}")
    return configs


@json_command
def prune_cmd(
    ctx: typer.Context,
    model: str = ModelArg,
    images: Path = typer.Option(..., help="Calibration images or inputs (folder: images, .npy/.npz samples, .wav/.flac): criteria, mean fold, sensitivity."),
    ratio: Optional[float] = typer.Option(None, callback=in_range(gt=0, lt=1, example=0.5), help="Fraction of channels to remove (0..1)."),
    target_macs: Optional[float] = typer.Option(None, callback=in_range(gt=0, lt=1, example=0.5), help="Fraction of MACs to remove, e.g. 0.5."),
    criterion: str = typer.Option("l1", help="l1, bn-scale, utilization or taylor."),
    scope: str = typer.Option("global", help="global (rank channels across layers) or uniform (same ratio per layer)."),
    round_to: int = typer.Option(8, callback=in_range(ge=1), help="Keep channel counts multiples of this (8 keeps ORT's blocked conv layout on AVX2)."),
    max_layer_ratio: float = typer.Option(0.9, callback=in_range(gt=0, lt=1), help="No layer loses more than this fraction of its channels (0..1); raise it when a --target-macs cannot be reached."),
    sensitivity: bool = typer.Option(False, "--sensitivity", help="First measure each layer's quality drop as its own ratio grows; spare sensitive layers."),
    max_drop: float = typer.Option(1.0, callback=in_range(ge=0, le=100), help="With --sensitivity: a layer may lose at most this many points of agreement."),
    recover: float = duration_option("0", zero=True, help="Then distill from the original on --images for this long (labels, when the folder has them, add cross-entropy; 0: no distillation)."),
    lr: float = typer.Option(1e-4, callback=in_range(gt=0), help="Distillation learning rate (1e-4 for pretrained nets; 1e-3 for small nets)."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Output ONNX file (written atomically); plots go beside it."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
    as_json: bool = JsonOpt,
) -> None:
    """Structured channel pruning (Torch-Pruning dependency graph); the output layer keeps its classes."""
    from ..passes.base import check_packages
    from ..passes.diagnostics.sensitivity import sensitivity_table
    from ..passes.prune import PruneConfig
    from ..report.plots import plot_sensitivity, plot_utilization_histograms
    from ..report.prune_table import prune_table, sensitivity_table as sensitivity_rows

    only_with(ctx, "--sensitivity", sensitivity, "max_drop")
    only_with(ctx, "--recover DURATION", recover > 0, "lr")
    for name in ("prune", "distill") if recover > 0 else ("prune",):
        check_packages(name)
    stem = out_file.with_suffix("")
    plots = {"sensitivity": stem.with_name(stem.name + "_sensitivity.png"),
             "utilization": stem.with_name(stem.name + "_utilization.png")}
    check_outputs(inputs=(model, images), files=[("--out", p) for p in (out_file, *plots.values())])
    m = edgeopt.load_model(model, shape=shape)
    _check_torch_bridge(m)
    if ratio is None and target_macs is None and criterion != "utilization":
        raise EdgeoptError("give --ratio R or --target-macs F (or --criterion utilization for its 5% threshold)")
    config = PruneConfig(ratio=ratio, target_macs=target_macs, criterion=criterion, scope=scope, round_to=round_to,
                         max_layer_ratio=max_layer_ratio)
    m, calib = load_data(m, images, mean, std, channels, resize_short)
    pruned, report, sens = edgeopt.prune(m, calib, config=config,
                                         sensitivity_max_drop=max_drop if sensitivity else None)
    printer = Printer(out, as_json=as_json, command="prune")
    if sens is not None:
        printer.table(sensitivity_rows(sensitivity_table(sens, max_drop)))
    printer.table(prune_table(report))
    if recover > 0:
        pruned, result = edgeopt.recover(m, pruned, calib, seconds=recover, lr=lr)
        printer.line(f"distillation: top-1 agreement with the original on held-out images "
                  f"{result.agreement_before:.1f}% -> {result.agreement_after:.1f}% "
                  f"({len(result.history)} epochs, stopped: {result.stopped_because})")

    def write(staging: Path) -> dict[str, Path]:  # the model and its plots: all or none
        files = {"model": pruned.save(staging / out_file.name)}
        if sens is not None:
            files["sensitivity"] = plot_sensitivity(sens, staging / plots["sensitivity"].name)
        if report.utilization:
            files["utilization"] = plot_utilization_histograms(report.utilization,
                                                               staging / plots["utilization"].name)
        return files

    written = write_staged(out_file.parent, write, label=f"--out {out_file}")
    printer.line(f"wrote {out_file} ({pruned.size_bytes:,} bytes, was {m.size_bytes:,})"
                 + "".join(f", {p}" for k, p in written.items() if k != "model"))
    printer.close()


@json_command
def compress_size_cmd(
    ctx: typer.Context,
    model: str = ModelArg,
    conv_sparsity: float = typer.Option(0.65, callback=in_range(ge=0, lt=1), help="Fraction of Conv weights set to zero (paper, AlexNet: ~0.65)."),
    fc_sparsity: float = typer.Option(0.91, callback=in_range(ge=0, lt=1), help="Fraction of Gemm/MatMul weights set to zero (paper: ~0.91)."),
    scope: str = typer.Option("layer", help="layer (each layer its own rate, as the paper) or global (one magnitude threshold per kind: can empty a layer whose weights are small)."),
    conv_bits: int = typer.Option(8, callback=in_range(ge=2, le=16), help="Codebook index bits for Conv weights (2^b centroids)."),
    fc_bits: int = typer.Option(5, callback=in_range(ge=2, le=16), help="Codebook index bits for Gemm/MatMul weights."),
    min_params: int = typer.Option(1000, "--min-params", callback=in_range(ge=1),
                                   help="Weights with fewer elements stay dense float32 (a codebook would cost more than it saves)."),
    finetune: bool = typer.Option(False, "--finetune", help="Retrain kept weights and centroids by distillation from the original (needs --images)."),
    retrain_epochs: int = typer.Option(5, "--retrain-epochs", callback=in_range(ge=0), help="--finetune: passes retraining the weights that survive pruning (paper, section 2; 0 skips it)."),
    finetune_epochs: int = typer.Option(5, "--finetune-epochs", callback=in_range(ge=0), help="--finetune: passes fine-tuning the shared centroids after k-means (paper, section 3.3; 0 skips it)."),
    finetune_lr: float = typer.Option(1e-3, "--finetune-lr", callback=in_range(gt=0), help="--finetune: Adam step, times each layer's largest |weight| or |centroid|."),
    finetune_time: float = duration_option("60s", "--finetune-time", help="--finetune: wall-time budget of each of the two trainings."),
    images: Optional[Path] = typer.Option(None, help="Images for --finetune (one sub-folder per class adds cross-entropy to the distillation)."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Compressed archive (written atomically)."),
    restored: Optional[Path] = typer.Option(None, help="Also write the restored dense ONNX model here."),
    as_json: bool = JsonOpt,
) -> None:
    """Deep Compression (Han et al. 2016) for storage: pruning, k-means weight sharing, Huffman coding."""
    from ..passes.deep_compression import DeepCompressionConfig
    from ..report.compress_table import layers_table, stages_table

    only_with(ctx, "--finetune", finetune, "images", "retrain_epochs", "finetune_epochs", "finetune_lr", "finetune_time")
    check_outputs(inputs=(model, images), files=[("--out", out_file), ("--restored", restored)])
    if finetune and images is None:
        raise EdgeoptError("--finetune trains on real images: pass --images DIR")
    if finetune:
        require("torch", "--finetune")
    m = edgeopt.load_model(model, shape=shape)
    if finetune:
        _check_torch_bridge(m)
    config = DeepCompressionConfig(sparsity={"conv": conv_sparsity, "fc": fc_sparsity}, scope=scope,
                                   conv_bits=conv_bits, fc_bits=fc_bits, min_params=min_params, finetune=finetune,
                                   retrain_epochs=retrain_epochs, finetune_epochs=finetune_epochs,
                                   finetune_lr=finetune_lr, finetune_seconds=finetune_time)
    imageset = None
    if images is not None:
        imageset = edgeopt.load_images(str(images), labels=m.labels)  # first: no warning before its error
        m = preprocess_options(m, None, None, None, None)
    report = edgeopt.deep_compress(m, config=config, images=imageset)
    files = {out_file: report.archive.to_bytes()}
    if restored is not None:
        files[restored] = edgeopt.restore_compressed(m, report).serialized()
    atomic_write_files(files)  # the archive and the restored model: both or neither
    printer = Printer(out, as_json=as_json, command="compress-size")
    printer.table(stages_table(report), layers_table(report))
    printer.line(f"wrote {out_file} ({report.archive_bytes:,} bytes, {report.ratio:.1f}x smaller than the ONNX file)"
                 + (f" and {restored}" if restored else ""))
    printer.close()
