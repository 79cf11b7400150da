"""Which layers of a network get ternary/binary weights, and swapping them in and out.

The network is first folded (BatchNorm into the preceding conv, eval mode,
``torch.fx.experimental.optimization.fuse``), so the scales are computed on the weights
that are exported and the ONNX graph has plain Conv nodes. Layers are ordered by their
first call on one image, so "first" and "last" mean the execution order, not the order
the modules were declared in.

Importing this module imports torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..._util.errorline import error_line
from ...errors import PassError
from ...convert.modules import fold_batchnorm, replace_submodule
from .quantizers import frozen_module, ste_module


@dataclass(frozen=True)
class Selection:
    """The layers of a folded network, in call order.

    Attributes:
        layers: names of every nn.Conv2d / nn.Linear called on the example, in call order.
        chosen: the names quantized (the rest stay float32).
    """

    layers: tuple[str, ...]
    chosen: tuple[str, ...]


def fold(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with BatchNorm folded into the preceding convs.

    Raises:
        PassError: torch.fx cannot trace the module symbolically.
    """
    try:
        return fold_batchnorm(module)
    except Exception as e:
        raise PassError(f"torch.fx cannot trace the network to fold its BatchNorm "
                        f"({error_line(e, limit=120)}): use weights-int2 instead") from e


def call_order(module: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the nn.Conv2d / nn.Linear modules of ``module`` in the order one forward
    pass of ``example`` (1, C, H, W) calls them (each once, at its first call)."""
    order: list[str] = []
    handles = []
    for name, sub in module.named_modules():
        if type(sub) in (nn.Conv2d, nn.Linear):
            handles.append(sub.register_forward_hook(
                lambda m, a, o, name=name: order.append(name) if name not in order else None))
    try:
        with torch.no_grad():
            module(example)
    finally:
        for h in handles:
            h.remove()
    return order


def select(module: nn.Module, example: torch.Tensor, keep_first_last: bool,
           exclude: tuple[str, ...], keep_depthwise: bool = False) -> Selection:
    """The layers to quantize: every conv/linear called, minus the first and the last
    with ``keep_first_last``, minus grouped convs with ``keep_depthwise``, minus ``exclude``.

    Raises:
        PassError: an excluded name is not such a layer, or no layer is left.
    """
    layers = call_order(module, example)
    unknown = set(exclude) - set(layers)
    if unknown:
        raise PassError(f"exclude names no Conv2d/Linear of the folded network: {sorted(unknown)[:4]}; "
                        f"use names such as {layers[:3]}")
    kept = set(exclude) | ({layers[0], layers[-1]} if keep_first_last and layers else set())
    if keep_depthwise:
        kept |= {n for n in layers if getattr(module.get_submodule(n), "groups", 1) > 1}
    chosen = tuple(n for n in layers if n not in kept)
    if not chosen:
        raise PassError(f"no Conv2d/Linear is left to quantize among {len(layers)} layers: "
                        f"pass keep_first_last=False or a shorter exclude")
    return Selection(tuple(layers), chosen)


def swap_in(module: nn.Module, chosen: tuple[str, ...], kind: str, binary_input: bool,
            clip: float | None = None) -> nn.Module:
    """``module`` with the ``chosen`` layers replaced by their STE twins, in place
    (a torch.fx GraphModule calls its submodules by attribute, so the swap is seen).
    ``binary_input`` applies to non-grouped convs: OpenVINO's BinaryConvolution has no
    groups; ``clip`` as :func:`.quantizers.ste_module`'s."""
    for name in chosen:
        layer = module.get_submodule(name)
        binary = binary_input and isinstance(layer, nn.Conv2d) and layer.groups == 1
        replace_submodule(module, name, ste_module(layer, kind, binary, clip))
    return module


def swap_out(module: nn.Module, chosen: tuple[str, ...]) -> nn.Module:
    """``module`` with the trained STE twins replaced by the plain layers to export, in place."""
    for name in chosen:
        replace_submodule(module, name, frozen_module(module.get_submodule(name)))
    return module.eval()
