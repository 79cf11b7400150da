"""How many channels go: a pruning plan from a :class:`~.config.PruneConfig`.

- ``ratio`` with ``scope="uniform"``: each layer loses ``floor(ratio * channels)``;
  with ``scope="global"``: ``ratio`` of all prunable channels, lowest scores first across
  layers.
- ``target_macs``: the fraction of MACs to remove. Bisection over the ratio (uniform) or
  the number of globally ranked channels (global); each step estimates the plan's MACs
  from the layers' channel counts (:class:`~.counting.MacTerm`), and the result is
  checked by pruning a copy and counting its MACs (:func:`~.counting.count_macs`).
- threshold (``criterion="utilization"``, ``ratio=None``, ``target_macs=None``): every
  channel with utilization below ``utilization_threshold`` (Parsimonious Inference: 5%).

Limits in every mode: a layer loses at most ``max_layer_ratio`` of its channels and always
keeps one; ``sensitivity`` caps single layers (:mod:`edgeopt.passes.diagnostics.sensitivity`);
``round_to`` rounds the channels kept to the nearest multiple (default 8: ONNX Runtime's
blocked NCHWc convolutions need multiples of the SIMD block, 8 floats with AVX2, 16 with
AVX-512; see :class:`~.config.PruneConfig`; 1 keeps exact counts).
"""

from __future__ import annotations

from typing import Callable, Mapping

from ...errors import PassError
from .config import PruneConfig
from .pruner import ChannelPruner, Plan

# Exact MAC counts (a pruned copy each) tried after the estimate's bisection at most.
_VERIFY_STEPS = 8


def plan_for(pruner: ChannelPruner, config: PruneConfig) -> Plan:
    """The plan ``config`` asks for (its mode and scope), under its layer limits.

    Raises:
        PassError: ``sensitivity`` names an unknown layer, or the MAC target cannot be
            reached under the layer limits.
    """
    caps = pruner.caps(config.max_layer_ratio, dict(config.sensitivity or ()))
    if config.mode == "threshold":
        return pruner.plan_threshold(config.utilization_threshold, caps, config.round_to)
    if config.mode == "ratio" and config.scope == "uniform":
        return pruner.plan_uniform(config.ratio, caps, config.round_to)
    if config.mode == "ratio":
        order = pruner.global_order(caps)
        total = sum(l.channels for l in pruner.layers)
        count = first_reaching(lambda k: pruner.channels_in(
            pruner.plan_global(order, k, caps, config.round_to)) >= config.ratio * total - 1e-9,
                               0, len(order))
        return pruner.plan_global(order, count, caps, config.round_to)
    return _plan_for_macs(pruner, config, caps)


def first_reaching(ok: Callable[[int], bool], lo: int, hi: int) -> int:
    """Smallest k in [lo, hi] with ok(k) (ok monotone); hi when none."""
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


def _plans_by_size(pruner: ChannelPruner, config: PruneConfig,
                   caps: Mapping[str, int]) -> tuple[Callable[[int], Plan], int]:
    """(k -> the k-th plan, largest k): plans that grow with k, in global order or by
    uniform ratio."""
    if config.scope == "global":
        order = pruner.global_order(caps)

        def plan_at(k: int) -> Plan:
            return pruner.plan_global(order, k, caps, config.round_to)

        return plan_at, len(order)
    # Ratios on a grid fine enough that one step is under one channel of any layer.
    hi = 4 * max(l.positions for l in pruner.layers)

    def plan_at(k: int) -> Plan:
        return pruner.plan_uniform(k / (4 * max(l.positions for l in pruner.layers)), caps,
                                   config.round_to)

    return plan_at, hi


def _plan_for_macs(pruner: ChannelPruner, config: PruneConfig, caps: Mapping[str, int]) -> Plan:
    """The smallest plan (in global order or uniform ratio) removing >= target_macs."""
    target = config.target_macs
    plan_at, hi = _plans_by_size(pruner, config, caps)
    if pruner.macs_removed(plan_at(hi)) < target - 1e-9:
        reachable = pruner.macs_removed(plan_at(hi), exact=True)
        raise PassError(
            f"target_macs {target} cannot be reached: at most {reachable:.1%} of the MACs can go "
            f"with max_layer_ratio {config.max_layer_ratio}"
            + (" and the sensitivity limits" if config.sensitivity else "")
            + ": lower --target-macs or raise --max-layer-ratio (target_macs, max_layer_ratio)")
    k = first_reaching(lambda k: pruner.macs_removed(plan_at(k)) >= target - 1e-9, 0, hi)
    # The estimate counts every Conv/Linear exactly; the real count guards against a
    # layer the dependency graph prunes in a way the cost model does not foresee.
    for _ in range(_VERIFY_STEPS):
        if k >= hi or pruner.macs_removed(plan_at(k), exact=True) >= target - 1e-9:
            break
        k = first_reaching(lambda j: pruner.macs_removed(plan_at(j)) > pruner.macs_removed(plan_at(k)),
                           k + 1, hi)
    return plan_at(k)
