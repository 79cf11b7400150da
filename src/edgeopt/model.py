"""The Model: the one IR of edgeopt (an ONNX ModelProto) plus what a user needs to run it.

A Model carries the ``onnx.ModelProto``, the concrete :class:`InputSpec` of each input,
the :class:`~edgeopt.preprocess.Preprocess` that turns an image into an input, the class
labels when known, and provenance (source, sha256, the passes applied). Each input's
batch axis (axis 0 unless ``--shape`` or the model says otherwise; none for an input
without one, such as a recurrent state fed whole) stays symbolic (``N``) in the proto so
one model serves every batch size; every other dimension is fixed at load time. A graph
that fixes its batch inside (a Reshape to a literal (1, -1)) is found and recorded
(:attr:`Model.fixed_batch`), so it is run at that batch only. The shapes themselves
(:class:`~edgeopt.shapes.InputSpec`, ``--shape``, fixing dims) are :mod:`edgeopt.shapes`.

Loading never modifies the input file; :meth:`Model.save` writes a temp file and renames.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from .errors import ModelLoadError
from ._util.errorline import error_line
from ._util.atomic import atomic_write_bytes
from ._util.userfile import check_regular_file, read_user_file
from .preprocess import Preprocess
from .shapes import BATCH_DIM, BatchCheck, InputSpec, find_fixed_batch, fix_input_shapes

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
        batch_check: what a run found about the batch (see :class:`BatchCheck`), or None
            until one ran: the graph alone then decides (:attr:`fixed_batch`).
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
    batch_check: BatchCheck | None = None
    _bytes: bytes | None = field(default=None, init=False, repr=False, compare=False)
    _graph_batch: BatchCheck | None = field(default=None, init=False, repr=False, compare=False)

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

    @property
    def batch_status(self) -> BatchCheck:
        """Whether the model runs at any batch: no batch axis on any input (batch 1), else
        what a run found (:attr:`batch_check`), else what the graph says
        (:func:`find_fixed_batch`, read once per Model)."""
        if not any(s.batch_axis is not None for s in self.inputs):
            return BatchCheck(1, "no input has a batch axis")
        if self.batch_check is not None:
            return self.batch_check
        if self._graph_batch is None:
            self._graph_batch = find_fixed_batch(self.proto)
        return self._graph_batch

    @property
    def fixed_batch(self) -> int | None:
        """The only batch the model runs at, or None when any batch runs (see
        :attr:`batch_status`)."""
        return self.batch_status.fixed

    def example_feeds(self, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
        """Random inputs of the right shapes and dtypes (for timing; never for quality):
        standard-normal floats, 0/1 integers and booleans (valid as indices and masks).
        ``batch`` goes on each input's batch axis; an input without one gets its shape."""
        rng = np.random.default_rng(seed)
        feeds = {}
        for s in self.inputs:
            shape = s.batched(batch)
            if np.issubdtype(np.dtype(s.dtype), np.floating):
                feeds[s.name] = rng.standard_normal(shape).astype(s.dtype)
            else:
                feeds[s.name] = rng.integers(0, 2, size=shape).astype(s.dtype)
        return feeds

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
        atomic_write_bytes(path, self.serialized())
        return path


# -- loading -------------------------------------------------------------------------------
# protobuf refuses a serialized message over 2 GiB, so ONNX does too: a larger model keeps
# its weights in external data files beside the .onnx file.
MAX_PROTO_BYTES = 2 << 30
_TOO_LARGE = ("protobuf holds at most 2 GiB, so keep the weights as ONNX external data beside the .onnx file "
              "(onnx.save(model, path, save_as_external_data=True))")


def read_onnx(path: str | os.PathLike) -> tuple[onnx.ModelProto, str]:
    """Read and check an ONNX file without modifying it.

    Only a regular file is opened (a FIFO, device or socket is refused before it is read)
    and only up to :data:`MAX_PROTO_BYTES`. Weights stored as external data are read from
    files inside the model's folder (:func:`_load_external_data`), so the proto returned
    is self-contained.

    Returns:
        (proto, sha256 of the .onnx file bytes).

    Raises:
        ModelLoadError: the file is missing, not a regular file, over 2 GiB, not ONNX,
            truncated, its external data is missing or outside its folder, or it fails
            the checker.
    """
    p = Path(path)
    data = read_user_file(p, what="model", max_bytes=MAX_PROTO_BYTES, too_large=_TOO_LARGE, error=ModelLoadError)
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
    _load_external_data(proto, p)
    try:
        onnx.checker.check_model(proto)
    except Exception as e:
        raise ModelLoadError(
            f"{p} fails the ONNX checker ({error_line(e, limit=160, with_type=False)}): re-export the model"
        ) from e
    return proto, hashlib.sha256(data).hexdigest()


def _load_external_data(proto: onnx.ModelProto, path: Path) -> None:
    """Read the external data of ``proto`` (loaded from ``path``) into its tensors.

    Each tensor's location must be a relative path to a regular file inside the model's
    folder: no absolute path, no ``..``, no symbolic link (onnx's own loader refuses
    those too; checking here keeps the rule whatever onnx version is installed).

    Raises:
        ModelLoadError: a location breaks that rule, a file is missing or too short, or
            the model with its data is over protobuf's 2 GiB.
    """
    from onnx.external_data_helper import ExternalDataInfo, _get_all_tensors, uses_external_data

    tensors = [t for t in _get_all_tensors(proto) if uses_external_data(t)]
    if not tensors:
        return
    base = path.parent
    for t in tensors:
        try:
            location = ExternalDataInfo(t).location
        except ValueError as e:  # a negative offset or length
            raise ModelLoadError(f"{path}: external data of tensor {t.name!r} is malformed "
                                 f"({error_line(e, limit=120, with_type=False)}): re-export the model") from None
        target = base / location
        if (not location or os.path.isabs(location) or ".." in Path(location).parts
                or target.is_symlink() or not os.path.realpath(target).startswith(os.path.realpath(base) + os.sep)):
            raise ModelLoadError(f"{path}: external data of tensor {t.name!r} is at {location!r}, not a plain "
                                 f"file inside the model's folder (no absolute path, '..' or symbolic link is "
                                 f"followed): put the data file itself beside the model")
        check_regular_file(target, what=f"external data of tensor {t.name!r} of {path}", error=ModelLoadError)
    try:
        onnx.load_external_data_for_model(proto, str(base))
    except Exception as e:
        raise ModelLoadError(f"cannot read the external data of {path} ({error_line(e, limit=160, with_type=False)}): "
                             f"keep the data files the model was saved with beside it") from e
    if proto.ByteSize() > MAX_PROTO_BYTES:
        raise ModelLoadError(f"{path} with its external data is {proto.ByteSize():,} bytes, over the 2 GiB "
                             f"edgeopt holds as one model: models over 2 GiB are not supported")


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
