"""Queries on Torch-Pruning's dependency graph: tracing, which groups are safe to prune,
which layers a group touches, and the channel groups grouped convolutions force.

The dependency graph (``tp.DependencyGraph``; Fang et al., "DepGraph: Towards Any
Structural Pruning", CVPR 2023) groups the channels coupled through BatchNorm, residual
additions, concatenations, depthwise and grouped convolutions and flatten. A group whose
channels reach a model output (the classifier: classes are never pruned) or feed an
operation Torch-Pruning cannot prune (a matrix product with a constant, e.g.
onnx2torch's MatMul) is unsafe and skipped.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any, Iterator

from ...errors import PassError
from ..._util.errorline import error_line

if TYPE_CHECKING:
    import torch
    from torch import nn

# Autograd op names (grad_fn) that contract a channel dimension with a tensor the
# dependency graph does not see; a group reaching one cannot be pruned consistently.
_CONTRACTIONS = ("Mm", "Bmm", "Addmm", "Baddbmm", "Mv", "Dot", "Convolution", "Linear",
                 "Embedding", "Einsum")


def root_types() -> list:
    """The module types a pruning group is rooted at: Conv (any dimension) and Linear."""
    from torch import nn

    return [nn.modules.conv._ConvNd, nn.Linear]


def dependency_graph(module: "nn.Module", example_input: "torch.Tensor"):
    """Torch-Pruning's ``DependencyGraph`` of ``module``, traced on ``example_input``.

    Raises:
        PassError: the module cannot be traced.
    """
    import torch_pruning as tp

    with warnings.catch_warnings():
        # onnx2torch's Slice indexes with a list (a torch deprecation warning per trace).
        warnings.simplefilter("ignore", UserWarning)
        try:
            return tp.DependencyGraph().build_dependency(module, example_inputs=example_input)
        except Exception as e:
            raise PassError(f"Torch-Pruning cannot trace the module ({error_line(e)}): "
                            f"report this model; quantize it instead meanwhile") from e


def groups(dg) -> Iterator[tuple["nn.Module", Any, str | None]]:
    """(root layer, its full pruning group or None, why there is none) for every Conv/Linear.

    Torch-Pruning's ``DependencyGraph.get_all_groups`` (torch_pruning 1.6.1,
    ``dependency/graph.py``) walked one root at a time, with its bookkeeping: a layer
    already pruned as part of an earlier group's outputs is not a root again. Here an
    error while building one group (an IndexError in Torch-Pruning's index mapping, met
    on a real detector) skips that root only, where the library's generator would end
    for all of them.
    """
    visited: set[int] = set()
    ignored = {id(m) for m in dg.IGNORED_LAYERS_IN_TRACING}
    types = tuple(root_types())
    for m in list(dg.module2node):
        if not isinstance(m, types) or id(m) in visited or id(m) in ignored:
            continue
        pruner = dg.get_pruner_of_module(m)
        try:
            channels = None if pruner is None else pruner.get_out_channels(m)
            if channels is None:
                continue
            group = dg.get_pruning_group(m, pruner.prune_out_channels, list(range(channels)))
        except Exception as e:
            yield m, None, f"Torch-Pruning cannot group its channels ({error_line(e)})"
            continue
        outs = [dep.target.module for dep, _ in group if dg.is_out_channel_pruning_fn(dep.handler)]
        visited.update(id(o) for o in outs)
        if not any(id(o) in ignored for o in outs):
            yield m, group, None


def unsafe_reason(group) -> str | None:
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


def effects(dg, group, names: dict, channels: int) -> tuple[tuple[str, str, float], ...]:
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


def channel_groups(dg, group) -> int:
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


def output_shapes(out) -> list[tuple[int, ...]]:
    """Shapes of a module's output (a tensor or a tuple/list of tensors)."""
    outs = out if isinstance(out, (tuple, list)) else [out]
    return [tuple(o.shape) for o in outs]
