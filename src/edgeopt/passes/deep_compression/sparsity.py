"""Unstructured magnitude pruning of ONNX weights and the relative-index sparse format.

Deep Compression's first stage (Han, Mao, Dally, ICLR 2016, section 2; Han et al.,
NeurIPS 2015 "Learning both Weights and Connections") removes the weights of smallest
magnitude. Here a layer is one weight initializer of a Conv, Gemm or MatMul node; biases
and every other tensor are kept, and the graph's inputs and outputs are never touched.

Sparsity is given as the fraction of weights set to zero, either per layer (each layer
loses its own smallest-magnitude fraction, like the paper's per-layer rates in its
Tables 4-5) or globally (one magnitude threshold shared by a pool of layers). The paper
sets each layer's threshold as a quality parameter times the layer's standard deviation;
a rate-based threshold (a quantile of |w|) is the same cut expressed as the resulting
sparsity, which is what the paper reports and what ``torch.nn.utils.prune`` uses.

The storage format (paper section 2, Figure 2) lists the surviving weights in flat
row-major order with a *relative* index: the number of zeros skipped since the previous
stored entry, in ``k`` bits. A gap of ``2**k`` or more zeros is bridged with filler
entries that store the value zero (each filler advances ``2**k`` positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx

from ...errors import PassError

#: Node types whose weight input is pruned, and the paper's layer kind for each.
WEIGHT_OPS = {"Conv": "conv", "Gemm": "fc", "MatMul": "fc"}
#: Keys of a sparsity mapping that are not layer names.
KIND_KEYS = ("conv", "fc")
DEFAULT_KEY = "default"


@dataclass(frozen=True)
class WeightLayer:
    """One prunable weight tensor.

    Attributes:
        name: the ONNX initializer name.
        node: name of the first Conv/Gemm/MatMul node that reads it.
        op_type: that node's type.
        kind: "conv" (Conv) or "fc" (Gemm, MatMul), which picks the bit widths.
        shape: the tensor shape, e.g. (16, 1, 7, 7) or (128, 6144).
    """

    name: str
    node: str
    op_type: str
    kind: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        """Number of weights (params)."""
        return int(np.prod(self.shape))


def weight_layers(proto: onnx.ModelProto) -> list[WeightLayer]:
    """Every float32 weight initializer (rank >= 2) of a Conv, Gemm or MatMul node.

    Conv and Gemm contribute their input 1 (W, B); MatMul either input that is an
    initializer. Tensors that are graph outputs are excluded (changing them would
    change what the model returns). Order: first use in the graph.
    """
    inits = {i.name: i for i in proto.graph.initializer}
    outputs = {o.name for o in proto.graph.output}
    found: dict[str, WeightLayer] = {}
    for node in proto.graph.node:
        kind = WEIGHT_OPS.get(node.op_type)
        if kind is None:
            continue
        slots = [1] if node.op_type in ("Conv", "Gemm") else [0, 1]
        for slot in slots:
            if slot >= len(node.input):
                continue
            name = node.input[slot]
            init = inits.get(name)
            if (init is None or name in found or name in outputs or len(init.dims) < 2
                    or init.data_type != onnx.TensorProto.FLOAT):
                continue
            found[name] = WeightLayer(name, node.name, node.op_type, kind, tuple(int(d) for d in init.dims))
    return list(found.values())


def resolve_rates(layers: list[WeightLayer], sparsity: float | Mapping[str, float]
                  ) -> dict[str, tuple[float, str]]:
    """Each layer's sparsity and the key it came from.

    A float applies to every layer (key "*"). A mapping may name a layer by initializer
    or node name, a kind ("conv", "fc") or "default"; the most specific key wins
    (name, then kind, then default); layers it does not cover keep all their weights.

    Returns:
        {initializer name: (sparsity in [0, 1), source key)}.

    Raises:
        PassError: a rate outside [0, 1), or a key that names no layer of the model.
    """
    if not isinstance(sparsity, Mapping):
        _check_rate("sparsity", sparsity)
        return {l.name: (float(sparsity), "*") for l in layers}
    known = {l.name for l in layers} | {l.node for l in layers} | set(KIND_KEYS) | {DEFAULT_KEY}
    for key, rate in sparsity.items():
        if key not in known:
            names = ", ".join(l.name for l in layers[:8]) + (" ..." if len(layers) > 8 else "")
            raise PassError(
                f"sparsity key {key!r} names no Conv/Gemm/MatMul weight: use a weight or node "
                f"name ({names}), 'conv', 'fc' or 'default'"
            )
        _check_rate(f"sparsity[{key!r}]", rate)
    out: dict[str, tuple[float, str]] = {}
    for l in layers:
        for key in (l.name, l.node, l.kind, DEFAULT_KEY):
            if key in sparsity:
                out[l.name] = (float(sparsity[key]), key)
                break
        else:
            out[l.name] = (0.0, "")
    return out


def _check_rate(what: str, rate: object) -> None:
    if not isinstance(rate, (int, float)) or not 0.0 <= float(rate) < 1.0:
        raise PassError(f"{what} = {rate!r} is not a fraction in [0, 1): pass e.g. 0.9 "
                        f"(90% of the weights set to zero)")


def magnitude_masks(weights: Mapping[str, np.ndarray], rates: Mapping[str, tuple[float, str]],
                    scope: str = "layer") -> dict[str, np.ndarray]:
    """Keep-masks that zero the smallest-magnitude weights.

    Args:
        weights: {name: float32 array} (not modified).
        rates: {name: (sparsity, source key)} from :func:`resolve_rates`.
        scope: "layer": each layer loses exactly ``round(sparsity * size)`` weights of
            smallest |w|. "global": layers whose rate comes from the same key form a
            pool that shares one threshold, so the pool as a whole reaches its sparsity
            while layers with many small weights lose more (a layer named by its own
            key is a pool of one).

    Returns:
        {name: bool array of the weight's shape, True = kept}.

    Raises:
        PassError: unknown scope.
    """
    if scope not in ("layer", "global"):
        raise PassError(f"scope {scope!r} is not 'layer' or 'global': pass one of those")
    pools: dict[str, list[str]] = {}
    for name in weights:
        rate, key = rates[name]
        pool = f"layer:{name}" if scope == "layer" else f"key:{key}:{rate}"
        pools.setdefault(pool, []).append(name)
    masks: dict[str, np.ndarray] = {}
    for names in pools.values():
        rate = rates[names[0]][0]
        flat = np.concatenate([np.abs(weights[n]).ravel() for n in names])
        keep = _keep_largest(flat, int(round(rate * flat.size)))
        start = 0
        for n in names:
            size = weights[n].size
            masks[n] = keep[start:start + size].reshape(weights[n].shape)
            start += size
    return masks


def _keep_largest(magnitude: np.ndarray, n_pruned: int) -> np.ndarray:
    """Bool mask that is False on exactly ``n_pruned`` entries of smallest magnitude."""
    keep = np.ones(magnitude.size, dtype=bool)
    if n_pruned > 0:
        keep[np.argpartition(magnitude, n_pruned - 1)[:n_pruned]] = False
    return keep


# -- relative-index sparse format --------------------------------------------------------
def to_relative(positions: np.ndarray, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative indices (gaps) of sorted flat positions, with filler entries.

    Entry i is stored at ``previous position + gap + 1`` (the first at ``gap``); gaps
    fit in ``index_bits`` bits. A run of ``G >= 2**index_bits`` zeros is bridged by
    ``G >> index_bits`` fillers, each ``2**index_bits`` positions after the previous
    entry (gap ``2**index_bits - 1``) and holding the value zero (paper Figure 2).

    Args:
        positions: (n,) strictly increasing flat indices of the non-zero weights.
        index_bits: k, 1..16 (paper: 8 for conv, 5 for fc).

    Returns:
        (gaps, is_filler): (n + fillers,) int64 gaps in [0, 2**k) and a bool array
        marking the filler entries.
    """
    positions = np.asarray(positions, dtype=np.int64)
    if positions.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
    span = 1 << index_bits
    gaps = np.diff(positions, prepend=-1) - 1
    fillers = gaps >> index_bits
    real_at = np.cumsum(fillers) + np.arange(positions.size)
    out = np.full(positions.size + int(fillers.sum()), span - 1, dtype=np.int64)
    out[real_at] = gaps & (span - 1)
    is_filler = np.ones(out.size, dtype=bool)
    is_filler[real_at] = False
    return out, is_filler


def from_relative(gaps: np.ndarray) -> np.ndarray:
    """Flat positions of the stored entries (fillers included) from their gaps.

    Inverse of :func:`to_relative`: ``position_i = sum_{j <= i} (gap_j + 1) - 1``.
    """
    return np.cumsum(np.asarray(gaps, dtype=np.int64) + 1) - 1
