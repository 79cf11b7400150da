"""Settings of the STE-trained ternary and binary weight passes: :class:`TernaryConfig`,
:class:`BinaryConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from ..distill.budget import TrainingBudget

TERNARY_NAME = "weights-ternary"
BINARY_NAME = "weights-binary"
#: ``BinaryConfig.activations`` values: float32 activations (BWN), or signs (XNOR-Net).
ACTIVATIONS = ("float", "binary")


@dataclass(frozen=True)
class TernaryConfig(TrainingBudget):
    """Settings of ``weights-ternary`` (all defaults valid): those of
    :class:`~edgeopt.passes.distill.budget.TrainingBudget` (``seconds`` of distillation
    through the straight-through estimator, 45 here; ``lr``, ``calibration_count``: 1000
    here, ``batch_size``, ``val_fraction``, ``seed``, ``max_epochs``), plus the layers left
    float32 and the storage width.

    Attributes:
        lr: 1e-3: the latent weights must cross the quantizer's thresholds to change a
            code, so it is 10x the 1e-4 that keeps a float network near its start
            (zoo:mobilenetv2-digits, ternary, 30 s: 68.5% test accuracy at 1e-4, 84.1% at
            1e-3).
        keep_first_last: leave the first conv and the last layer with weights float32,
            the convention of both papers (the input layer sees raw pixels, the
            classifier's few weights decide every score).
        keep_depthwise: leave grouped (depthwise) convs float32: with 9 weights per output
            channel one scale cannot fit them (zoo:mobilenetv2-digits, 30 s of training:
            binary 22% test accuracy with them quantized, 77% without; ternary 84% without).
            They hold few weights, so the file grows little.
        exclude: module names (as in ``named_modules()`` of the network after BatchNorm
            folding: e.g. "features.3.conv.0") also left float32.
        storage_bits: width of the stored codes: 2 (ONNX INT2, opset 25; ONNX Runtime
            reads it; OpenVINO 2026.4 refuses it, edgeopt's OpenVINO backend widens it to INT4
            as it reads it) or 4 (INT4, opset 21: a file for OpenVINO itself).
    """

    seconds: float = 45.0
    lr: float = 1e-3
    calibration_count: int = 1000
    keep_first_last: bool = True
    keep_depthwise: bool = True
    exclude: tuple[str, ...] = ()
    storage_bits: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", tuple(self.exclude))
        super().__post_init__()

    def checks(self) -> list[tuple[bool, str]]:
        return [*super().checks(),
                (self.storage_bits in (2, 4), "storage_bits must be 2 (INT2) or 4 (INT4, for OpenVINO)")]


@dataclass(frozen=True)
class BinaryConfig(TernaryConfig):
    """Settings of ``weights-binary``: as :class:`TernaryConfig`, plus

    Attributes:
        activations: "float" (BWN: binary weights, float32 activations, runs on every
            backend) or "binary" (XNOR-Net: the input of every binarized non-grouped
            conv binarized too, exported as OpenVINO's ``org.openvinotoolkit``
            FakeQuantize with levels=2 so the OpenVINO CPU plugin runs the conv as
            BinaryConvolution; ONNX Runtime cannot read that domain). "binary" stores
            the codes as INT4 (OpenVINO refuses INT2) whatever ``storage_bits``.
            BinaryConvolution has no dynamic-shape kernel: compile at a fixed batch (the
            openvino backend does). Measured on the digits test split after 30-45 s:
            zoo:seednet-digits 96.9-98.6% (fp32 98.9%) at 0.19-0.38x the fp32 p50,
            zoo:mobilenetv2-digits 82.2% (fp32 99.7%) at 1.1x (its 1x1 convs on 2x2 to
            16x16 maps gain nothing).
        clip: zero the STE gradient of latent weights with |w| > clip (BinaryConnect's
            [-1, 1] box); None passes every gradient. Off by default: the folded weights
            of a pretrained network are not in [-1, 1] (BatchNorm scales them):
            zoo:mobilenetv2-digits, 30 s, reached 32% test accuracy with clip=1 and 77%
            without (lr 3e-3 diverged: 11% for ternary).
    """

    activations: str = "float"
    clip: float | None = None

    def checks(self) -> list[tuple[bool, str]]:
        return [*super().checks(),
                (self.clip is None or self.clip > 0, f"clip must be > 0 or None, got {self.clip}"),
                (self.activations in ACTIVATIONS,
                 f"activations must be one of {ACTIVATIONS}, got {self.activations!r}")]
