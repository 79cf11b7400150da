"""The Model: the one IR of edgeopt (an ONNX ModelProto) plus what a user needs to run it.

A Model carries the ``onnx.ModelProto``, the concrete :class:`InputSpec` of each input,
the :class:`~edgeopt.preprocess.Preprocess` that turns an image into an input, the class
labels when known, and provenance (source, sha256, the passes applied). The batch
dimension stays symbolic (``N``) in the proto so one model serves every batch size;
every other dimension is fixed at load time.

Loading never modifies the input file; :meth:`Model.save` writes a temp file and renames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from .errors import ModelLoadError, ShapeError
from ._util.errorline import error_line
from ._util.onnxgraph import copy_proto
from ._util.atomic import atomic_write_bytes
from .preprocess import Preprocess

BATCH_DIM = "N"


@dataclass(frozen=True)
class InputSpec:
    """One model input.

    Attributes:
        name: graph input name.
        shape: concrete shape at batch 1, e.g. (1, 3, 224, 224).
        dtype: numpy dtype name, e.g. "float32".
        layout: "NCHW", "NHWC" or "" when not an image.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = "NCHW"

    def batched(self, batch: int) -> tuple[int, ...]:
        """The shape with the leading (batch) dimension set to ``batch``."""
        return (batch, *self.shape[1:])


