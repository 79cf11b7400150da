"""Packages a feature needs beyond the core: import one, or say in one line how to get it.

A missing package is found by an import attempt each time (not by a module object held
since start-up), so the answer is right in a process that has it half-imported, and
callers can check before any work rather than fail halfway through a job.

The core install is numpy, onnx, psutil, typer and rich; a board installs
``edgeopt[device,ort]``, the workstation ``edgeopt[all]`` (issue 17). An import of a
library the install left out that no :func:`require` guards ends the command with
:func:`missing_extra_line` (the extra to install) instead of a traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import EdgeoptError
from .errorline import error_line

# Module -> the install command, with the versions pyproject.toml (and the Makefile, for
# the --no-deps installs) asks for.
INSTALL = {
    "nncf": "pip install 'nncf>=2.14'",
    "torch": "pip install torch==2.13.0 (the CPU build)",
    "torch_pruning": "pip install 'torch-pruning>=1.6'",
    "onnx2torch": "pip install --no-deps onnx2torch==1.5.15",
    "mlperf_loadgen": "pip install 'edgeopt[loadgen]'",
}


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose``, or refuse with the command that installs it.

    Args:
        module: the import name, a key of :data:`INSTALL` (e.g. "nncf", "torch_pruning").
        purpose: what needs it, for the message, e.g. "pass int8-nncf" or "--finetune".

    Returns:
        the imported module.

    Raises:
        EdgeoptError: the module is missing ("pass int8-nncf needs nncf, which is not
            installed: pip install 'nncf>=2.14'") or fails to import (its error line).
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        why = "which is not installed" if e.name == module else f"which fails to import ({error_line(e)})"
        raise EdgeoptError(f"{purpose} needs {module}, {why}: {INSTALL.get(module, f'pip install {module}')}") from None


EXTRA_OF = {"onnxruntime": "ort", "openvino": "openvino", "distributed": "device", "dask": "device",
            "mlperf_loadgen": "loadgen"}
"""Top-level module -> the extra that installs it; any other third-party module is in ``all``."""
BASE = frozenset({"numpy", "onnx", "psutil", "typer", "rich", "click", "edgeopt"})
"""Modules of the core install (one missing is a broken install, not a missing extra)."""


def extra_for(module: str) -> str | None:
    """The extra that installs ``module`` (a dotted name by its top level); None for the core."""
    top = module.split(".", 1)[0]
    return None if top in BASE else EXTRA_OF.get(top, "all")


def missing_extra_line(e: ModuleNotFoundError) -> str | None:
    """One line naming the missing module and the extra that brings it; None when the
    missing module is not one an extra installs."""
    extra = extra_for(e.name) if e.name else None
    if extra is None:
        return None
    return (f"this needs {e.name.split('.', 1)[0]}, which this install of edgeopt does not have: "
            f"pip install 'edgeopt[{extra}]'")
