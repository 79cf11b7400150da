"""The bridge between the ONNX IR and PyTorch, for the passes that train or prune.

:func:`to_torch` turns a :class:`~edgeopt.model.Model` into an eval-mode ``torch.nn.Module``:
a deep copy of ``model.torch_module`` when the Model came from PyTorch, else the ONNX graph
converted by onnx2torch (https://github.com/ENOT-AutoDL/onnx2torch), tidied so that
Torch-Pruning (https://github.com/VainF/Torch-Pruning) can prune it, and checked against
ONNX Runtime. :func:`from_module` exports a (pruned, fine-tuned) module back to ONNX and
checks it again. :func:`channel_pins` lists what in a converted graph would break if the
channels feeding it were pruned.

Modules: :mod:`.onnx2torch_loader` (onnx2torch without torchvision, constants moved to
initializers), :mod:`.fx_cleanup` (the tidy-up: what onnx2torch gives for the zoo models
and what changes), :mod:`.onnx_to_torch` (:func:`to_torch`), :mod:`.torch_to_onnx`
(:func:`from_module`, :func:`channel_pins`), :mod:`.onnx2torch_ops` (converters for the
op versions onnx2torch lacks), :mod:`.check` (the comparison with ONNX
Runtime and its tolerance). This module is the public entry point: it re-exports them.

Limits. Constants that still fix a channel count after the tidy-up (a per-channel Mul not
next to a conv, a Reshape that is not a flatten, a constant Expand) are listed by
:func:`channel_pins`; the channels that reach them cannot be pruned. :func:`from_module`
exports single-input models (any number of outputs). Ops of opset 18 and later that
onnx2torch lacks are registered by :mod:`.onnx2torch_ops`. NonMaxSuppression and RoiAlign need the real
torchvision. zoo:ppocr-rec does not convert (onnx2torch's BatchNormalization converter
gets no input rank from shape inference there: "spatial rank == -2"), a PassError.

Importing this module imports torch: callers import it inside the functions that need it.
"""

from __future__ import annotations

from .check import ATOL, CHECK_BATCHES, TOLERANCE
from .fx_cleanup import FlatSoftmax
from .onnx2torch_loader import TORCHVISION_OPS
from .onnx_to_torch import to_torch
from .torch_to_onnx import channel_pins, from_module

__all__ = ["ATOL", "CHECK_BATCHES", "TOLERANCE", "TORCHVISION_OPS", "FlatSoftmax", "channel_pins",
           "from_module", "to_torch"]
