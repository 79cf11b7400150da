"""``edgeopt apply``, ``prune`` and ``compress-size``: compression passes that write a model."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .._util.options import csv_items
from ..errors import EdgeoptError
from ..model import Model
from .options import ChannelsOpt, MeanOpt, ModelArg, ResizeShortOpt, ShapeOpt, StdOpt, load_data, preprocess_options

out = Console()


def _refuse_overwrite(out_file: Path, m: Model) -> None:
    if out_file.resolve() == Path(m.source).resolve():
        raise EdgeoptError(f"--out {out_file} is the input model: choose another file (inputs are never overwritten)")


def apply_cmd(
    model: str = ModelArg,
    passes: str = typer.Option(..., "--passes", help="Passes in order, comma-separated: cleanup, fp16, int8-static, int8-nncf, int8-dynamic."),
    images: Optional[Path] = typer.Option(None, help="Calibration images or inputs (folder: images, .npy/.npz samples, .wav/.flac) for int8-static / int8-nncf."),
    shape: Optional[List[str]] = ShapeOpt,
    out_file: Path = typer.Option(..., "--out", help="Output ONNX file (written atomically)."),
    mean: Optional[str] = MeanOpt,
    std: Optional[str] = StdOpt,
    channels: Optional[str] = ChannelsOpt,
    resize_short: Optional[int] = ResizeShortOpt,
) -> None:
    """Apply compression passes and write the resulting ONNX model."""
    m = edgeopt.load_model(model, shape=shape)
    _refuse_overwrite(out_file, m)
    calib = None
    if images is not None:
        m, calib = load_data(m, images, mean, std, channels, resize_short)
    result = edgeopt.apply_passes(m, csv_items(passes), calibration=calib)
    result.save(out_file)
    out.print(f"wrote {out_file} ({result.size_bytes:,} bytes, was {m.size_bytes:,}); passes: {', '.join(result.passes)}")


def prune_cmd(
    model: str = ModelArg,
    images: Path = typer.Option(..., help="Calibration images or inputs (folder: images, .npy/.npz samples, .wav/.flac): criteria, mean fold, sensitivity."),
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
    from ..passes.diagnostics.sensitivity import sensitivity_table
    from ..passes.prune import PruneConfig
    from ..report.plots import plot_sensitivity, plot_utilization_histograms
    from ..report.prune_table import print_prune, print_sensitivity

    m = edgeopt.load_model(model, shape=shape)
    _refuse_overwrite(out_file, m)
    if ratio is None and target_macs is None and criterion != "utilization":
        raise EdgeoptError("give --ratio R or --target-macs F (or --criterion utilization for its 5% threshold)")
    config = PruneConfig(ratio=ratio, target_macs=target_macs, criterion=criterion, scope=scope, round_to=round_to)
    m, calib = load_data(m, images, mean, std, channels, resize_short)
    pruned, report, sens = edgeopt.prune(m, calib, config=config,
                                         sensitivity_max_drop=max_drop if sensitivity else None)
    stem = out_file.with_suffix("")
    if sens is not None:
        print_sensitivity(sensitivity_table(sens, max_drop), out)
        plot_sensitivity(sens, stem.with_name(stem.name + "_sensitivity.png"))
    print_prune(report, out)
    if recover > 0:
        pruned, result = edgeopt.recover(m, pruned, calib, seconds=recover, lr=lr)
        out.print(f"distillation: top-1 agreement with the original on held-out images "
                  f"{result.agreement_before:.1f}% -> {result.agreement_after:.1f}% "
                  f"({len(result.history)} epochs, stopped: {result.stopped_because})")
    if report.utilization:
        plot_utilization_histograms(report.utilization, stem.with_name(stem.name + "_utilization.png"))
    pruned.save(out_file)
    out.print(f"wrote {out_file} ({pruned.size_bytes:,} bytes, was {m.size_bytes:,})")


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
    from ..passes.deep_compression import DeepCompressionConfig

    m = edgeopt.load_model(model, shape=shape)
    if finetune and images is None:
        raise EdgeoptError("--finetune trains on real images: pass --images DIR")
    config = DeepCompressionConfig(sparsity={"conv": conv_sparsity, "fc": fc_sparsity}, scope=scope,
                                   conv_bits=conv_bits, fc_bits=fc_bits, finetune=finetune)
    imageset = None
    if images is not None:
        m = preprocess_options(m, None, None, None, None)
        imageset = edgeopt.load_images(str(images), labels=m.labels)
    report = edgeopt.deep_compress(m, config=config, images=imageset)
    report.save_archive(out_file)
    if restored is not None:
        edgeopt.restore_compressed(m, report).save(restored)
    print(report.summary())
    out.print(f"wrote {out_file} ({report.archive_bytes:,} bytes, {report.ratio:.1f}x smaller than the ONNX file)"
              + (f" and {restored}" if restored else ""))
