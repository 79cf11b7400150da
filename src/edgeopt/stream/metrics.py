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


def _or_measuring(value: float | None, spec: str, unit: str) -> str:
    return "measuring..." if value is None else f"{value:{spec}}{unit}"


def _fps_text(fps: float | None, spec: str = ".1f") -> str:
    return "fps measuring..." if fps is None else f"{fps:{spec}} fps"


class StreamMetrics:
    """Collects per-frame numbers during a run; :meth:`report` summarises them, and
    :meth:`overlay` / :meth:`status` say how the run goes while it runs.

    Not thread-safe: only the output (inference) thread records.

    Args:
        window_s: the live numbers (fps, p50) cover the frames output in the last
            ``window_s`` seconds.
        clock: the clock of the sources' timestamps, s (tests inject one).
    """

    def __init__(self, window_s: float = 2.0, clock: Callable[[], float] = time.perf_counter) -> None:
        self.clock = clock
        self.t_start = clock()
        self.latencies_ms: list[float] = []
        self.stage_ms: dict[str, list[float]] = {s: [] for s in STAGES}
        self.boxes = 0
        self._recent: deque[tuple[float, float]] = deque()  # (output time s, latency ms)
        self._window = window_s

    def record(self, t_capture: float, t_out: float, stages_ms: dict[str, float], boxes: int) -> None:
        """One processed frame: capture and output times (perf_counter s), stage times (ms)."""
        latency = (t_out - t_capture) * 1e3
        self.latencies_ms.append(latency)
        for s in STAGES:
            self.stage_ms[s].append(float(stages_ms.get(s, 0.0)))
        self.boxes += boxes
        self._recent.append((t_out, latency))
        while self._recent and self._recent[0][0] < t_out - self._window:
            self._recent.popleft()

    def live_fps(self) -> float | None:
        """Frames/s over the last ``window_s`` (frame intervals, so one slow frame does not
        read as 0), or None until two frames were output."""
        if len(self._recent) < 2:
            return None
        span = self._recent[-1][0] - self._recent[0][0]
        return (len(self._recent) - 1) / span if span > 0 else None

    def live_p50(self) -> float | None:
        """Median glass-to-glass latency of the last ``window_s``, ms; None before any frame."""
        return percentile([lat for _, lat in self._recent], 50) if self._recent else None

    def overlay(self, t_capture: float | None = None) -> str:
        """Overlay text for the frame captured at ``t_capture``: recent fps and that frame's
        own latency so far (capture to now, before drawing; the last frame's full latency
        when ``t_capture`` is None). Never "nan": "measuring..." until there is a value."""
        fps = self.live_fps()
        if t_capture is not None:
            latency: float | None = (self.clock() - t_capture) * 1e3
        else:
            latency = self.latencies_ms[-1] if self.latencies_ms else None
        return f"{_fps_text(fps)}  latency {_or_measuring(latency, '.0f', ' ms')}"

    def status(self, captured: int) -> str:
        """The live status line: time since the start, recent fps and p50 latency, frames
        processed of ``captured`` (from the source) and dropped."""
        n = len(self.latencies_ms)
        captured = max(captured, n)
        return (f"{self.clock() - self.t_start:5.1f} s  {_fps_text(self.live_fps(), '5.1f')}  "
                f"latency p50 {_or_measuring(self.live_p50(), '.0f', ' ms')}  {n}/{captured} frames processed, "
                f"{captured - n} dropped")

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
