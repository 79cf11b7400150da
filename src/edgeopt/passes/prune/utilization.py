"""Kernel utilization on calibration images: the criterion of static Parsimonious Inference.

Parsimonious Inference (Theodorakopoulos et al., "Parsimonious Inference on Convolutional
Neural Networks: Learning and applying on-line kernel activation rules", arXiv:1701.05221;
applied to SSD in the seed study) learns small gating modules (LKAM) that switch each
convolution kernel on or off per input. A kernel's *utilization* is how often it is on
over a data set. Static pruning then removes the kernels used on average under 5% of the
time, multiplies the remaining kernels by their utilization coefficient, and fine-tunes.

Our models have no learned gates; the activation function is the gate. So:

- **Utilization of a channel** (:func:`measure_utilization`): for a channel whose
  post-activation output is exactly zero when "off" (ReLU, ReLU6, Hardtanh with a
  non-negative floor, Hardswish, which is 0 for x <= -3), the fraction of output
  positions over all calibration images (N x H x W for a convolution, N for a linear
  layer) where the post-activation output is non-zero. For other activations (SiLU,
  sigmoid, GELU, LeakyReLU, ...) and for layers with no activation, the channel's mean
  absolute activation divided by the mean over the layer's channels (1.0 = an average
  channel), since such channels are never exactly off.
- **What "scaled by utilization" becomes statically.** In PI the gate g_c in {0, 1}
  multiplies the kernel output y_c during training, so the next layer has learned to
  expect g_c * y_c. Replacing the dynamic gate by the constant u_c = E[g_c] is the
  mean-field (expected value) approximation of the gated network. In a network trained
  without gates, the next layer's weights already expect the activation act(y_c), whose
  zero/non-zero pattern *is* the gate; scaling a surviving channel by u_c would change
  a function that was already right (and scaling it while dividing the next layer's
  weights by u_c would be a no-op). The expectation replacement is applied where it
  changes something: to the **removed** channels. A removed channel's output is replaced
  by its expected value over the calibration images, E[act(y_c)] = u_c * E[act(y_c) |
  on], a constant, folded into the following layers' biases: for each following
  Conv/Linear, b += W[:, removed] . mean[removed] (:func:`mean_compensation`). This is
  Mean Replacement Pruning (Evci, Le Roux, Castro, Bottou, "Mean Replacement Pruning",
  2018); it keeps every output unchanged in expectation to first order, and exactly when
  the removed channels are constant (a dead or bias-only channel). The means are
  measured at the following layer's input, i.e. after pooling, residual additions and
  concatenations. Approximation: a zero-padded convolution sees the constant only
  partially at the image border; the fold uses the interior value.

How the activation of a convolution is found: forward hooks on the leaf modules follow
tensor identity from a Conv/Linear output through channel-wise modules (BatchNorm,
Dropout, Identity) to the first activation module that consumes it. Activations written
as functions in ``forward`` (``F.relu``) are invisible to hooks; such layers fall back to
the relative mean magnitude of their (pre-activation) output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np
import torch
from torch import nn

from ...errors import DataError

try:  # the Torch-Pruning importance base class, when installed
    from torch_pruning.pruner.importance import Importance as _ImportanceBase
except ImportError:  # pragma: no cover - torch_pruning is installed with the prune pass
    _ImportanceBase = object

ZERO_GATED = "zero"  # utilization = fraction of non-zero outputs
MAGNITUDE = "magnitude"  # utilization = mean |a| relative to the layer mean

# Channel-wise modules the producer of a tensor is followed through.
_PASS_THROUGH = (nn.modules.batchnorm._BatchNorm, nn.Dropout, nn.Identity)
_ACTIVATIONS = (
    nn.ReLU, nn.ReLU6, nn.Hardtanh, nn.Hardswish, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU,
    nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid, nn.Tanh, nn.Hardsigmoid, nn.Softplus,
)
# onnx2torch's own activation modules (matched by name: this module does not import it).
_ONNX2TORCH_ACTIVATIONS = ("OnnxHardSigmoid",)
_PRODUCERS = (nn.modules.conv._ConvNd, nn.Linear)


def _zero_gated(act: nn.Module) -> bool:
    """True when ``act`` outputs exactly 0 on a half-line (the channel is then "off")."""
    if isinstance(act, (nn.ReLU, nn.Hardswish)):
        return True
    return isinstance(act, nn.Hardtanh) and act.min_val >= 0  # ReLU6 is a Hardtanh(0, 6)


def _activation(module: nn.Module) -> bool:
    return isinstance(module, _ACTIVATIONS) or type(module).__name__ in _ONNX2TORCH_ACTIVATIONS


def _pass_through(module: nn.Module) -> bool:
    # onnx2torch writes ONNX Identity as OnnxCopyIdentity; match it by name so this
    # module does not import onnx2torch.
    return isinstance(module, _PASS_THROUGH) or type(module).__name__ == "OnnxCopyIdentity"


@dataclass
class ActivityStats:
    """Per-channel statistics of a module over calibration images.

    Attributes:
        utilization: {Conv/Linear module name: float64 array (out channels,)}; see the
            module docstring for the two definitions.
        kind: {module name: "zero" (fraction of non-zero outputs) or "magnitude"
            (relative mean |activation|)}.
        activation: {module name: class name of the activation found, or "" if none}.
        input_means: {Conv/Linear module name: float64 array of the mean of its input per
            input channel (Conv: over N, H, W; Linear: per input feature)}.
        images: number of calibration images seen.
    """

    utilization: dict[str, np.ndarray] = field(default_factory=dict)
    kind: dict[str, str] = field(default_factory=dict)
    activation: dict[str, str] = field(default_factory=dict)
    input_means: dict[str, np.ndarray] = field(default_factory=dict)
    images: int = 0


def _channel_dim(module: nn.Module, t: torch.Tensor) -> int:
    return 1 if isinstance(module, nn.modules.conv._ConvNd) else t.dim() - 1


def _channel_sum(t: torch.Tensor, dim: int) -> tuple[torch.Tensor, int]:
    """(float64 sum over every dim but ``dim``, shape (C,); positions per channel)."""
    dims = [d for d in range(t.dim()) if d != dim]
    return t.detach().double().sum(dim=dims), t.numel() // t.shape[dim]


class _Recorder:
    """Forward hooks that accumulate :class:`ActivityStats` over batches."""

    def __init__(self, module: nn.Module) -> None:
        self.names = {m: n for n, m in module.named_modules()}
        self.nonzero: dict[str, torch.Tensor] = {}
        self.abs_sum: dict[str, torch.Tensor] = {}
        self.positions: dict[str, int] = {}
        self.in_sum: dict[str, torch.Tensor] = {}
        self.in_count: dict[str, int] = {}
        self.kind: dict[str, str] = {}
        self.activation: dict[str, str] = {}
        self._reset_batch()
        self.handles = [
            m.register_forward_hook(self._hook)
            for m in module.modules() if not list(m.children())
        ]

    def _reset_batch(self) -> None:
        # id(tensor) -> producer name; the tensors are kept alive in _alive so ids are not
        # reused within one forward pass.
        self.root: dict[int, str] = {}
        self._alive: list[torch.Tensor] = []
        self.done: set[str] = set()
        self.pending: dict[str, tuple[torch.Tensor, int, int]] = {}

    def _hook(self, module: nn.Module, inputs: tuple, output) -> None:
        if not inputs or not isinstance(inputs[0], torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        x = inputs[0]
        name = self.names[module]
        if isinstance(module, _PRODUCERS):
            s, n = _channel_sum(x, _channel_dim(module, x))
            self.in_sum[name] = self.in_sum.get(name, 0) + s
            self.in_count[name] = self.in_count.get(name, 0) + n
            self._follow(output, name, _channel_dim(module, output))
            return
        producer = self.root.get(id(x))
        if producer is None or producer in self.done:
            return
        dim = self.pending[producer][2]
        if _pass_through(module):
            self._follow(output, producer, dim)
        elif _activation(module):
            self.done.add(producer)
            del self.pending[producer]
            gated = _zero_gated(module)
            s, n = _channel_sum(output != 0 if gated else output.abs(), dim)
            self._add(producer, s, n, ZERO_GATED if gated else MAGNITUDE, type(module).__name__)

    def _follow(self, output: torch.Tensor, producer: str, dim: int) -> None:
        """Map ``output`` to ``producer``; keep its magnitude in case no activation follows.

        The reduction happens now because an in-place activation may overwrite ``output``.
        """
        self.root[id(output)] = producer
        self._alive.append(output)
        s, n = _channel_sum(output.abs(), dim)
        self.pending[producer] = (s, n, dim)

    def _add(self, name: str, value: torch.Tensor, n: int, kind: str, act: str) -> None:
        store = self.nonzero if kind == ZERO_GATED else self.abs_sum
        store[name] = store.get(name, 0) + value
        self.positions[name] = self.positions.get(name, 0) + n
        self.kind.setdefault(name, kind)
        self.activation.setdefault(name, act)

    def end_batch(self) -> None:
        for name, (s, n, _) in self.pending.items():
            self._add(name, s, n, MAGNITUDE, "")
        self._reset_batch()

    def close(self) -> None:
        for h in self.handles:
            h.remove()

    def stats(self, images: int) -> ActivityStats:
        out = ActivityStats(images=images)
        for name, kind in self.kind.items():
            if kind == ZERO_GATED:
                u = (self.nonzero[name] / self.positions[name]).numpy()
            else:
                mean_abs = (self.abs_sum[name] / self.positions[name]).numpy()
                layer = float(mean_abs.mean())
                u = mean_abs / layer if layer > 0 else np.zeros_like(mean_abs)
            out.utilization[name] = u
            out.kind[name] = kind
            out.activation[name] = self.activation[name]
        for name, s in self.in_sum.items():
            out.input_means[name] = (s / self.in_count[name]).numpy()
        return out


def _batches(calibration: np.ndarray | torch.Tensor, batch: int) -> Iterable[torch.Tensor]:
    data = torch.as_tensor(np.asarray(calibration, dtype=np.float32))
    for start in range(0, data.shape[0], batch):
        yield data[start:start + batch]


def measure_activity(module: nn.Module, calibration: np.ndarray | torch.Tensor, *,
                     batch: int = 16) -> ActivityStats:
    """Utilization and input means of every Conv/Linear layer of ``module`` on ``calibration``.

    Args:
        module: a ``torch.nn.Module``; run in eval mode under ``torch.no_grad`` (its mode
            is restored afterwards; its weights are not changed).
        calibration: float32 array (N, C, H, W) of preprocessed images (N >= 1).
        batch: images per forward pass (memory only; results do not depend on it).

    Returns:
        an :class:`ActivityStats`; layers never executed have no entry.

    Raises:
        DataError: ``calibration`` is empty or not finite.
    """
    data = np.asarray(calibration, dtype=np.float32)
    if data.ndim == 0 or data.shape[0] == 0:
        raise DataError("calibration data hold no images: pass at least one image")
    if not np.isfinite(data).all():
        raise DataError("calibration data contain NaN or inf: check the images and preprocessing")
    was_training = module.training
    module.eval()
    rec = _Recorder(module)
    try:
        with torch.no_grad():
            for x in _batches(data, batch):
                module(x)
                rec.end_batch()
    finally:
        rec.close()
        module.train(was_training)
    return rec.stats(int(data.shape[0]))


def measure_utilization(module: nn.Module, calibration: np.ndarray | torch.Tensor, *,
                        batch: int = 16) -> dict[str, np.ndarray]:
    """Per-channel utilization of each Conv/Linear layer (see the module docstring).

    Args:
        module: a ``torch.nn.Module`` (not modified).
        calibration: float32 array (N, C, H, W) of preprocessed images.

    Returns:
        {layer name (as in ``module.named_modules()``): float64 array (out channels,)}:
        fraction of non-zero post-activation outputs in [0, 1] for ReLU-like
        activations, else mean |activation| relative to the layer mean (layer mean 1.0).

    Raises:
        DataError: ``calibration`` is empty or not finite.
    """
    return measure_activity(module, calibration, batch=batch).utilization


class UtilizationImportance(_ImportanceBase):
    """Torch-Pruning importance ``(group) -> scores``: the utilization of each channel.

    A channel coupled across several layers (residual additions, concatenations) is
    removable only if every producer leaves it idle, so the group score is the maximum
    over the group's Conv/Linear producers of their channel utilization (the producers'
    output deps in the group). Scores are not normalised: utilization is already
    comparable across layers (a fraction of positions), which global ranking and the 5%
    threshold rely on.

    Args:
        module: the module the dependency graph was built on.
        utilization: :func:`measure_utilization` of that module.
    """

    def __init__(self, module: nn.Module, utilization: dict[str, np.ndarray]) -> None:
        by_name = dict(module.named_modules())
        self.utilization = {by_name[n]: torch.as_tensor(u, dtype=torch.float64)
                            for n, u in utilization.items() if n in by_name}

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        import torch_pruning as tp

        dg = group._DG
        scores = None
        for i, (dep, idxs) in enumerate(group):
            layer = dep.target.module
            if layer not in self.utilization or not dg.is_out_channel_pruning_fn(dep.handler):
                continue
            root_idxs = group[i].root_idxs
            if root_idxs is None or any(r is None for r in root_idxs):
                continue  # Torch-Pruning's own importances skip such entries too
            local = self.utilization[layer][tp._helpers.to_plain_idxs(idxs)]
            if scores is None:
                scores = torch.zeros(len(group[0].idxs), dtype=torch.float64)
            scores[root_idxs] = torch.maximum(scores[root_idxs], local)
        return None if scores is None else scores.float()


def utilization_importance(context) -> UtilizationImportance:
    """The ``utilization`` criterion's factory (:mod:`.importance`): a
    :class:`UtilizationImportance` over ``context.stats`` (a ``ScoringContext`` with
    calibration statistics)."""
    return UtilizationImportance(context.module, context.stats.utilization)


def mean_compensation(group, input_means: dict[nn.Module, np.ndarray]) -> list[tuple[nn.Module, torch.Tensor]]:
    """Bias changes that replace a pruning group's removed channels by their mean.

    Call before ``group.prune()`` (the weights of the removed input channels are read)
    and add each delta to its layer's bias after (:func:`add_bias`). For each dense
    consumer in the group (Conv with groups == 1, or Linear) whose input channels ``idx``
    are removed: delta = W[:, idx] . mean[idx], summed over the kernel window for a Conv.
    Grouped and depthwise consumers are skipped: their outputs for the removed channels
    are removed too, and the dense layer after them is compensated instead.

    Args:
        group: a Torch-Pruning ``Group`` holding the indices to remove.
        input_means: {consumer module: float array of its mean input per input channel}.

    Returns:
        [(layer, float32 delta of shape (out features,))].
    """
    import torch_pruning as tp

    dg = group._DG
    out = []
    for dep, idxs in group:
        layer = dep.target.module
        if layer not in input_means or not dg.is_in_channel_pruning_fn(dep.handler):
            continue
        idx = tp._helpers.to_plain_idxs(idxs)
        if not idx:
            continue
        mean = torch.as_tensor(np.asarray(input_means[layer])[idx], dtype=torch.float64)
        w = layer.weight.detach().double()
        if isinstance(layer, nn.Linear):
            delta = w[:, idx] @ mean
        elif isinstance(layer, nn.modules.conv._ConvNd) and layer.groups == 1 and not layer.transposed:
            delta = w[:, idx].flatten(2).sum(2) @ mean
        else:
            continue
        out.append((layer, delta.float()))
    return out


def add_bias(layer: nn.Module, delta: torch.Tensor) -> None:
    """Add ``delta`` (out features,) to ``layer.bias``, creating a zero bias if it has none."""
    with torch.no_grad():
        if layer.bias is None:
            layer.bias = nn.Parameter(torch.zeros_like(delta, dtype=layer.weight.dtype))
        layer.bias.add_(delta.to(layer.bias.dtype))
