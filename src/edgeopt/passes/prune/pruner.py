"""The channel pruner: scores every prunable group once, then builds pruned copies from plans.

A plan maps each root layer to the channel positions it loses (:mod:`.planning` decides
how many). Pruning goes through ``DependencyGraph.get_pruning_group(...).prune()``, the
call Torch-Pruning's ``MetaPruner`` makes; ``MetaPruner`` itself is not used because in
one global step it checks ``max_pruning_ratio`` only before the step, so a layer can lose
every channel, it has no threshold mode, and it reaches a MAC target only by progressive
steps. Groups whose pruning breaks the forward pass (e.g. a Reshape to a fixed channel
count that the dependency graph cannot see) are skipped and listed.

With calibration images and ``fold``, each removed channel is replaced by its mean over
the calibration images, folded into the biases of the layers that read it (Mean
Replacement Pruning; see :func:`.utilization.mean_compensation`).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping

import numpy as np

from ...errors import PassError
from ..._util.errorline import error_line
from . import depgraph, importance
from .config import LayerChange
from .counting import count_macs, count_params, mac_terms

if TYPE_CHECKING:
    import torch
    from torch import nn



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
        criterion: a name of :data:`.importance.CRITERIA`.
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

        self._criterion = importance.get(criterion)
        if self._criterion.needs_data and calibration is None:
            raise PassError(f"criterion {criterion} needs calibration images: pass --images DIR")
        self.base = copy.deepcopy(module).eval()
        self.example = example_input
        self.criterion = criterion
        self.batch = batch
        try:
            with torch.no_grad():
                self._ref_shapes = depgraph.output_shapes(self.base(example_input))
        except Exception as e:
            raise PassError(f"the module does not run on the example input ({error_line(e)}): "
                            f"pass an input of the shape it takes") from e
        self.stats = measure_activity(self.base, calibration, batch=batch) if calibration is not None else None
        self.macs = count_macs(self.base, example_input)
        self._terms = mac_terms(self.base, example_input)
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
        dg = depgraph.dependency_graph(self.base, self.example)
        names = {m: n for n, m in self.base.named_modules()}
        score = self._criterion.importance(
            importance.ScoringContext(self.base, calibration, self.stats, self.batch))
        layers = []
        for root, group, reason in depgraph.groups(dg):
            name = names.get(root, str(root))
            try:
                layer = None if group is None else self._scored(dg, group, root, name, names, score, rng)
            except Exception as e:
                # A library error on one group (an IndexError inside Torch-Pruning's
                # importance, met on a real model) spares that layer, not the model.
                layer = f"Torch-Pruning fails on it ({error_line(e)})"
            if isinstance(layer, PrunableLayer):
                layers.append(layer)
            else:
                self.skipped[name] = layer or reason
        if self._criterion.gradients:
            self.base.zero_grad(set_to_none=True)  # copies made by build() need no gradients
        return layers

    def _scored(self, dg, group, root, name: str, names: dict, score, rng) -> "PrunableLayer | str":
        """The scored layer of one group, or why it is not pruned."""
        channels = dg.get_out_channels(root)
        reason = depgraph.unsafe_reason(group)
        if reason is None and channels < 2:
            reason = "it has a single channel"
        if reason is not None:
            return reason
        imp = score(group)
        if imp is None:
            return "no BatchNorm follows it (bn-scale scores BatchNorm gammas)"
        ch_groups = depgraph.channel_groups(dg, group)
        if channels // ch_groups < 2:
            return f"its {channels} channels form {ch_groups} groups of one"
        return self._layer(name, int(channels), ch_groups, imp, rng,
                           depgraph.effects(dg, group, names, channels))

    @staticmethod
    def _layer(name: str, channels: int, ch_groups: int, imp: "torch.Tensor", rng,
               effects: tuple[tuple[str, str, float], ...]) -> PrunableLayer:
        """A scored layer: one score per position (the mean over its channel groups) and
        the removal order, ties broken by ``rng``."""
        scores = imp.detach().double().cpu().view(ch_groups, -1).mean(0).numpy()
        scores = np.nan_to_num(scores, nan=0.0, posinf=np.finfo(np.float64).max)
        order = np.lexsort((rng.random(len(scores)), scores))
        return PrunableLayer(name, channels, ch_groups, scores, order, effects)

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
                    shapes = depgraph.output_shapes(pruned(self.example))
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
        dg = depgraph.dependency_graph(module, self.example)
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

        Estimated from each layer's channel counts (:class:`~.counting.MacTerm`, no forward pass),
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
