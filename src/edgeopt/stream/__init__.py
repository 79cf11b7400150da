"""Real-time video: sources with capture timestamps, the latest-frame ring pipeline and
the naive sequential loop, drawing, and glass-to-glass latency metrics.

- :mod:`.sources`: SimCamera (real-time replay), image folder, video file, OpenCV camera.
- :mod:`.pipeline`: RingBuffer, run_ring, run_sequential, MtcnnFrameDetector, sinks.
- :mod:`.window`: WindowSink, the annotated frames on screen (Tk).
- :mod:`.metrics`: StreamReport (fps, dropped frames, latency p50/p90/p99, stage times).
- :mod:`.clip`: the deterministic test clip of scikit-image photos; lfw_rates.

Importing this package imports no runtime (onnxruntime, imageio, OpenCV) nor Tk.
"""

from __future__ import annotations

from .clip import TestClip, lfw_rates
from .metrics import StreamMetrics, StreamReport
from .pipeline import (
    Detections,
    MtcnnFrameDetector,
    OutputClosed,
    PipelineError,
    RingBuffer,
    TextFrameDetector,
    make_sink,
    run_ring,
    run_sequential,
)
from .sources import (
    CameraSource,
    Frame,
    ImageFolderSource,
    SimCamera,
    SourceError,
    VideoFileSource,
)

__all__ = [
    "CameraSource", "Detections", "Frame", "ImageFolderSource", "MtcnnFrameDetector", "OutputClosed", "PipelineError",
    "RingBuffer", "SimCamera", "SourceError", "StreamMetrics", "StreamReport", "TestClip", "TextFrameDetector", "VideoFileSource",
    "lfw_rates", "make_sink", "run_ring", "run_sequential",
]
