"""Deep Compression for storage size: pruning, trained weight sharing, Huffman coding.

Han, Mao, Dally, "Deep Compression: Compressing Deep Neural Networks with Pruning,
Trained Quantization and Huffman Coding", ICLR 2016. The three stages, on the Conv /
Gemm / MatMul weights of an ONNX model:

1. unstructured magnitude pruning (:mod:`.sparsity`), stored as a sparse list with
   relative indices of ``index_bits`` bits (8 conv / 5 fc in the paper);
2. weight sharing (:mod:`.codebook`): per layer a k-means codebook of ``2**bits``
   values (8 conv / 5 fc in the paper), linear initialisation, optional centroid
   fine-tuning by distillation from the original model;
3. canonical Huffman coding of the codebook indices and of the gaps (:mod:`.huffman`).

:func:`compress` returns a :class:`CompressionReport` with the bytes after each stage
and the compressed :class:`~.archive.Archive`; :func:`restore` turns an archive back into
a dense ONNX model. Unstructured sparsity saves storage, not time: the restored model is
dense and runs at the original speed unless a backend has sparse kernels.
"""

from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import onnx
from onnx import numpy_helper

from ...errors import PassError
from ..base import check_calibration, finish
from ..._util.onnxgraph import copy_proto
from .archive import Archive, ArchiveError, CompressedLayer, read_archive, restore
from .codebook import (CODEBOOK_DTYPES, SharedWeights, TunedTensor, finetune_codebooks,
                       match_parameters, share_weights)
from .huffman import encode
from .sparsity import WeightLayer, magnitude_masks, resolve_rates, to_relative, weight_layers

if TYPE_CHECKING:
    from ...model import Model

__all__ = [
    "DeepCompressionConfig", "CompressionReport", "LayerReport", "Archive", "ArchiveError",
    "compress", "restore", "read_archive", "apply", "PASS_NAME", "SPEED_NOTE",
]

PASS_NAME = "deep-compression"
SPEED_NOTE = ("Unstructured sparsity and weight sharing save storage, not time: the restored "
              "model is dense float32 and runs at the original speed on ONNX Runtime and "
              "OpenVINO CPU, which have no sparse kernels for it.")


@dataclass(frozen=True)
class DeepCompressionConfig:
    """Settings of :func:`compress` (defaults: the paper's AlexNet bit widths).

    Attributes:
        sparsity: fraction of weights set to zero, in [0, 1): one float for every layer,
            or a mapping from a weight initializer or node name, "conv", "fc" or
            "default" to a fraction (most specific key wins; layers not covered are not
            pruned). Stored as a sorted tuple of (key, fraction) pairs when a mapping.
        scope: "layer" (each layer reaches its own sparsity) or "global" (layers sharing
            a key share one magnitude threshold).
        conv_bits: codebook index bits for Conv weights (paper: 8).
        fc_bits: codebook index bits for Gemm/MatMul weights (paper: 5).
        index_bits_conv: relative-position bits for Conv weights (paper: 8).
        index_bits_fc: relative-position bits for Gemm/MatMul weights (paper: 5).
        codebook_dtype: "float32" or "float16" storage of the centroids.
        min_params: weights with fewer elements stay uncompressed float32 (their
            codebook and tables would cost more than they save).
        finetune: train by distillation from the original (dense) model on the
            calibration images, as the paper retrains: first the surviving weights
            after pruning (section 2; pruned weights stay zero), then, after k-means,
            the shared centroids (section 3.3; assignments fixed). Needs torch and a
            module: ``model.torch_module`` or ``edgeopt.convert.bridge.to_torch``.
        retrain_epochs: passes of the pruned-weight retraining (0 skips it).
        finetune_epochs: passes of the centroid fine-tuning (0 skips it).
        finetune_lr: Adam step, times each layer's largest |weight| or |centroid|.
        finetune_seconds: wall-clock budget of each of the two trainings, seconds.
    """

    sparsity: float | Mapping[str, float] | tuple[tuple[str, float], ...] = 0.9
    scope: str = "layer"
    conv_bits: int = 8
    fc_bits: int = 5
    index_bits_conv: int = 8
    index_bits_fc: int = 5
    codebook_dtype: str = "float32"
    min_params: int = 1000
    finetune: bool = False
    retrain_epochs: int = 5
    finetune_epochs: int = 5
    finetune_lr: float = 1e-3
    finetune_seconds: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.sparsity, Mapping):
            object.__setattr__(self, "sparsity", tuple(sorted((str(k), float(v)) for k, v in self.sparsity.items())))
        elif isinstance(self.sparsity, tuple):
            object.__setattr__(self, "sparsity", tuple((str(k), float(v)) for k, v in self.sparsity))
        if self.scope not in ("layer", "global"):
            raise PassError(f"scope {self.scope!r} is not 'layer' or 'global': pass one of those")
        for name in ("conv_bits", "fc_bits"):
            if not 2 <= getattr(self, name) <= 16:
                raise PassError(f"{name} = {getattr(self, name)} is not in 2..16: pass e.g. 5 or 8")
        for name in ("index_bits_conv", "index_bits_fc"):
            if not 1 <= getattr(self, name) <= 16:
                raise PassError(f"{name} = {getattr(self, name)} is not in 1..16: pass e.g. 5 or 8")
        if self.codebook_dtype not in CODEBOOK_DTYPES:
            raise PassError(f"codebook_dtype {self.codebook_dtype!r} is not one of "
                            f"{CODEBOOK_DTYPES}: pick one")

    def sparsity_spec(self) -> float | dict[str, float]:
        """``sparsity`` as a float or a dict (the form :func:`resolve_rates` takes)."""
        return dict(self.sparsity) if isinstance(self.sparsity, tuple) else float(self.sparsity)

    def bits(self, kind: str) -> tuple[int, int]:
        """(codebook index bits, relative-position bits) for a "conv" or "fc" layer."""
        if kind == "conv":
            return self.conv_bits, self.index_bits_conv
        return self.fc_bits, self.index_bits_fc


