"""Conv and Linear MACs of a torch module, counted the way the ONNX profile counts them.

MACs are those of Conv and Linear layers at batch 1, counted with forward hooks the way
:mod:`edgeopt.analysis.ophandlers` counts Conv/Gemm (numel(output) x numel(W[0])), so a
pruned module's count matches ``edgeopt.analysis.profile`` on the exported model.
(``tp.utils.count_ops_and_params`` also counts BatchNorm and activations, which the
exported graph folds away or counts as other ops.) :class:`MacTerm` keeps each layer's
count as a function of its channel counts, so a pruning plan's MACs can be estimated
without a forward pass.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn


def count_macs(module: "nn.Module", example_input: "torch.Tensor") -> int:
    """Conv and Linear MACs of one forward pass on ``example_input`` (all its batch).

    Conv: numel(output) x numel(W[0]) (W is (Cout, Cin/groups, k...)); ConvTranspose:
    numel(input) x numel(W[0]); Linear: numel(output) x in_features, the conventions of
    :mod:`edgeopt.analysis.ophandlers`.
    """
    return int(round(sum(t.macs(0, 0) for t in mac_terms(module, example_input).values())))


def count_params(module: "nn.Module") -> int:
    """Number of parameter elements."""
    return sum(p.numel() for p in module.parameters())


@dataclass(frozen=True)
class MacTerm:
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
        """MACs with ``removed_out`` output and ``removed_in`` input channels gone
        (fractions allowed: a plan's estimate spreads a group's channels over layers)."""
        cout, cin = self.cout - removed_out, self.cin - removed_in
        if self.depthwise:
            # Torch-Pruning records a depthwise conv's channels once (as output channels).
            return min(cout, cin) * self.per_pair
        return cout * cin / self.groups * self.per_pair


def mac_terms(module: "nn.Module", example_input: "torch.Tensor") -> dict[str, MacTerm]:
    """{layer name: MacTerm} of every Conv/Linear run on ``example_input``.

    Conv: MACs = numel(output) x numel(W[0]) = cout x cin/groups x kernel x output
    positions; ConvTranspose: numel(input) x numel(W[0]); Linear: numel(output) x
    in_features, the conventions of :mod:`edgeopt.analysis.ophandlers`.
    """
    import torch
    from torch import nn

    names = {m: n for n, m in module.named_modules()}
    terms: dict[str, MacTerm] = {}

    def hook(m, inputs, output) -> None:
        if isinstance(m, nn.modules.conv._ConvNd):
            t = inputs[0] if m.transposed else output
            positions = t.numel() // t.shape[1]
            kernel = math.prod(m.kernel_size)
            cin, cout = m.in_channels, m.out_channels
            dw = m.groups > 1 and m.groups == cin == cout
            term = MacTerm(cout, cin, m.groups, dw, kernel * positions)
        elif isinstance(m, nn.Linear):
            term = MacTerm(m.out_features, m.in_features, 1, False, output.numel() // m.out_features)
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
