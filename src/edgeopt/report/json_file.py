"""One JSON document written as an output file (the ``--out`` / ``--json`` of the
analysis and stream commands)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .._util.atomic import atomic_write_bytes


def write_json(path: str | os.PathLike, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``path``, atomically (parent folders created).

    Returns:
        the path written.
    """
    path = Path(path)
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())
    return path
