"""Backend names -> lazily imported classes.

``import edgeopt`` imports no runtime: a class is imported on first :func:`get`, so a
missing OpenVINO or torch only matters to the user who asks for it.
"""

from __future__ import annotations

import importlib
from functools import lru_cache

from ..errors import BackendUnavailable
from .base import Backend

_REGISTRY: dict[str, str] = {
    "ort": "edgeopt.backends.ort:OrtBackend",
    "openvino": "edgeopt.backends.openvino:OpenVinoBackend",
    "torch": "edgeopt.backends.torch:TorchBackend",
    "torch-onednn": "edgeopt.backends.torch_conv:OneDnnBackend",
    "torch-nnpack": "edgeopt.backends.torch_conv:NnpackBackend",
    "torch-im2col": "edgeopt.backends.torch_conv:Im2colBackend",
    "tvm": "edgeopt.backends.tvm.session:TvmBackend",
    "litert": "edgeopt.backends.litert:LiteRtBackend",
    "reference": "edgeopt.backends.reference:ReferenceBackend",
}
DEFAULT = "ort"


def names() -> list[str]:
    """Registered backend names."""
    return list(_REGISTRY)


@lru_cache(maxsize=None)
def get(name: str) -> Backend:
    """The backend registered as ``name`` (imported on first use).

    Raises:
        BackendUnavailable: unknown name.
    """
    target = _REGISTRY.get(name)
    if target is None:
        raise BackendUnavailable(
            f"unknown backend {name!r}: choose from {', '.join(_REGISTRY)}"
        )
    module_name, _, cls_name = target.partition(":")
    return getattr(importlib.import_module(module_name), cls_name)()


def require(name: str) -> Backend:
    """:func:`get`, then fail with the install hint when the backend is not usable here.

    Raises:
        BackendUnavailable: unknown or not installed.
    """
    backend = get(name)
    why = backend.available()
    if why is not None:
        raise BackendUnavailable(f"backend {name!r} is not usable: {why}")
    return backend