@dataclass(frozen=True)
class LayerReport:
    """Sizes of one compressed weight after each stage.

    Attributes:
        name, node, op_type, kind, shape: the weight (see ``sparsity.WeightLayer``).
        params: number of weights.
        nnz: non-zero weights kept.
        fillers: filler entries added for gaps of ``2**index_bits`` or more zeros.
        bits, index_bits: codebook index bits and relative-position bits.
        codebook_size: centroids stored (<= 2**bits).
        dense_bytes: 4 * params (float32).
        pruned_bytes: ceil(entries * (32 + index_bits) / 8), entries = nnz + fillers
            (sparse float32 values with relative indices).
        shared_bytes: ceil(entries * (bits + index_bits) / 8) + codebook bytes.
        huffman_bytes: both Huffman bit streams + both code-length tables (one byte per
            symbol) + codebook bytes.
    """

    name: str
    node: str
    op_type: str
    kind: str
    shape: tuple[int, ...]
    params: int
    nnz: int
    fillers: int
    bits: int
    index_bits: int
    codebook_size: int
    dense_bytes: int
    pruned_bytes: int
    shared_bytes: int
    huffman_bytes: int

    @property
    def sparsity(self) -> float:
        """Fraction of weights that are zero after pruning."""
        return 1.0 - self.nnz / self.params if self.params else 0.0


