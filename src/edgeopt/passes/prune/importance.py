"""The importance criteria of channel pruning: names -> Torch-Pruning ``Importance`` factories.

An importance is Torch-Pruning's callable ``(group) -> scores`` (``torch_pruning.pruner.
importance.Importance``): a float tensor with one score per channel of the group's root
layer, lower removed first, or None when the criterion cannot score the group. Each
criterion registers a factory ``(ScoringContext) -> Importance`` as a ``"module:function"``
string resolved on first use (the idea of the pass and backend registries), so importing
this module imports neither torch nor Torch-Pruning.

Criteria:

- ``l1``: L1 norm of the filters that produce the channel (Li et al., "Pruning Filters
  for Efficient ConvNets", ICLR 2017, arXiv:1608.08710), averaged over the group's
  producing Conv/Linear layers (``tp.importance.MagnitudeImportance(p=1)`` restricted to
  output-channel dependencies). Consumers' input weights are left out so that a filter of
  zeros always scores 0.
- ``bn-scale``: |gamma| of the BatchNorm after the channel (Liu et al., "Learning
  Efficient Convolutional Networks through Network Slimming", ICCV 2017,
  arXiv:1708.06519; ``tp.importance.BNScaleImportance``). Groups without BatchNorm are
  not pruned.
- ``utilization``: how often the channel's post-activation output is non-zero on the
  calibration images (static Parsimonious Inference, see :mod:`.utilization`; the
  complement of Network Trimming's APoZ, Hu et al. 2016, arXiv:1607.03250).
- ``taylor``: first-order Taylor estimate |w * dL/dw| of the loss change when the channel
  is removed (Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR
  2019; ``tp.importance.TaylorImportance``). Calibration images carry no labels, and a
  distillation loss against the original model (KL or MSE) has a zero gradient at the
  unpruned model, where the scores are taken. L is therefore the cross-entropy against
  the original model's own top-1 class (pseudo-labels), which measures what top-1
  agreement measures; outputs that are not (N, K) class scores use L = 0.5 ||y||^2.

l1, bn-scale and taylor scores are divided by their group's mean (Torch-Pruning's
``normalizer="mean"``) so ``scope="global"`` can rank channels of different layers;
utilization is a fraction already and is ranked as is (which also gives it a threshold
mode).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ...errors import PassError

if TYPE_CHECKING:
    from torch import nn

    from .utilization import ActivityStats


@dataclass(frozen=True)
class ScoringContext:
    """What an importance factory may use to build its ``Importance``.

    Attributes:
        module: the ``torch.nn.Module`` being scored (the pruner's own deep copy, eval
            mode); a factory may leave gradients in it (see :attr:`Criterion.gradients`).
        calibration: float32 (N, C, H, W) preprocessed images, or None.
        stats: :class:`~.utilization.ActivityStats` of ``module`` on ``calibration``, or
            None without calibration images.
        batch: images per forward/backward pass over ``calibration``.
    """

    module: "nn.Module"
    calibration: np.ndarray | None
    stats: "ActivityStats | None"
    batch: int


@dataclass(frozen=True)
class Criterion:
    """One registered importance criterion.

    Attributes:
        name: the name users pass (``PruneConfig.criterion``).
        factory: ``"module:function"`` of ``(ScoringContext) -> Importance``.
        needs_data: it cannot score without calibration images.
        threshold_mode: its scores are fractions comparable across layers, so pruning
            may remove every channel under a fixed threshold.
        gradients: the factory accumulates dL/dw in the module; the pruner clears them
            after scoring.
    """

    name: str
    factory: str
    needs_data: bool = False
    threshold_mode: bool = False
    gradients: bool = False

    def importance(self, context: ScoringContext) -> Callable[[Any], Any]:
        """The Torch-Pruning ``Importance`` for ``context`` (imports torch on first use)."""
        module_name, _, attr = self.factory.partition(":")
        return getattr(importlib.import_module(module_name), attr)(context)


_CRITERIA = [
    Criterion("l1", "edgeopt.passes.prune.importance:producer_l1"),
    Criterion("bn-scale", "edgeopt.passes.prune.importance:bn_scale"),
    Criterion("utilization", "edgeopt.passes.prune.utilization:utilization_importance",
              needs_data=True, threshold_mode=True),
    Criterion("taylor", "edgeopt.passes.prune.importance:taylor", needs_data=True, gradients=True),
]
_REGISTRY = {c.name: c for c in _CRITERIA}
CRITERIA = tuple(_REGISTRY)
NEEDS_DATA = tuple(c.name for c in _CRITERIA if c.needs_data)


def get(name: str) -> Criterion:
    """The criterion registered as ``name``.

    Raises:
        PassError: unknown name (the message lists the known criteria).
    """
    criterion = _REGISTRY.get(name)
    if criterion is None:
        raise PassError(f"criterion {name!r} is unknown: choose from {', '.join(CRITERIA)}")
    return criterion


# -- the factories ------------------------------------------------------------------------------
def producer_l1(context: ScoringContext):
    """Li et al.'s filter L1 on a group: ``MagnitudeImportance(p=1)`` over the layers that
    produce the channel (output-channel deps only), averaged, normalised by the group mean."""
    import torch_pruning as tp
    from torch import nn

    class ProducerL1(tp.importance.MagnitudeImportance):
        def __call__(self, group):
            dg = group._DG
            items = [it for it in group.items if dg.is_out_channel_pruning_fn(it.dep.handler)]
            return super().__call__(items)

    return ProducerL1(p=1, group_reduction="mean", normalizer="mean",
                      target_types=[nn.modules.conv._ConvNd, nn.Linear])


def bn_scale(context: ScoringContext):
    """Network Slimming's |gamma|: ``tp.importance.BNScaleImportance`` (None without BN)."""
    import torch_pruning as tp

    return tp.importance.BNScaleImportance()


def taylor(context: ScoringContext):
    """Molchanov et al.'s |w * dL/dw|: accumulate dL/dw over the calibration images
    (L: the module docstring), then ``tp.importance.TaylorImportance`` reads them."""
    import torch_pruning as tp

    _taylor_gradients(context.module, context.calibration, context.batch)
    return tp.importance.TaylorImportance()


def _taylor_gradients(module: "nn.Module", calibration: np.ndarray, batch: int) -> None:
    """Accumulate dL/dw over the calibration images (L: module docstring, taylor)."""
    import torch
    import torch.nn.functional as F

    module.zero_grad(set_to_none=True)
    data = torch.as_tensor(np.asarray(calibration, dtype=np.float32))
    for start in range(0, data.shape[0], batch):
        out = module(data[start:start + batch])
        y = out[0] if isinstance(out, (tuple, list)) else out
        if y.dim() == 2 and y.shape[1] > 1:
            with torch.no_grad():
                target = y.argmax(1)
                is_prob = bool((y >= 0).all()) and bool(torch.allclose(y.sum(1), torch.ones_like(y[:, 0]), atol=1e-3))
            logp = torch.log(y.clamp_min(1e-12)) if is_prob else F.log_softmax(y, dim=1)
            loss = F.nll_loss(logp, target, reduction="sum")
        else:
            loss = 0.5 * y.pow(2).sum()
        loss.backward()
