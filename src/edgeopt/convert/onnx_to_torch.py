"""ONNX -> PyTorch: :func:`to_torch`, onnx2torch's conversion tidied for pruning and
checked against ONNX Runtime (see :mod:`edgeopt.convert.bridge`).
"""

from __future__ import annotations

import copy

from torch import nn

from .._util.errorline import error_line
from ..errors import PassError
from ..model import Model
from .check import check_module, torch_threads
from .fx_cleanup import (
    drop_unused,
    fold_bias_adds,
    fold_constants,
    matmul_to_linear,
    reshapes_to_flatten,
    softmax_v1_dynamic,
)
from .onnx2torch_ops import register as register_converters
from .onnx2torch_loader import (
    NO_TORCHVISION,
    TORCHVISION_OPS,
    constants_to_initializers,
    import_onnx2torch,
    torchvision_is_stub,
)


def to_torch(model: Model) -> nn.Module:
    """The Model as an eval-mode PyTorch module.

    A deep copy of ``model.torch_module`` when present (the proto was exported from it,
    so it is not re-checked). Otherwise ``model.proto`` is converted by onnx2torch with the
    batch dimension left symbolic, rewritten so Torch-Pruning can prune it (see the module
    docstring), and compared with ONNX Runtime on N(0, 1) inputs at batch 1 and 2
    (tolerance: :data:`TOLERANCE`).

    Returns:
        a ``torch.nn.Module`` (a ``torch.fx.GraphModule`` for ONNX sources) in eval mode;
        ``module(*inputs)`` takes float32 tensors in ``model.inputs`` order, shape
        (N, *spec.shape[1:]), and returns one tensor per graph output (a tuple if several).

    Raises:
        PassError: onnx2torch cannot convert an op, the graph needs torchvision which is
            not installed, or the module's outputs differ from ONNX Runtime's.
    """
    if model.torch_module is not None:
        return copy.deepcopy(model.torch_module).eval()
    ops = {n.op_type for n in model.proto.graph.node}
    onnx2torch = import_onnx2torch()
    register_converters()
    if torchvision_is_stub():
        needed = sorted(ops.intersection(TORCHVISION_OPS))
        if needed:
            raise PassError(f"{model.name}: " + NO_TORCHVISION.format(op="/".join(needed)))
    try:
        module = onnx2torch.convert(constants_to_initializers(model.proto))
    except Exception as e:
        raise PassError(
            f"onnx2torch cannot convert {model.name} ({error_line(e)}): passes that train or "
            f"prune need a graph of ops onnx2torch supports; use the ONNX passes instead"
        ) from e
    module = module.eval()
    try:
        fold_constants(module)
        with torch_threads(1):
            reshapes_to_flatten(module, model.example_feeds(2))
        softmax_v1_dynamic(module)
        matmul_to_linear(module)
        fold_bias_adds(module)
        drop_unused(module)
    except Exception as e:
        raise PassError(
            f"the module onnx2torch made of {model.name} cannot be prepared for pruning "
            f"({error_line(e)}): report this model; use the ONNX passes meanwhile"
        ) from e
    check_module(model, module, "onnx2torch's conversion")
    return module
