"""The ``edgeopt`` command line: thin Typer commands over the public API.

One module per command group (:mod:`.models`, :mod:`.bench`, :mod:`.compress`,
:mod:`.optimize`, and :mod:`.machine`, :mod:`.roofline`, :mod:`.energy`,
:mod:`.dataflow`, :mod:`.convalgo`, :mod:`.stream`), the shared options in
:mod:`.options`, the app and the entry point in :mod:`.app`. ``edgeopt = edgeopt.cli:main``
and ``python -m edgeopt.cli`` both run :func:`main`.
"""

from __future__ import annotations

from .app import app, main

__all__ = ["app", "main"]