@dataclass
class CompressionReport:
    """What :func:`compress` did, with the bytes after each stage.

    Stage totals are whole-model sizes comparable with the ONNX file: the compressed
    layers at that stage plus ``rest_bytes`` (the graph with its other tensors, biases
    and small weights, in float32, serialized as ONNX without the compressed weights).

    Attributes:
        config: the settings used.
        model_name: display name of the input model.
        layers: one LayerReport per compressed weight.
        skipped: weights left dense because they have fewer than ``min_params`` elements.
        original_bytes: size of the input ONNX file (float32).
        rest_bytes: size of the weightless ONNX graph stored in the archive.
        archive: the compressed model.
        archive_bytes: size of the archive file (header and checksum included).
        finetuned: True when the pruned weights and centroids were trained (``finetune``).
    """

    config: DeepCompressionConfig
    model_name: str
    layers: list[LayerReport]
    skipped: list[str]
    original_bytes: int
    rest_bytes: int
    archive: Archive
    archive_bytes: int
    finetuned: bool = False

    @property
    def pruned_bytes(self) -> int:
        """Model bytes after pruning (sparse float32 + relative indices)."""
        return self.rest_bytes + sum(l.pruned_bytes for l in self.layers)

    @property
    def shared_bytes(self) -> int:
        """Model bytes after weight sharing (b-bit indices + codebooks)."""
        return self.rest_bytes + sum(l.shared_bytes for l in self.layers)

    @property
    def huffman_bytes(self) -> int:
        """Model bytes after Huffman coding (streams + tables + codebooks)."""
        return self.rest_bytes + sum(l.huffman_bytes for l in self.layers)

    @property
    def ratio(self) -> float:
        """original ONNX bytes / archive bytes."""
        return self.original_bytes / self.archive_bytes

    @property
    def sparsity(self) -> float:
        """Fraction of zero weights over the compressed layers."""
        params = sum(l.params for l in self.layers)
        return 1.0 - sum(l.nnz for l in self.layers) / params if params else 0.0

    def stages(self) -> list[tuple[str, int]]:
        """(stage, bytes) in pipeline order, original first, archive file last."""
        return [("original fp32 ONNX", self.original_bytes), ("pruned (sparse fp32)", self.pruned_bytes),
                ("weight sharing", self.shared_bytes), ("Huffman", self.huffman_bytes),
                ("archive file", self.archive_bytes)]

    def save_archive(self, path: str | os.PathLike) -> Path:
        """Write the archive file atomically; returns the path."""
        return self.archive.save(path)

    def restored_proto(self) -> onnx.ModelProto:
        """The dense ONNX model rebuilt from the archive (see :func:`restore`)."""
        return restore(self.archive)

    def to_dict(self) -> dict:
        """JSON-ready summary: config, stage bytes, ratios and the per-layer table."""
        return {
            "config": dataclasses.asdict(self.config),
            "model": self.model_name,
            "stages": [{"stage": s, "bytes": b, "ratio": self.original_bytes / b} for s, b in self.stages()],
            "ratio": self.ratio,
            "sparsity": self.sparsity,
            "finetuned": self.finetuned,
            "skipped": list(self.skipped),
            "layers": [dict(dataclasses.asdict(l), sparsity=l.sparsity) for l in self.layers],
            "note": SPEED_NOTE,
        }

    def summary(self) -> str:
        """A plain-text report: stage table, per-layer table and the speed note."""
        lines = [f"Deep Compression of {self.model_name}"]
        for stage, n in self.stages():
            lines.append(f"  {stage:<22} {n:>12,d} B  {self.original_bytes / n:7.1f}x")
        lines.append(f"  {'layer':<40} {'params':>9} {'sparsity':>8} {'bits':>4} {'idx':>3} "
                     f"{'fp32 B':>9} {'pruned B':>9} {'shared B':>9} {'huffman B':>9}")
        for l in self.layers:
            lines.append(f"  {l.name[:40]:<40} {l.params:>9,d} {l.sparsity:>8.1%} {l.bits:>4} "
                         f"{l.index_bits:>3} {l.dense_bytes:>9,d} {l.pruned_bytes:>9,d} "
                         f"{l.shared_bytes:>9,d} {l.huffman_bytes:>9,d}")
        if self.skipped:
            lines.append(f"  left dense (< {self.config.min_params} params): {len(self.skipped)} weights")
        lines.append(SPEED_NOTE)
        return "\n".join(lines)


