"""Memory a run of a model needs at a batch size, estimated before anything is allocated,
and the check that refuses a run this machine cannot hold.

The estimate is the model's weights (its serialized size) plus the peak activation
memory of :func:`edgeopt.analysis.profile.profile` (the liveness peak, graph inputs
included), counted at batch 1 and scaled by the batch: every tensor on a batch axis grows
linearly with it, so the scaled peak bounds the true one. A runtime's arena and the
random inputs a benchmark draws come on top, so it is a lower bound of what the run
takes. The input bytes alone are checked first, exactly, so a batch of 10^8 or a
60000 x 60000 image is refused without profiling anything.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import EdgeoptError, ShapeError
from ..model import Model
from .._util.resources import available_memory, human_bytes


@dataclass(frozen=True)
class RunMemory:
    """Bytes a run at ``batch`` needs (module doc).

    Attributes:
        batch: the batch size.
        input_bytes: all graph inputs at ``batch``.
        activation_bytes: peak live activations at ``batch`` (inputs included), or
            ``input_bytes`` when the graph was not profiled.
        weight_bytes: the serialized model.
        profiled: whether ``activation_bytes`` comes from the profile.
    """

    batch: int
    input_bytes: int
    activation_bytes: int
    weight_bytes: int
    profiled: bool = True

    @property
    def total(self) -> int:
        return self.weight_bytes + max(self.activation_bytes, self.input_bytes)


def input_bytes(model: Model, batch: int) -> int:
    """Bytes of every graph input at ``batch`` (exact: the specs' shapes and dtypes)."""
    return sum(math.prod(s.batched(batch)) * np.dtype(s.dtype).itemsize for s in model.inputs)


def run_memory(model: Model, batch: int) -> RunMemory:
    """The estimate of the module doc; the profile is skipped when the inputs alone do
    not fit, and when the graph cannot be profiled (then activations = inputs)."""
    from .profile import profile

    inputs = input_bytes(model, batch)
    avail = available_memory()
    if avail is None or inputs <= avail:
        try:
            peak = batch * profile(model, batch=1).peak_activation_bytes
            return RunMemory(batch, inputs, max(inputs, peak), model.size_bytes)
        except EdgeoptError:  # shape inference fails where a runtime may still run it
            pass
    return RunMemory(batch, inputs, inputs, model.size_bytes, profiled=False)


def check_fits(model: Model, batch: int, *, fix: str = "use a smaller --batch or input --shape",
               available: int | None = None, where: str = "") -> RunMemory:
    """Refuse a run whose estimate (:func:`run_memory`) exceeds the available memory.

    Args:
        model: the Model to run.
        batch: the largest batch it will run at.
        fix: what the user should change, for the message.
        available: bytes the run may use where it runs (None: this machine's available
            memory); a target board's, for a run measured there.
        where: how the message names that memory (e.g. "on the smallest rpi4 board").

    Returns:
        the estimate (not checked when the available memory cannot be read).

    Raises:
        ShapeError: the estimate exceeds the available memory; the line gives both, the
            input shapes, and the largest batch that fits.
    """
    need = run_memory(model, batch)
    avail = available_memory() if available is None else available
    if avail is None or need.total <= avail:
        return need
    shapes = ", ".join(f"{s.name} {'x'.join(map(str, s.batched(batch)))}" for s in model.inputs)
    what = f"inputs {shapes}: {human_bytes(need.input_bytes)}"
    if need.profiled:
        what += f"; peak activations {human_bytes(need.activation_bytes)}"
    fitting = int((avail - need.weight_bytes) // (max(need.activation_bytes, need.input_bytes) / batch))
    if fitting < 1:
        hint = "not even batch 1 fits at these input shapes"
    else:
        hint = f"batch {fitting} would fit" if need.profiled else f"at most batch {fitting} could fit"
    raise ShapeError(f"{model.name} at batch {batch} needs at least {human_bytes(need.total)} of memory ({what}), "
                     f"more than the {human_bytes(avail)} available{' ' + where if where else ''} ({hint}): {fix}")
