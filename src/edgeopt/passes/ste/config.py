"""Settings of the STE-trained ternary and binary weight passes: :class:`TernaryConfig`,
:class:`BinaryConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import PassError

TERNARY_NAME = "weights-ternary"
BINARY_NAME = "weights-binary"
#: ``BinaryConfig.activations`` values: float32 activations (BWN), or signs (XNOR-Net).
ACTIVATIONS = ("float", "binary")


@dataclass(frozen=True)
class TernaryConfig:
    """Settings of ``weights-ternary`` (all defaults valid).

    Attributes:
        seconds: wall-time budget of the distillation that trains the latent float
            weights through the straight-through estimator (s, > 0); folding, the
            pre-training agreement and the export come on top.
        lr: AdamW learning rate of that training (> 0). The latent weights must cross
            the quantizer's thresholds to change a code, so it is 10x the 1e-4 that
            keeps a float network near its start (zoo:mobilenetv2-digits, ternary, 30 s:
            68.5% test accuracy at 1e-4, 84.1% at 1e-3).
        calibration_count: training images used, at most (>= 1); ``val_fraction`` of them
            are held out for the agreement that picks the best weights.
        batch_size: images per training step (>= 1).
        val_fraction: share held out (as :class:`~edgeopt.passes.distill.config.DistillConfig`).
        seed: seeds the hold-out, shuffling and augmentation.
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
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    keep_first_last: bool = True
    keep_depthwise: bool = True
    exclude: tuple[str, ...] = ()
    storage_bits: int = 2

    def __post_init__(self) -> None:
        object.__setattr__(self, "exclude", tuple(self.exclude))
        checks = [
            (self.seconds > 0, "seconds must be > 0"),
            (self.lr > 0, "lr must be > 0"),
            (self.calibration_count >= 1, "calibration_count must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.storage_bits in (2, 4), "storage_bits must be 2 (INT2) or 4 (INT4, for OpenVINO)"),
        ]
        for ok, fix in checks:
            if not ok:
                raise PassError(f"bad {type(self).__name__}: {fix}")


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

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.clip is not None and self.clip <= 0:
            raise PassError(f"bad BinaryConfig: clip must be > 0 or None, got {self.clip}")
        if self.activations not in ACTIVATIONS:
            raise PassError(f"bad BinaryConfig: activations must be one of {ACTIVATIONS}, "
                            f"got {self.activations!r}")