def compress(model: "Model", config: DeepCompressionConfig | None = None,
             calibration: np.ndarray | None = None,
             labels: np.ndarray | None = None) -> CompressionReport:
    """Deep-compress the Conv/Gemm/MatMul weights of ``model`` into an archive.

    Args:
        model: the input Model (not modified).
        config: settings; None for the defaults.
        calibration: float32 (N, C, H, W) preprocessed images, required only when
            ``config.finetune`` (the uncompressed model is the teacher).
        labels: optional int (N,) classes of ``calibration``; fine-tuning then adds
            cross-entropy to the distillation loss.

    Returns:
        a CompressionReport; ``report.archive`` holds the result, ``report.ratio`` is
        the ONNX file size over the archive size.

    Raises:
        PassError: bad sparsity keys or rates, no weight to compress, fine-tuning
            without calibration images or a torch module, labels that do not fit.
        DataError: calibration images that do not fit the model.
    """
    config = config or DeepCompressionConfig()
    proto = copy_proto(model.proto)
    layers, skipped, rates = _select_layers(proto, config, model.name)
    inits = {i.name: i for i in proto.graph.initializer}
    weights = {l.name: numpy_helper.to_array(inits[l.name]).astype(np.float32) for l in layers}
    masks = magnitude_masks(weights, rates, config.scope)
    positions, entries, values = _sparse_entries(layers, weights, masks, config)
    tuner = _Tuner(model, config, calibration, labels, layers, weights, positions) if config.finetune else None
    shared = _shared_weights(layers, values, entries, config, tuner)
    compressed, reports = [], []
    for l in layers:
        layer, report = _encode(l, entries[l.name], shared[l.name], int(positions[l.name].size), config)
        compressed.append(layer)
        reports.append(report)
        _clear_data(inits[l.name])
    archive = Archive(proto.SerializeToString(), tuple(compressed))
    return CompressionReport(
        config=config, model_name=model.name, layers=reports, skipped=skipped,
        original_bytes=model.size_bytes, rest_bytes=len(archive.graph), archive=archive,
        archive_bytes=len(archive.to_bytes()), finetuned=tuner is not None,
    )


def _select_layers(proto: onnx.ModelProto, config: DeepCompressionConfig, model_name: str
                   ) -> tuple[list[WeightLayer], list[str], dict[str, tuple[float, str]]]:
    """(layers to compress, names of those left dense, {name: (sparsity, source key)}).

    Raises:
        PassError: bad sparsity keys or rates, or no weight with ``min_params`` elements.
    """
    candidates = weight_layers(proto)
    rates = resolve_rates(candidates, config.sparsity_spec())
    layers = [l for l in candidates if l.size >= config.min_params]
    skipped = [l.name for l in candidates if l.size < config.min_params]
    if not layers:
        raise PassError(f"{model_name} has no Conv/Gemm/MatMul weight with >= {config.min_params} "
                        f"params: lower min_params (edgeopt compress-size --min-params)")
    return layers, skipped, rates


def _sparse_entries(layers: list[WeightLayer], weights: dict[str, np.ndarray],
                    masks: dict[str, np.ndarray], config: DeepCompressionConfig):
    """Stage 1's sparse form of each layer: (flat positions of the kept non-zeros,
    (relative gaps, filler flags), kept values), each a {layer name: array}."""
    positions: dict[str, np.ndarray] = {}
    entries: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    values: dict[str, np.ndarray] = {}
    for l in layers:
        w = weights[l.name].ravel()
        pos = np.flatnonzero(masks[l.name].ravel() & (w != 0))
        positions[l.name], values[l.name] = pos, w[pos]
        entries[l.name] = to_relative(pos, config.bits(l.kind)[1])
    return positions, entries, values


def _shared_weights(layers: list[WeightLayer], values: dict[str, np.ndarray],
                    entries: dict[str, tuple[np.ndarray, np.ndarray]], config: DeepCompressionConfig,
                    tuner: "_Tuner | None") -> dict[str, SharedWeights]:
    """Stage 2: retrain the kept weights (paper section 2), cluster each layer into its
    codebook (slot 0 reserved for zero when it has fillers), fine-tune the centroids
    (section 3.3); the trainings only with a tuner."""
    if tuner is not None and config.retrain_epochs > 0:
        # Paper section 2: retrain the surviving weights before clustering them.
        identity = {n: SharedWeights(v.astype(np.float32), np.arange(v.size), False)
                    for n, v in values.items()}
        values = dict(values)
        values.update({n: sw.codebook[sw.labels] for n, sw in
                       tuner.run(identity, config.retrain_epochs).items()})
    shared = {l.name: share_weights(values[l.name], config.bits(l.kind)[0],
                                    zero_slot=bool(entries[l.name][1].any()),
                                    dtype=config.codebook_dtype) for l in layers}
    if tuner is not None and config.finetune_epochs > 0:
        shared.update(tuner.run(shared, config.finetune_epochs))
    return shared


