"""seednet: the small CNN of the seed Raspberry Pi study (Caffe / TensorFlow / MXNet timing).

Input 1x88x88 grayscale; conv 16@7x7, ReLU, max-pool 2x2; conv 48@6x6, ReLU, max-pool
3x3; conv 96@5x5, ReLU; FC 128; FC 848; softmax. 1,039,744 parameters, 49,371,200 MACs.
Weights are random from a fixed seed: the model exists for speed studies, not accuracy.
"""

from __future__ import annotations

import torch
from torch import nn


class SeedNet(nn.Module):
    """The seed study's CNN. Input (N, 1, 88, 88) float32; output (N, 848) probabilities."""

    def __init__(self, num_classes: int = 848) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 7), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(16, 48, 6), nn.ReLU(inplace=True), nn.MaxPool2d(3),
            nn.Conv2d(48, 96, 5), nn.ReLU(inplace=True),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(96 * 8 * 8, 128), nn.Linear(128, num_classes),
            nn.Softmax(dim=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build(seed: int = 0) -> SeedNet:
    """SeedNet with weights drawn from ``torch.manual_seed(seed)`` (deterministic)."""
    gen = torch.Generator().manual_seed(seed)
    net = SeedNet()
    with torch.no_grad():
        for p in net.parameters():
            # Kaiming-uniform-like scale keeps activations O(1) through the stack, so
            # the softmax is not saturated and quantization error is visible in metrics.
            fan_in = p[0].numel() if p.dim() > 1 else p.numel()
            bound = (3.0 / fan_in) ** 0.5 if p.dim() > 1 else 0.01
            p.copy_((torch.rand(p.shape, generator=gen) * 2 - 1) * bound)
    return net.eval()
