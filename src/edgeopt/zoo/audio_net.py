"""AudioEventNet: a raw-waveform 1-D CNN (Dai et al., "Very deep convolutional neural
networks for raw waveforms", ICASSP 2017), at a size for a small CPU.

A learned filterbank (a Conv1d of ``taps`` at ``stride``) with BatchNorm, ReLU and a
max-pool of 4, then a Conv1d block of 9 taps per further channel count (BatchNorm, ReLU,
max-pool 2 except after the last), an average over time and a linear layer. At the zoo's
(32, 32, 64, 64, 128, 128) channels and (128, 8) front end: 16000 samples -> 2000 -> 500
-> 250 -> 125 -> 62 -> 31 time steps, 291,910 parameters, 31.2 M MACs per clip.
"""

from __future__ import annotations

import torch
from torch import nn


class AudioEventNet(nn.Module):
    """Input (N, 1, T) float32 waveform; output (N, num_classes) logits.

    Args:
        channels: output channels of the filterbank and of each Conv1d block.
        taps, stride: kernel size and stride of the filterbank.
        num_classes: outputs of the linear layer.
    """

    def __init__(self, channels: tuple[int, ...] = (32, 32, 64, 64, 128, 128), taps: int = 128, stride: int = 8,
                 num_classes: int = 6) -> None:
        super().__init__()
        c = channels
        layers: list[nn.Module] = [nn.Conv1d(1, c[0], taps, stride=stride, padding=(taps - stride) // 2),
                                   nn.BatchNorm1d(c[0]), nn.ReLU(), nn.MaxPool1d(4)]
        for i, (cin, cout) in enumerate(zip(c, c[1:])):
            layers += [nn.Conv1d(cin, cout, 9, padding=4), nn.BatchNorm1d(cout), nn.ReLU()]
            if i < len(c) - 2:
                layers.append(nn.MaxPool1d(2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.classifier = nn.Linear(c[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.pool(self.features(x)).flatten(1))
