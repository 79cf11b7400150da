"""Deploy exactly what was measured: the runtime settings of the chosen model's measured
session (written into deploy.json by :func:`~edgeopt.optimizer.result.deploy_record`) and
:func:`load_deployment`, which opens the model beside a deploy.json with those settings.

Why: runtimes pick defaults per machine. OpenVINO's CPU plugin runs fp32 models in bf16 on
CPUs with AVX512-BF16/AMX unless INFERENCE_PRECISION_HINT=f32 is set, as edgeopt sets it;
a deployment that opened model.onnx with the runtime's defaults would compute other
numbers, at another speed, than the ones the report states.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backends.registry import get
from ..errors import EdgeoptError
from ..model import Model, labels_from_metadata, read_onnx
from ..shapes import fix_input_shapes

if TYPE_CHECKING:
    from ..backends.base import Session

DEPLOY_SCHEMA = 2
"""deploy.json's format version; 2 added ``runtime`` (the backend's settings)."""


def runtime_record(backend: str, settings: dict[str, Any] | None, model: "Model", threads: int) -> dict[str, Any]:
    """deploy.json's ``runtime`` entry: {"backend", "version", "settings"}.

    Args:
        backend: registry name of the chosen backend.
        settings: what the measured session reported (:meth:`Session.settings`); when
            empty (a trial measured before edgeopt recorded them), a session of ``model``
            is prepared now, the same way the measurement prepared it, and asked.
        model: the chosen model.
        threads: the chosen intra-op thread count.

    Raises:
        BackendUnavailable: the backend cannot prepare the model (only when asked now).
    """
    be = get(backend)
    if not settings:
        session = be.prepare(model, threads=threads)
        try:
            settings = session.settings()
        finally:
            session.close()
    return {"backend": backend, "version": be.version(), "settings": settings}


def load_deployment(path: str | os.PathLike) -> "Session":
    """Open the model a deploy.json describes, on its backend, with exactly the runtime
    settings its measurement used.

    Args:
        path: a deploy.json written by ``edgeopt optimize`` (schema 2 or later), or the
            folder holding it; its ``model_file`` is read from the same folder.

    Returns:
        a Session: ``run({input name: array}) -> [outputs in graph order]``.

    Raises:
        EdgeoptError: the file is missing, not a deploy.json of schema >= 2, the model
            file differs from the one measured (sha256), or the runtime reports other
            settings than recorded (e.g. another runtime version).
        BackendUnavailable: the backend is not installed or cannot load the model.
    """
    deploy_file = Path(path)
    if deploy_file.is_dir():
        deploy_file = deploy_file / "deploy.json"
    record = _read(deploy_file)
    model = _measured_model(deploy_file.parent / record["model_file"], record.get("model_sha256"))
    runtime = record["runtime"]
    return get(runtime["backend"]).prepare_with(model, runtime["settings"])


def _measured_model(path: Path, sha256: str | None) -> Model:
    """The model file as a Model whose proto is the file's exact bytes (``load_model``
    rewrites the graph's shape annotations: what runs must be what was measured).

    Raises:
        ModelLoadError: the file is missing or not ONNX.
        EdgeoptError: its sha256 is not the recorded one.
    """
    proto, digest = read_onnx(path)
    if sha256 and digest != sha256:
        raise EdgeoptError(f"{path.name} beside deploy.json is not the model that was measured "
                           f"(sha256 differs): copy the model.onnx written with this deploy.json")
    _, specs = fix_input_shapes(proto)  # the InputSpecs only; the proto stays as it is
    return Model(proto=proto, inputs=specs, labels=labels_from_metadata(proto), source=str(path),
                 source_sha256=digest)


def _read(deploy_file: Path) -> dict[str, Any]:
    """The deploy.json record, checked for what :func:`load_deployment` needs.

    Raises:
        EdgeoptError: unreadable, not JSON, or without a schema-2 ``runtime`` entry.
    """
    try:
        record = json.loads(deploy_file.read_text())
    except (OSError, ValueError) as e:
        raise EdgeoptError(f"cannot read {deploy_file} ({type(e).__name__}): "
                           f"give the deploy.json written by edgeopt optimize") from e
    if not isinstance(record, dict):
        record = {}
    runtime = record.get("runtime")
    if not isinstance(runtime, dict) or not {"backend", "settings"} <= set(runtime) or "model_file" not in record:
        raise EdgeoptError(f"{deploy_file} records no runtime settings (schema {record.get('schema', '?')}): "
                           f"rerun edgeopt optimize to write a schema-{DEPLOY_SCHEMA} deploy.json")
    return record
