"""Structured channel pruning: remove whole output channels so every dense kernel shrinks.

Removing a channel removes a filter of its layer and the matching input slice of every
layer that reads it, so convolutions and matrix products get smaller on every backend
(unstructured sparsity only saves storage). Which channels belong together comes from
Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023, arXiv:2301.12900; ``torch_pruning`` 1.6): a pruning *group* is a
channel set coupled through BatchNorm, residual additions, concatenations, depthwise and
grouped convolutions, flatten, and is removed in one step, so the network stays
consistent.

The package, in the order a pruning runs:

- :mod:`.config`: :class:`PruneConfig` (what to prune, how much) and :class:`PruneReport`.
- :mod:`.importance`: the registry of importance criteria (l1, bn-scale, utilization,
  taylor), each a factory of a Torch-Pruning ``Importance`` callable ``(group) -> scores``.
- :mod:`.utilization`: activation utilization on calibration images (static Parsimonious
  Inference) and the mean replacement of removed channels.
- :mod:`.depgraph`: the dependency-graph queries (tracing, unsafe groups, coupled layers).
- :mod:`.counting`: Conv/Linear MACs, as ``edgeopt.analysis.profile`` counts them.
- :mod:`.pruner`: :class:`ChannelPruner`, which scores the channels once and builds pruned
  copies from plans.
- :mod:`.planning`: how many channels go (ratio, MAC target, threshold) and the limits.
- :mod:`.api`: :func:`prune_module`, :func:`prune_model` and the registered pass
  :func:`apply`.

Importing this package imports neither torch nor Torch-Pruning; :mod:`.utilization` does,
so it is imported where it is used.
"""

from __future__ import annotations

from .api import apply, prune_model, prune_module
from .config import SCOPES, LayerChange, PruneConfig, PruneReport
from .counting import count_macs, count_params
from .importance import CRITERIA, NEEDS_DATA, Criterion
from .pruner import ChannelPruner, Plan, PrunableLayer

__all__ = [
    "CRITERIA", "NEEDS_DATA", "SCOPES", "ChannelPruner", "Criterion", "LayerChange", "Plan",
    "PrunableLayer", "PruneConfig", "PruneReport", "apply", "count_macs", "count_params",
    "prune_model", "prune_module",
]