def _encode(l: WeightLayer, entries: tuple[np.ndarray, np.ndarray], sw: SharedWeights, nnz: int,
            config: DeepCompressionConfig) -> tuple[CompressedLayer, LayerReport]:
    """Stage 3: Huffman-code a layer's codebook indices and gaps; its sizes at each stage."""
    bits, index_bits = config.bits(l.kind)
    gaps, is_filler = entries
    symbols = np.zeros(gaps.size, dtype=np.int64)  # fillers use slot 0, the reserved zero
    symbols[~is_filler] = sw.labels
    index, gap = encode(symbols, 1 << bits), encode(gaps, 1 << index_bits)
    n = int(gaps.size)
    cb = sw.codebook.nbytes
    report = LayerReport(
        name=l.name, node=l.node, op_type=l.op_type, kind=l.kind, shape=l.shape,
        params=l.size, nnz=nnz, fillers=int(is_filler.sum()),
        bits=bits, index_bits=index_bits, codebook_size=int(sw.codebook.size),
        dense_bytes=4 * l.size,
        pruned_bytes=math.ceil(n * (32 + index_bits) / 8),
        shared_bytes=math.ceil(n * (bits + index_bits) / 8) + cb,
        huffman_bytes=len(index.data) + len(gap.data) + index.table_bytes + gap.table_bytes + cb,
    )
    return CompressedLayer(l.name, l.shape, sw.codebook, index, gap), report


def _clear_data(tensor: onnx.TensorProto) -> None:
    """Drop a tensor's data, keeping name, type and dims (the archive's placeholder)."""
    for field in ("raw_data", "float_data", "int32_data", "int64_data", "double_data",
                  "uint64_data", "string_data"):
        tensor.ClearField(field)
    tensor.data_location = onnx.TensorProto.DEFAULT
    del tensor.external_data[:]


class _Tuner:
    """Distillation of shared layers through the model's torch module (see codebook.py)."""

    def __init__(self, model: "Model", config: DeepCompressionConfig, calibration: np.ndarray | None,
                 labels: np.ndarray | None, layers: list[WeightLayer], weights: dict[str, np.ndarray],
                 positions: dict[str, np.ndarray]) -> None:
        if calibration is None:
            raise PassError("Deep Compression fine-tuning needs calibration images: pass "
                            "calibration=... (float32 N,C,H,W) or set finetune=False")
        self.images = check_calibration(model, calibration, PASS_NAME)
        self.labels = labels
        module = model.torch_module
        if module is None:
            try:
                from ...convert.bridge import to_torch
            except ImportError:
                raise PassError(f"{model.name} has no torch module to fine-tune: load it from "
                                f"PyTorch or set finetune=False") from None
            module = to_torch(model)
        self.module, self.config = module, config
        matched = match_parameters(module, weights)
        if not matched:
            raise PassError(f"no torch parameter of {model.name}'s module matches its ONNX "
                            f"weights: set finetune=False")
        # (onnx name, param, transpose, shape, positions) of each layer the module holds.
        self.targets = [(l.name, *matched[l.name], l.shape, positions[l.name])
                        for l in layers if l.name in matched]

    def run(self, shared: dict[str, SharedWeights], epochs: int) -> dict[str, SharedWeights]:
        """Tuned copies of ``shared`` (tables trained, assignments fixed)."""
        tensors = [TunedTensor(p, t, shape, pos, shared[n]) for n, p, t, shape, pos in self.targets]
        tuned = finetune_codebooks(self.module, tensors, self.images, epochs=epochs,
                                   lr=self.config.finetune_lr, seconds=self.config.finetune_seconds,
                                   labels=self.labels)
        return {n: dataclasses.replace(shared[n], codebook=cb)
                for (n, *_), cb in zip(self.targets, tuned)}


def apply(model: "Model", config: DeepCompressionConfig | None = None,
          calibration: np.ndarray | None = None, labels: np.ndarray | None = None) -> "Model":
    """The pass form: compress, then restore to a dense Model (any backend runs it).

    The restored Model has the same graph, inputs and outputs, with each compressed
    weight replaced by its pruned, codebook-quantized values. It is as large and as
    fast as the input; the size saving is in the archive (use :func:`compress`).

    Raises:
        see :func:`compress`.
    """
    report = compress(model, config, calibration, labels)
    return finish(model, report.restored_proto(), PASS_NAME)
