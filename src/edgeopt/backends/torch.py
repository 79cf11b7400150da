"""Eager PyTorch on the CPU, for Models that came from a ``torch.nn.Module``.

It runs ``model.torch_module`` (the module the ONNX graph was exported from), not the
ONNX graph: it measures what the model costs before any export or compression. After an
ONNX pass the Model no longer carries the module (the module no longer describes the
graph), so this backend refuses it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendUnavailable
from .base import Backend, Session

if TYPE_CHECKING:
    from ..model import Model

_INSTALL = "pip install torch (the CPU build)"


def _flatten(out: Any) -> list[Any]:
    """Tensors of a forward() result in order: a tensor, or nested tuples/lists/dicts of them."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in _flatten(o)]
    return [out]


class TorchSession(Session):
    """``module(*inputs)`` under ``torch.inference_mode()``, inputs in InputSpec order."""

    def __init__(self, module, input_names: list[str], threads: int) -> None:
        self._module = module
        self._input_names = input_names
        self.backend = "torch"
        self.threads = threads

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        # set_num_threads is process-global (it sets torch's intra-op pool for every
        # module in this process), so each run re-asserts this session's count in case
        # another session changed it in between.
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        args = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self._input_names]
        with torch.inference_mode():
            out = self._module(*args)
        # .numpy() shares memory with the tensor; the tensor is not reused, so no copy.
        return [t.detach().cpu().numpy() for t in _flatten(out)]


class TorchBackend(Backend):
    """Eager PyTorch (CPU), ``torch.set_num_threads(threads)``, inference mode."""

    name = "torch"
    reads_torch_module = True
    module = "torch"
    distribution = "torch"
    install = _INSTALL

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        if model.torch_module is None:
            raise BackendUnavailable(
                f"{model.name} did not come from PyTorch (or a pass replaced its graph), so "
                f"there is no module to run eagerly: use the ort or openvino backend"
            )
        module = model.torch_module
        if getattr(module, "training", False):
            # Not fixed here with .eval(): a backend never changes a Model.
            raise BackendUnavailable(
                f"the PyTorch module of {model.name} is in training mode (dropout and batch "
                f"statistics on): call module.eval() before load_model"
            )
        import torch

        torch.set_num_threads(threads)  # process-global: affects all torch work here
        return TorchSession(module, [s.name for s in model.inputs], threads)
