"""Pruning sensitivity: how much quality each layer loses as its own pruning ratio grows.

For every prunable layer (a Torch-Pruning group, named by its root Conv/Linear), prune
only that layer by each ratio on a copy of the module and measure quality with a
caller-supplied function. This is the per-layer sensitivity analysis of Li et al.,
"Pruning Filters for Efficient ConvNets" (ICLR 2017, section 4.2 and Figure 2) and of
Distiller's ``sensitivity_analysis``: layers whose quality falls fast are pruned less
(:func:`max_safe_ratios` gives :class:`~edgeopt.passes.prune.PruneConfig` ``sensitivity``),
the robust ones more.

Channels are chosen with the same criterion and scores as the pruning pass
(:class:`~edgeopt.passes.prune.ChannelPruner`), so the curves describe the pruning that
will actually happen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

import numpy as np

from ...errors import EdgeoptError
from ..._util.progress import progress_bar
from ..prune import ChannelPruner

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass
class SensitivityResult:
    """Quality of the module with one layer pruned at a time.

    Attributes:
        baseline: quality of the unpruned module (``eval_fn`` units, higher is better).
        ratios: the ratios tried, ascending.
        quality: {layer name: quality at each ratio, aligned with ``ratios``}.
        channels: {layer name: output channels of the layer}.
        criterion: importance criterion that chose the channels.
        skipped: {layer name: why it is not prunable} (from the pruner).
    """

    baseline: float
    ratios: tuple[float, ...]
    quality: dict[str, list[float]] = field(default_factory=dict)
    channels: dict[str, int] = field(default_factory=dict)
    criterion: str = "l1"
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def drops(self) -> dict[str, list[float]]:
        """{layer name: baseline - quality at each ratio} (positive = worse)."""
        return {k: [self.baseline - q for q in v] for k, v in self.quality.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field and the drops."""
        return {"baseline": self.baseline, "ratios": list(self.ratios), "criterion": self.criterion,
                "quality": {k: list(v) for k, v in self.quality.items()}, "drops": self.drops,
                "channels": dict(self.channels), "skipped": dict(self.skipped)}


def sensitivity(module: "nn.Module", example_input: "torch.Tensor",
                eval_fn: Callable[["nn.Module"], float],
                ratios: Sequence[float] = (0.1, 0.3, 0.5, 0.7), criterion: str = "l1", *,
                calibration: np.ndarray | None = None, progress: bool = True) -> SensitivityResult:
    """Prune each layer alone by each ratio and measure quality.

    Args:
        module: a ``torch.nn.Module`` (not modified).
        example_input: a tensor it accepts, e.g. torch.zeros(1, 3, 224, 224).
        eval_fn: quality of a module, higher is better, e.g. top-1 agreement (%) with the
            original on calibration images (:func:`agreement_fn`). Called once on the
            unpruned copy and once per (layer, ratio).
        ratios: fractions of a layer's channels to remove, each in (0, 1). A layer always
            keeps at least one channel.
        criterion: "l1", "bn-scale", "utilization" or "taylor" (the last two need
            ``calibration``).
        calibration: float32 (N, C, H, W) preprocessed images, for the data criteria and
            for folding removed channels' means into the next layer, as the pass does.
        progress: show a progress bar on stderr.

    Returns:
        a :class:`SensitivityResult`.

    Raises:
        EdgeoptError: a ratio is outside (0, 1) or there are none.
        PassError: see :class:`~edgeopt.passes.prune.ChannelPruner`.
    """
    ratios = tuple(sorted(float(r) for r in ratios))
    if not ratios or any(not 0.0 < r < 1.0 for r in ratios):
        raise EdgeoptError(f"sensitivity ratios {list(ratios)} must be fractions in (0, 1): "
                           f"pass e.g. 0.1 0.3 0.5 0.7")
    pruner = ChannelPruner(module, example_input, criterion, calibration)
    result = SensitivityResult(baseline=float(eval_fn(pruner.build({}))), ratios=ratios,
                               criterion=criterion, skipped=dict(pruner.skipped))
    with progress_bar("sensitivity", len(pruner.layers) * len(ratios), enabled=progress) as bar:
        for layer in pruner.layers:
            bar.describe(layer.name)
            result.channels[layer.name] = layer.channels
            result.quality[layer.name] = []
            for r in ratios:
                pruned = pruner.build(pruner.plan_single(layer.name, r))
                result.quality[layer.name].append(float(eval_fn(pruned)))
                bar.advance()
    return result


def max_safe_ratios(result: SensitivityResult, max_drop: float) -> dict[str, float]:
    """Per layer, the largest ratio tried whose drop, and every smaller ratio's, is <= ``max_drop``.

    Args:
        result: a :func:`sensitivity` result.
        max_drop: largest acceptable quality drop, in ``eval_fn`` units (e.g. 1.0 = one
            point of top-1 agreement), >= 0.

    Returns:
        {layer name: ratio}, 0.0 for a layer that fails already at the smallest ratio
        (the pruning pass then spares it); usable as ``PruneConfig(sensitivity=...)``.

    Raises:
        EdgeoptError: ``max_drop`` is negative or not a number.
    """
    if not isinstance(max_drop, (int, float)) or not max_drop >= 0:
        raise EdgeoptError(f"max_drop {max_drop!r} must be a number >= 0: pass e.g. 1.0 (points)")
    out = {}
    for name, drops in result.drops.items():
        safe = 0.0
        for r, d in zip(result.ratios, drops):
            if d > max_drop:
                break
            safe = r
        out[name] = safe
    return out


def agreement_fn(module: "nn.Module", images: np.ndarray, *,
                 batch: int = 32) -> Callable[["nn.Module"], float]:
    """An ``eval_fn``: top-1 agreement (%) of a module with ``module`` on ``images``.

    Args:
        module: the reference (original) module; its top-1 classes are computed once.
        images: float32 (N, C, H, W) preprocessed images.
        batch: images per forward pass.

    Returns:
        a function ``candidate -> percent of images whose argmax over dim 1 of the first
        output equals the reference's``.
    """
    import torch

    data = torch.as_tensor(np.asarray(images, dtype=np.float32))

    def top1(m: "nn.Module") -> np.ndarray:
        m.eval()
        with torch.no_grad():
            outs = []
            for start in range(0, data.shape[0], batch):
                y = m(data[start:start + batch])
                outs.append((y[0] if isinstance(y, (tuple, list)) else y).argmax(1).numpy())
        return np.concatenate(outs)

    reference = top1(module)

    def agreement(candidate: "nn.Module") -> float:
        return float(100.0 * np.mean(top1(candidate) == reference))

    return agreement


def sensitivity_table(result: SensitivityResult, max_drop: float | None = None) -> list[dict[str, Any]]:
    """Rows for printing: layer, channels, drop at each ratio, and the safe ratio when
    ``max_drop`` is given."""
    safe: Mapping[str, float] = max_safe_ratios(result, max_drop) if max_drop is not None else {}
    rows = []
    for name, drops in result.drops.items():
        row: dict[str, Any] = {"layer": name, "channels": result.channels[name]}
        row.update({f"drop@{r:g}": d for r, d in zip(result.ratios, drops)})
        if max_drop is not None:
            row["max_safe_ratio"] = safe[name]
        rows.append(row)
    return rows