@dataclass
class Model:
    """An ONNX model with its input specs, preprocessing, labels and provenance.

    Attributes:
        proto: the ONNX model; batch dim symbolic, other dims concrete.
        inputs: one InputSpec per graph input (initializers excluded).
        preprocess: how an image becomes the (first) input, or None if unknown.
        labels: class names for classifier outputs, or None.
        task: the task quality is judged by (a name of :mod:`edgeopt.evaluate.tasks`, or the
            zoo's "classification", "detection", "other"); None: inferred from the outputs
            (:func:`edgeopt.evaluate.tasks.infer.infer_task`).
        source: where it came from (path, "zoo:NAME" or "torch:ClassName").
        source_sha256: sha256 of the source file bytes ("" for in-memory sources).
        passes: names of the passes applied, in order.
        torch_module: the PyTorch module it was exported from, for passes that train
            and for the torch backend; None for ONNX sources.
    """

    proto: onnx.ModelProto
    inputs: list[InputSpec]
    preprocess: Preprocess | None = None
    labels: list[str] | None = None
    task: str | None = None
    source: str = ""
    source_sha256: str = ""
    passes: tuple[str, ...] = ()
    torch_module: Any = field(default=None, repr=False)
    _bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)

    # -- derived -----------------------------------------------------------------------
    def serialized(self) -> bytes:
        """The proto as bytes (cached; a Model is not mutated after construction)."""
        if self._bytes is None:
            self._bytes = self.proto.SerializeToString()
        return self._bytes

    @property
    def sha256(self) -> str:
        """sha256 hex digest of the serialized proto (identifies this exact graph)."""
        return hashlib.sha256(self.serialized()).hexdigest()

    @property
    def size_bytes(self) -> int:
        """Size of the serialized ONNX file in bytes."""
        return len(self.serialized())

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.proto.graph.output]

    @property
    def name(self) -> str:
        """Short display name: the zoo name or file stem, plus the passes applied."""
        base = self.source.split("/")[-1].removesuffix(".onnx") or "model"
        return "+".join([base, *self.passes])

    def example_feeds(self, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the right shapes and dtypes (for timing; never for quality)."""
        rng = np.random.default_rng(seed)
        return {
            s.name: rng.standard_normal(s.batched(batch)).astype(s.dtype)
            for s in self.inputs
        }

    # -- transforms --------------------------------------------------------------------
    def derive(self, proto: onnx.ModelProto, pass_name: str, *, keep_torch: bool = False) -> "Model":
        """A new Model with ``proto`` and ``pass_name`` appended to the passes.

        The torch module is dropped unless ``keep_torch``: after an ONNX pass it no
        longer describes the graph.
        """
        return dataclasses.replace(
            self,
            proto=proto,
            passes=(*self.passes, pass_name),
            torch_module=self.torch_module if keep_torch else None,
        )

    def save(self, path: str | os.PathLike) -> Path:
        """Write the ONNX file atomically (temp file in the same folder, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(path, self.serialized())
        return path


# -- shapes ------------------------------------------------------------------------------
def parse_shapes(specs: Sequence[str] | None) -> dict[str | None, tuple[int, ...]]:
    """Parse ``--shape`` values: ``NAME=1x3x224x224`` or ``1x3x224x224`` (first input).

    Returns:
        {input name or None: shape}.

    Raises:
        ShapeError: a value is not of that form or has a non-positive dimension.
    """
    out: dict[str | None, tuple[int, ...]] = {}
    for spec in specs or ():
        name, _, dims = spec.rpartition("=")
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise ShapeError(
                f"bad --shape {spec!r}: write NAME=1x3x224x224 (positive integers joined by 'x')"
            )
        out[name or None] = shape
    return out


def _graph_inputs(proto: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    inits = {i.name for i in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in inits]


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None]:
    out: list[int | str | None] = []
    for d in vi.type.tensor_type.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            out.append(d.dim_value)
        else:
            out.append(d.dim_param or None)
    return out


def fix_input_shapes(
    proto: onnx.ModelProto,
    shapes: dict[str | None, tuple[int, ...]] | None = None,
    default_shape: tuple[int, ...] | None = None,
) -> tuple[onnx.ModelProto, list[InputSpec]]:
    """Fix every non-batch dimension of every input; make the batch dimension symbolic.

    The concrete shape of an input comes from ``shapes[name]`` (or ``shapes[None]`` for
    the first input), else ``default_shape`` for the first input, else the model's own
    static dims with a dynamic batch read as 1.

    Returns:
        (a new proto, the InputSpecs at batch 1).

    Raises:
        ShapeError: a dynamic non-batch dim has no value, a given shape has the wrong rank
            or contradicts a static dim, or a name is not an input of the model.
    """
    proto = copy_proto(proto)
    shapes = dict(shapes or {})
    graph_inputs = _graph_inputs(proto)
    names = [i.name for i in graph_inputs]
    for key in shapes:
        if key is not None and key not in names:
            raise ShapeError(f"--shape names {key!r}, but the model's inputs are {names}")
    specs: list[InputSpec] = []
    for idx, vi in enumerate(graph_inputs):
        dims = _dims(vi)
        given = shapes.get(vi.name) or (shapes.get(None) if idx == 0 else None)
        if given is None and idx == 0 and default_shape is not None:
            given = default_shape
        if given is not None:
            if dims and len(given) != len(dims):
                raise ShapeError(
                    f"input {vi.name!r} has rank {len(dims)} ({_fmt(dims)}), the shape given "
                    f"has rank {len(given)} ({_fmt(given)}): pass --shape {vi.name}=" + _fmt(
                        [d if isinstance(d, int) else 1 for d in dims])
                )
            for i, (d, g) in enumerate(zip(dims, given)):
                if i > 0 and isinstance(d, int) and d != g:
                    raise ShapeError(
                        f"input {vi.name!r} is fixed at {_fmt(dims)}; the shape {_fmt(given)} "
                        f"differs in dim {i}: pass --shape {vi.name}=" + _fmt(
                            [given[0], *[x if isinstance(x, int) else 1 for x in dims[1:]]])
                    )
            concrete = (1, *given[1:])
        else:
            missing = [i for i, d in enumerate(dims) if i > 0 and not isinstance(d, int)]
            if missing:
                raise ShapeError(
                    f"input {vi.name!r} has dynamic dims {_fmt(dims)}: fix them with "
                    f"--shape {vi.name}=1x" + "x".join(str(d) if isinstance(d, int) else "?" for d in dims[1:])
                )
            concrete = (1, *[int(d) for d in dims[1:]])  # type: ignore[arg-type]
        elem = vi.type.tensor_type.elem_type
        dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name if elem else "float32"
        layout = "NCHW" if len(concrete) == 4 and concrete[1] in (1, 3) else (
            "NHWC" if len(concrete) == 4 and concrete[3] in (1, 3) else "")
        specs.append(InputSpec(vi.name, concrete, dtype, layout))
        _set_dims(vi, [BATCH_DIM, *concrete[1:]])
    # Output and intermediate shapes from the exporter may pin the old batch or dynamic
    # names; shape inference recomputes what it can from the fixed inputs.
    del proto.graph.value_info[:]
    for out in proto.graph.output:
        odims = _dims(out)
        if odims:
            _set_dims(out, [BATCH_DIM] + [d if isinstance(d, int) else f"d{i}" for i, d in
                                          enumerate(odims[1:], 1)])
    check_shapes(proto, specs)
    return proto, specs


def check_shapes(proto: onnx.ModelProto, specs: list[InputSpec]) -> None:
    """Run ONNX shape inference at the concrete shapes and reject impossible ones.

    Raises:
        ShapeError: inference fails or yields a non-positive dimension (for example an
            input too small for the model's strides and kernels).
    """
    concrete = copy_proto(proto)
    by_name = {s.name: s for s in specs}
    for vi in _graph_inputs(concrete):
        if vi.name in by_name:
            _set_dims(vi, list(by_name[vi.name].shape))
    try:
        inferred = onnx.shape_inference.infer_shapes(concrete, strict_mode=True, data_prop=True)
    except Exception as e:  # onnx raises InferenceError and others
        raise ShapeError(
            f"the input shapes {[_fmt(s.shape) for s in specs]} do not fit the model "
            f"({error_line(e, limit=200, with_type=False)}): pass a --shape the model accepts"
        ) from e
    for vi in list(inferred.graph.value_info) + list(inferred.graph.output):
        for d in vi.type.tensor_type.shape.dim:
            if d.HasField("dim_value") and d.dim_value <= 0 and d.dim_value != 0:
                raise ShapeError(
                    f"the input shapes {[_fmt(s.shape) for s in specs]} give tensor "
                    f"{vi.name!r} a non-positive size: pass a larger --shape"
                )


def _set_dims(vi: onnx.ValueInfoProto, dims: Sequence[int | str]) -> None:
    shape = vi.type.tensor_type.shape
    del shape.dim[:]
    for d in dims:
        nd = shape.dim.add()
        if isinstance(d, str):
            nd.dim_param = d
        else:
            nd.dim_value = int(d)


def _fmt(dims: Sequence[Any]) -> str:
    return "x".join(str(d) if d is not None else "?" for d in dims)


# -- loading -------------------------------------------------------------------------------
def read_onnx(path: str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    """Read and check an ONNX file without modifying it.

    Returns:
        (proto, sha256 of the file bytes).

    Raises:
        ModelLoadError: the file is missing, not ONNX, truncated or fails the checker.
    """
    p = Path(path)
    if not p.exists():
        raise ModelLoadError(f"model file not found: {p}: check the path")
    if p.is_dir():
        raise ModelLoadError(f"{p} is a folder, not an ONNX file: pass the .onnx file inside it")
    data = p.read_bytes()
    if not data:
        raise ModelLoadError(f"{p} is empty: re-export or re-download the model")
    try:
        proto = onnx.load_from_string(data)
    except Exception as e:
        raise ModelLoadError(
            f"{p} is not a readable ONNX file ({type(e).__name__}; truncated or another "
            f"format?): export the model to ONNX and pass that file"
        ) from e
    if not proto.graph.node or not proto.graph.output:
        raise ModelLoadError(
            f"{p} does not hold an ONNX graph (no nodes or outputs; truncated or another "
            f"format?): export the model to ONNX and pass that file"
        )
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise ModelLoadError(
            f"{p} fails the ONNX checker ({error_line(e, limit=160, with_type=False)}): re-export the model"
        ) from e
    return proto, hashlib.sha256(data).hexdigest()


def labels_from_metadata(proto: onnx.ModelProto) -> list[str] | None:
    """Class labels stored as newline-separated ``character`` or ``labels`` metadata."""
    meta = {p.key: p.value for p in proto.metadata_props}
    for key in ("character", "labels", "classes"):
        if meta.get(key):
            return meta[key].splitlines()
    return None


def from_torch(
    module: Any,
    example_input: Any,
    *,
    input_name: str = "input",
    output_name: str = "output",
    opset: int = 17,
    source: str | None = None,
    **model_kwargs: Any,
) -> Model:
    """Export a PyTorch module to ONNX (batch dimension dynamic) and wrap it as a Model.

    Args:
        module: a ``torch.nn.Module``; it is put in eval mode.
        example_input: a float tensor of shape (1, C, H, W) (or any single input tensor).
        opset: ONNX opset for the export (17 is read by every backend we support).
        model_kwargs: preprocess, labels, task for the Model.

    Raises:
        ModelLoadError: the module cannot be exported.
    """
    import io

    import torch

    module = module.eval()
    buf = io.BytesIO()
    try:
        # The TorchScript exporter (dynamo=False) is seconds faster than torch.export
        # for plain CNNs and needs no onnxscript; both give the same graph for these ops.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(
                module, (example_input,), buf, dynamo=False, opset_version=opset,
                input_names=[input_name], output_names=[output_name],
                dynamic_axes={input_name: {0: BATCH_DIM}, output_name: {0: BATCH_DIM}},
            )
    except Exception as e:
        raise ModelLoadError(
            f"cannot export {type(module).__name__} to ONNX ({error_line(e, limit=200, with_type=False)}): "
            f"check that the example input matches forward()"
        ) from e
    proto = onnx.load_from_string(buf.getvalue())
    shape = tuple(int(d) for d in example_input.shape)
    proto, specs = fix_input_shapes(proto, default_shape=shape)
    return Model(
        proto=proto, inputs=specs, source=source or f"torch:{type(module).__name__}",
        torch_module=module, **model_kwargs,
    )
