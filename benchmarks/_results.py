"""Writing a benchmark's results: JSON beside a Markdown table, each replaced atomically."""

from __future__ import annotations

import json
from pathlib import Path

from edgeopt._util.atomic import atomic_write_bytes


def write_results(out: Path, data: dict, markdown: str) -> None:
    """Write ``data`` to ``out`` (JSON) and ``markdown`` to ``out`` with suffix .md, print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, json.dumps(data, indent=2, default=str).encode())
    atomic_write_bytes(out.with_suffix(".md"), markdown.encode())
    print(markdown)
