"""What a stream run measured: fps, frames captured/processed/dropped, glass-to-glass
latency (output time - capture timestamp) percentiles and per-stage times, all in ms.

Percentiles use :func:`edgeopt.bench.stats.percentile` (MLPerf LoadGen rule).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np

from ..bench.stats import percentile

STAGES = ("preprocess", "inference", "postprocess", "draw")


@dataclass(frozen=True)
class StreamReport:
    """Summary of one run.

    Attributes:
        pipeline: "ring" or "sequential".
        wall_s: seconds from the first read to the end.
        captured: frames the source produced (read or lost).
        processed: frames detected, drawn and written.
        dropped: captured - processed (lost in the camera queue or skipped in the ring).
        fps: processed / wall_s, frames/s.
        latency_ms: {"p50", "p90", "p99", "mean", "max"} glass-to-glass, ms.
        latency_last_ms: the same over the last quarter of processed frames (shows growth).
        stage_ms: {stage: mean ms per processed frame} for preprocess, inference,
            postprocess, draw (draw includes writing the frame out).
        boxes: total boxes found (faces or text regions).
        interrupted: the run was stopped by Ctrl-C or a closed window (output kept).
        latencies_ms: per processed frame, in order.
    """

    pipeline: str
    wall_s: float
    captured: int
    processed: int
    dropped: int
    fps: float
    latency_ms: dict[str, float]
    latency_last_ms: dict[str, float]
    stage_ms: dict[str, float]
    boxes: int
    interrupted: bool = False
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    def to_dict(self, *, series: bool = False) -> dict:
        """JSON-ready dict (the per-frame series only when ``series``)."""
        d = asdict(self)
        if not series:
            d.pop("latencies_ms")
        return d

    def summary(self) -> str:
        """One line: fps, frames, latency percentiles."""
        lat = self.latency_ms
        return (f"{self.pipeline}: {self.fps:.1f} fps, {self.processed}/{self.captured} frames processed "
                f"({self.dropped} dropped), latency p50 {lat.get('p50', float('nan')):.0f} / "
                f"p90 {lat.get('p90', float('nan')):.0f} / p99 {lat.get('p99', float('nan')):.0f} ms")


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {"p50": percentile(values, 50), "p90": percentile(values, 90), "p99": percentile(values, 99),
            "mean": float(np.mean(values)), "max": max(values)}


class StreamMetrics:
    """Collects per-frame numbers during a run; :meth:`report` summarises them.

    Not thread-safe: only the output (inference) thread records.
    """

    def __init__(self, window_s: float = 1.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock  # the sources' timestamps are on this clock too (tests inject one)
        self.t_start = clock()
        self.latencies_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.boxes = 0
        self._recent: deque[float] = deque()
        self._window = window_s

    def record(self, t_capture: float, t_out: float, stages_ms: dict[str, float], boxes: int) -> None:
        """One processed frame: capture and output times (perf_counter s), stage times (ms)."""
        self.latencies_ms.append((t_out - t_capture) * 1e3)
        for s in STAGES:
            self.stage_ms[s].append(float(stages_ms.get(s, 0.0)))
        self.boxes += boxes
        self._recent.append(t_out)
        while self._recent and self._recent[0] < t_out - self._window:
            self._recent.popleft()

    def live_fps(self) -> float:
        """Frames output in the last ``window_s`` seconds, per second."""
        return len(self._recent) / self._window

    def overlay(self) -> str:
        """Overlay text for the next frame: recent fps and the last latency."""
        last = self.latencies_ms[-1] if self.latencies_ms else float("nan")
        return f"{self.live_fps():4.1f} fps  latency {last:4.0f} ms"

    def report(self, pipeline: str, captured: int, *, interrupted: bool = False) -> StreamReport:
        """The run's :class:`StreamReport`; ``captured`` comes from the source."""
        wall = self.clock() - self.t_start
        n = len(self.latencies_ms)
        captured = max(captured, n)
        return StreamReport(
            pipeline=pipeline, wall_s=wall, captured=captured, processed=n, dropped=captured - n,
            fps=n / wall if wall > 0 else 0.0, latency_ms=_summary(self.latencies_ms),
            latency_last_ms=_summary(self.latencies_ms[n - n // 4:] if n >= 4 else self.latencies_ms),
            stage_ms={s: float(np.mean(v)) if v else 0.0 for s, v in self.stage_ms.items()},
            boxes=self.boxes, interrupted=interrupted, latencies_ms=list(self.latencies_ms))
