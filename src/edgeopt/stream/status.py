"""The live status line a stream prints on stderr while it runs (fps, latency p50, drops).

On a terminal one line is rewritten in place (``\\r``) about twice a second, as pip's and
ffmpeg's progress lines are; in a log (stderr not a terminal) a plain line is appended
every few seconds, so a log stays readable and small.
"""

from __future__ import annotations

import sys
from typing import TextIO

from .metrics import StreamMetrics

TTY_EVERY_S = 0.5
LOG_EVERY_S = 5.0


class StatusLine:
    """Writes :meth:`StreamMetrics.status` to ``stream`` at most every ``every_s`` seconds.

    Times come from the metrics' clock, so a test with an injected clock controls when
    lines appear.

    Args:
        stream: where to write (default ``sys.stderr``).
        tty: rewrite one line with ``\\r``; default: ``stream.isatty()``.
        every_s: seconds between lines; default 0.5 on a terminal, 5 in a log.
    """

    def __init__(self, stream: TextIO | None = None, *, tty: bool | None = None,
                 every_s: float | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(self.stream.isatty()) if tty is None else tty
        self.every_s = every_s if every_s is not None else (TTY_EVERY_S if self.tty else LOG_EVERY_S)
        self._next: float | None = None
        self._width = 0  # of the line on screen, to blank a longer one's tail

    def note(self, text: str) -> None:
        """A one-off line (e.g. "loading zoo:mtcnn..."); on a terminal the next status
        line replaces it."""
        self._put(text)

    def update(self, metrics: StreamMetrics, captured: int) -> None:
        """The status now, if ``every_s`` has passed since the last line (the first one
        comes on the first call)."""
        now = metrics.clock()
        if self._next is not None and now < self._next:
            return
        # Keep the cadence (a frame's lateness is not added to every interval) unless a
        # whole interval went by without a frame.
        late = self._next is None or now - self._next >= self.every_s
        self._next = (now if late else self._next) + self.every_s
        self._put(metrics.status(captured))

    def close(self, metrics: StreamMetrics | None = None, captured: int = 0) -> None:
        """On a terminal: the final status (when ``metrics`` is given), then end the line
        so what is printed next starts on a line of its own. In a log: nothing (the
        summary follows)."""
        if not self.tty:
            return
        if metrics is not None and metrics.latencies_ms:
            self._put(metrics.status(captured))
        if self._width:
            self.stream.write("\n")
            self.stream.flush()
            self._width = 0

    def _put(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r" + line + " " * max(0, self._width - len(line)))
            self._width = len(line)
        else:
            self.stream.write(line + "\n")
        self.stream.flush()
