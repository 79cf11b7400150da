"""Channel pruning of a torch module or a Model, and the registered pass ``prune``.

Groups whose channels reach a model output (the classifier: classes are never pruned) or
feed an operation Torch-Pruning cannot prune are skipped and listed in the report; so is
any group whose pruning breaks the forward pass (:mod:`.pruner`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ...errors import PassError
from ..._util.errorline import error_line
from ..base import check_calibration
from . import importance
from .config import PruneConfig, PruneReport
from .counting import count_macs, count_params
from .depgraph import output_shapes
from .planning import plan_for
from .pruner import ChannelPruner

if TYPE_CHECKING:
    import torch
    from torch import nn

    from ...model import Model


def prune_module(module: "nn.Module", example_input: "torch.Tensor", config: PruneConfig,
                 calibration: np.ndarray | None = None) -> tuple["nn.Module", PruneReport]:
    """Prune the output channels of ``module`` as ``config`` says.

    Args:
        module: a ``torch.nn.Module`` (not modified).
        example_input: a tensor it accepts, e.g. torch.zeros(1, 3, 224, 224).
        config: the :class:`~.config.PruneConfig`.
        calibration: float32 (N, C, H, W) preprocessed images; required by the
            utilization and taylor criteria, used by every criterion for the mean fold.

    Returns:
        (the pruned module, a deep copy in eval mode; its :class:`~.config.PruneReport`).

    Raises:
        PassError: calibration missing for utilization/taylor, nothing prunable, the MAC
            target cannot be reached under the layer limits, or the pruned module fails.
    """
    pruner = ChannelPruner(module, example_input, config.criterion, calibration, seed=config.seed)
    plan = plan_for(pruner, config)
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
        config: a :class:`~.config.PruneConfig` (None: the defaults, 50% of the MACs by l1).
        calibration: float32 (N, *input shape[1:]) preprocessed images, or None.

    Returns:
        (the pruned Model, passes + "prune", its torch module attached; the report).

    Raises:
        PassError: see :func:`prune_module`; the model has several inputs.
        DataError: calibration data do not fit the model's input.
    """
    import torch

    from ...convert.bridge import from_module, to_torch

    config = config or PruneConfig()
    if len(model.inputs) != 1:
        raise PassError(f"pruning traces single-input models, {model.name} has inputs "
                        f"{[s.name for s in model.inputs]}: prune a single-input model")
    if calibration is not None:
        calibration = check_calibration(model, calibration, "prune")
    elif importance.get(config.criterion).needs_data:
        raise PassError(f"criterion {config.criterion} needs calibration images: pass --images DIR")
    example = torch.zeros(model.inputs[0].shape, dtype=torch.float32)
    pruned, report = prune_module(to_torch(model), example, config, calibration)
    return from_module(model, pruned, "prune"), report


def apply(model: "Model", config: PruneConfig | None = None,
          calibration: np.ndarray | None = None) -> "Model":
    """The registered pass: :func:`prune_model` without the report."""
    return prune_model(model, config, calibration)[0]


def _check_runs(module: "nn.Module", pruner: ChannelPruner) -> None:
    """Raise PassError unless the pruned ``module`` runs and keeps the output shapes."""
    import torch

    try:
        with torch.no_grad():
            shapes = output_shapes(module(pruner.example))
    except Exception as e:
        raise PassError(f"the pruned module fails on the example input ({error_line(e)}): "
                        f"report this model; lower --target-macs or --ratio meanwhile") from e
    if shapes != pruner._ref_shapes:
        raise PassError(f"pruning changed the output shapes {pruner._ref_shapes} -> {shapes}: "
                        f"report this model")
