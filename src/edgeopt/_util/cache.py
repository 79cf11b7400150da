"""Where edgeopt keeps what it computed once and reuses: trained zoo weights, compiled TVM
libraries, LiteRT conversions, this machine's device profile.

The root is ``$EDGEOPT_CACHE``, else ``$XDG_CACHE_HOME/edgeopt`` (the XDG base directory
specification), else ``~/.cache/edgeopt``.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """The cache root (not created here)."""
    root = os.environ.get("EDGEOPT_CACHE")
    if not root:
        root = str(Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "edgeopt")
    return Path(root).expanduser()
