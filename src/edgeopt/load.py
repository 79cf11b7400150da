"""``load_model``: one resolver for every way a user names a model; ``with_preprocess``:
the image preprocessing a loaded model runs with.

It sits above both :mod:`edgeopt.model` (the IR) and :mod:`edgeopt.zoo` (which builds
Models), so neither has to import the other to resolve ``zoo:NAME``.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Sequence

from . import zoo
from .errors import EdgeoptError, ModelLoadError
from .model import Model, from_torch, labels_from_metadata, read_onnx
from .shapes import fix_input_shapes, parse_shapes
from .preprocess import default_for_input, parse_floats


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
            :func:`edgeopt.shapes.fix_input_shapes`.
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
                "a PyTorch module needs an example input: load_model(module, "
                "example_input=torch.randn(1, 3, 224, 224))"
            )
        return from_torch(ref, example_input)
    raise ModelLoadError(
        f"cannot load a {type(ref).__name__}: pass a .onnx path, 'zoo:NAME' or a torch.nn.Module"
    )


def _is_torch_module(obj: Any) -> bool:
    return any(c.__module__.startswith("torch.nn") and c.__name__ == "Module"
               for c in type(obj).__mro__)


def with_preprocess(
    model: Model,
    *,
    mean: str | Sequence[float] | None = None,
    std: str | Sequence[float] | None = None,
    channels: str | None = None,
    resize_short: int | None = None,
) -> tuple[Model, str | None]:
    """The model with its image preprocessing set from these values over its own.

    A model that carries a preprocessing (zoo models, files with edgeopt metadata) keeps
    each field not given here. A model with none gets a plain guess from its input spec
    (:func:`edgeopt.preprocess.default_for_input`: resize to the input size, scale to
    [0, 1], RGB or GRAY) so quality checks can still run; with no value given either,
    the guess comes with a warning for the user.

    Args:
        model: a loaded Model (not modified).
        mean, std: per-channel values after scaling, as numbers or as text
            ("0.485,0.456,0.406", the ``--mean`` / ``--std`` option).
        channels: channel order the model takes: "RGB", "BGR" or "GRAY" (any case).
        resize_short: short side in pixels before the centre crop to the input size.

    Returns:
        (a copy of the model with ``preprocess`` set, the warning text or None). The
        warning names the options that set the values (``--mean`` ...).

    Raises:
        EdgeoptError: the model has no preprocessing and its first input is not a
            4-D NCHW/NHWC image with 1 or 3 channels; a value is malformed (bad
            numbers, unknown channel order) or outside its range (NaN, std <= 0,
            resize_short < 1, a mean/std count other than 1 or the channels'); see
            :class:`edgeopt.preprocess.Preprocess`.
    """
    given = any(v is not None for v in (mean, std, channels, resize_short))
    warning = None
    if model.preprocess is None:
        spec = model.inputs[0]
        try:
            base = default_for_input(spec.shape, spec.layout)
        except ValueError as e:
            raise EdgeoptError(f"{model.name}: {e}; edgeopt optimizes image models (NCHW/NHWC, 1 or 3 channels)") from None
        if not given:
            warning = (f"{model.name} carries no preprocessing; using resize to {base.size[0]}x{base.size[1]}, "
                       f"scale 1/255, {base.channels}: set --mean/--std/--channels/--resize-short to match how it "
                       f"was trained")
    else:
        base = model.preprocess
    changes: dict = {}
    try:
        if mean is not None:
            changes["mean"] = parse_floats(mean, "--mean") if isinstance(mean, str) else tuple(map(float, mean))
        if std is not None:
            changes["std"] = parse_floats(std, "--std") if isinstance(std, str) else tuple(map(float, std))
        if channels is not None:
            changes["channels"] = channels.upper()
        if resize_short is not None:
            changes["resize_short"] = resize_short
        pre = dataclasses.replace(base, **changes)
    except ValueError as e:
        raise EdgeoptError(str(e)) from None
    return dataclasses.replace(model, preprocess=pre), warning
