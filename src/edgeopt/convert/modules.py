"""Small edits of torch modules that passes which rewrite a network share: BatchNorm
folded, a submodule replaced by its dotted name, every image run through once."""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """An eval-mode copy of ``module`` with each BatchNorm folded into the conv before it
    (``torch.fx.experimental.optimization.fuse``: traces the module with torch.fx).

    Raises:
        torch.fx's errors when the module cannot be traced symbolically (callers turn
        them into their own one-line error).
    """
    from torch.fx.experimental.optimization import fuse

    return fuse(copy.deepcopy(module).eval())


def replace_submodule(module: nn.Module, name: str, new: nn.Module) -> None:
    """Put ``new`` where ``module.get_submodule(name)`` is, in place (``name`` dotted, as
    ``named_modules()`` gives it)."""
    parent, _, leaf = name.rpartition(".")
    setattr(module.get_submodule(parent) if parent else module, leaf, new)


def run_batches(module: nn.Module, images: np.ndarray, batch_size: int) -> None:
    """Run float32 (N, ...) ``images`` through ``module`` once, ``batch_size`` at a time,
    without gradients (what observers need to record activation ranges)."""
    x = torch.from_numpy(images)
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            module(x[i:i + batch_size])
