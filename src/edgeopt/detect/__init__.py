"""Detectors built from several edgeopt Models, each run by a backend session.

- :class:`MtcnnDetector`: MTCNN face detection (Zhang et al. 2016) on the ``zoo:mtcnn-*``
  networks or optimised versions of them.
"""

from __future__ import annotations

from .mtcnn import (
    DetectorConfigError,
    Faces,
    MtcnnConfig,
    MtcnnDetector,
    nms,
    pnet_at_size,
)

__all__ = ["DetectorConfigError", "Faces", "MtcnnConfig", "MtcnnDetector", "nms", "pnet_at_size"]
