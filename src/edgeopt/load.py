"""``load_model``: one resolver for every way a user names a model.

It sits above both :mod:`edgeopt.model` (the IR) and :mod:`edgeopt.zoo` (which builds
Models), so neither has to import the other to resolve ``zoo:NAME``.
"""

from __future__ import annotations

import os
from typing import Any, Sequence

from . import zoo
from .errors import ModelLoadError
from .model import Model, fix_input_shapes, from_torch, labels_from_metadata, parse_shapes, read_onnx


def load_model(
    ref: Any,
    *,
    example_input: Any = None,
    shape: Sequence[str] | dict[str | None, tuple[int, ...]] | None = None,
) -> Model:
    """Load a model from an ONNX path, a ``zoo:NAME`` reference or a PyTorch module.

    Args:
        ref: path to a .onnx file, "zoo:NAME", a :class:`Model` (returned as is) or a
            ``torch.nn.Module`` (then ``example_input`` is required).
        example_input: example tensor for a PyTorch module, shape (1, C, H, W).
        shape: ``--shape`` strings or a parsed {name: shape} mapping that fixes dynamic
            dims; a zoo entry supplies its own default.

    Returns:
        a Model whose non-batch dims are concrete and whose batch dim is symbolic.

    Raises:
        ModelLoadError, ShapeError: see :func:`edgeopt.model.read_onnx` and
            :func:`edgeopt.model.fix_input_shapes`.
    """
    if isinstance(ref, Model):
        return ref
    shapes = shape if isinstance(shape, dict) else parse_shapes(shape)
    if isinstance(ref, (str, os.PathLike)) and str(ref).startswith("zoo:"):
        return zoo.load(str(ref)[4:], shapes=shapes)
    if isinstance(ref, (str, os.PathLike)):
        proto, digest = read_onnx(ref)
        proto, specs = fix_input_shapes(proto, shapes)
        return Model(
            proto=proto, inputs=specs, labels=labels_from_metadata(proto),
            source=str(ref), source_sha256=digest,
        )
    if _is_torch_module(ref):
        if example_input is None:
            raise ModelLoadError(
                f"a PyTorch module needs an example input: load_model(module, "
                f"example_input=torch.randn(1, 3, 224, 224))"
            )
        return from_torch(ref, example_input)
    raise ModelLoadError(
        f"cannot load a {type(ref).__name__}: pass a .onnx path, 'zoo:NAME' or a torch.nn.Module"
    )


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)
