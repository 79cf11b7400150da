"""Real-time video: sources with capture timestamps, the latest-frame ring pipeline and
the naive sequential loop, drawing, and glass-to-glass latency metrics.

- :mod:`.sources`: SimCamera (real-time replay), image folder, video file, OpenCV camera.
- :mod:`.pipeline`: RingBuffer, run_ring, run_sequential.
- :mod:`.detectors`: Detections, the frame detectors (MTCNN, text) with stage times.
- :mod:`.base`: the stream's errors and the Sink protocol.
- :mod:`.sinks`: video (as long as the stream: frames held to their timestamps), PNG
  folder (with timestamps.csv), tee and null outputs; make_sink.
- :mod:`.window`: WindowSink, the annotated frames on screen (Tk).
- :mod:`.metrics`: StreamReport (fps, dropped frames, latency p50/p90/p99, stage times).
- :mod:`.status`: the live status line on stderr (fps, latency p50, drops).
- :mod:`.clip`: the deterministic test clips (faces: scikit-image photos; text: rendered
  document pages); lfw_rates.

Importing this package imports no runtime (onnxruntime, imageio, OpenCV) nor Tk.
"""

from __future__ import annotations

from .base import OutputClosed, PipelineError
from .clip import TestClip, lfw_rates
from .detectors import Detections, MtcnnFrameDetector, TextFrameDetector
from .metrics import StreamMetrics, StreamReport
from .pipeline import RingBuffer, run_ring, run_sequential
from .sinks import make_sink
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
