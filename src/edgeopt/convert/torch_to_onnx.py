"""PyTorch -> ONNX: :func:`from_module` exports a (pruned, fine-tuned) module as the next
version of a Model, checked against it; :func:`channel_pins` lists the constants of a
converted graph that fix a channel count (see :mod:`edgeopt.convert.bridge`).
"""

from __future__ import annotations

import dataclasses
import warnings
from typing import Any

import onnx
import torch
from torch import fx, nn

from .._util.errorline import error_line
from ..errors import ModelLoadError, PassError
from ..shapes import BATCH_DIM, fix_input_shapes
from ..model import Model, from_torch
from .check import check_module, torch_threads
from .fx_cleanup import constant


def from_module(model: Model, module: nn.Module, pass_name: str) -> Model:
    """Export ``module`` to ONNX as the next version of ``model``.

    The export (TorchScript exporter, opset 17: ``edgeopt.model.from_torch`` for one
    output, :func:`_export_outputs` for several) keeps the model's input and output
    names, its input shape with a symbolic batch dimension, and the proto's metadata
    (labels); the Model keeps preprocess, labels, task, source and sha256 of the source,
    appends ``pass_name`` to ``passes`` and carries ``module`` as its ``torch_module``.
    The ONNX graph is compared with the module on an N(0, 1) input at batch 2 (a batch
    other than the export's, so a baked-in batch size is caught).

    Args:
        model: the Model the module was made from; it is not modified.
        module: a module taking the model's input (float32, (N, *spec.shape[1:])) and
            returning one tensor per graph output (a tuple when several); it is put in
            eval mode.
        pass_name: the name appended to ``passes``.

    Returns:
        a new Model.

    Raises:
        PassError: the model has several inputs (not supported yet), the export fails,
            or the exported graph differs from the module.
    """
    if len(model.inputs) != 1:
        raise PassError(
            f"{pass_name} exports single-input models; {model.name} has inputs "
            f"{[s.name for s in model.inputs]}: use the ONNX passes"
        )
    spec = model.inputs[0]
    example = torch.from_numpy(model.example_feeds(1)[spec.name])
    try:
        # The tracer warns wherever a size becomes a constant of the graph; the batch-2
        # check below finds out whether one mattered, so the warnings would only be noise.
        with torch_threads(1), warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            if len(model.output_names) == 1:
                exported = from_torch(module, example, input_name=spec.name,
                                      output_name=model.output_names[0])
            else:
                exported = _export_outputs(module, example, spec.name, model.output_names)
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
    check_module(new, module, f"the ONNX export after {pass_name}", batches=(2,))
    return new


def _export_outputs(module: nn.Module, example: torch.Tensor, input_name: str,
                    output_names: list[str]) -> Model:
    """``module`` (one input, several outputs) exported as ``from_torch`` exports one
    output: TorchScript exporter, opset 17, dim 0 of the input and of every output
    symbolic (:data:`edgeopt.shapes.BATCH_DIM`).

    Raises:
        ModelLoadError: the exporter fails.
    """
    import io

    buf = io.BytesIO()
    module = module.eval()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(module, (example,), buf, dynamo=False, opset_version=17,
                              input_names=[input_name], output_names=list(output_names),
                              dynamic_axes={n: {0: BATCH_DIM} for n in [input_name, *output_names]})
    except Exception as e:
        raise ModelLoadError(f"the exporter fails ({error_line(e, with_type=False)}): report this model") from e
    proto, specs = fix_input_shapes(onnx.load_from_string(buf.getvalue()),
                                    default_shape=tuple(example.shape))
    return Model(proto=proto, inputs=specs, torch_module=module)


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
            value = constant(module, arg)
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
    value = constant(module, arg)
    if value is not None:
        return [int(v) for v in value.flatten().tolist()] if not value.is_floating_point() else []
    if isinstance(arg, fx.Node) and arg.op == "call_module" and type(
            module.get_submodule(arg.target)).__name__.startswith(_SHAPE_ASSEMBLY):
        return [v for a in arg.args for v in _shape_constants(module, a)]
    return []
