"""Errors that edgeopt raises on bad input.

Every message is one line that names the problem and the fix. The CLI prints it to
stderr and exits with status 2; a traceback only appears with ``--debug``.
"""

from __future__ import annotations


class EdgeoptError(Exception):
    """Base class: a user-facing problem with a one-line message naming problem and fix."""


class ModelLoadError(EdgeoptError):
    """The model reference cannot be loaded (missing file, not ONNX, truncated, unknown zoo name)."""


class ShapeError(EdgeoptError):
    """An input shape is malformed or does not fit the model."""


class DataError(EdgeoptError):
    """Images or labels cannot be read or do not fit the model."""


class BackendUnavailable(EdgeoptError):
    """A backend is not installed or cannot run this model; the message says why and how to fix."""


class PassError(EdgeoptError):
    """A compression pass cannot be applied (missing calibration data, unsupported graph, ...)."""


class ArtifactTampered(EdgeoptError):
    """A cached file that is loaded as code (a compiled library, a converted model) no longer
    matches the sha256 edgeopt recorded when it wrote it: refused, never loaded. Not one
    cell's failure: commands stop on it, since the cache needs the user's attention."""


class OutputError(EdgeoptError):
    """An output path cannot take the output: it is not a regular file (or, for an output
    folder, not a folder), it is the same file as an input, or its file system refuses the
    write (full, read-only, file size limit, permission denied).

    Attributes:
        os_error: the OSError behind it, when the file system refused (else None).
    """

    os_error: OSError | None = None
