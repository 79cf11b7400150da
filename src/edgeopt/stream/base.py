"""What every part of the stream shares: its errors and the :class:`Sink` protocol that
each output (file, video, window) implements.
"""

from __future__ import annotations

import numpy as np

from ..errors import EdgeoptError


class OutputClosed(Exception):
    """Raised by a sink's ``write`` when its viewer closed it: the stream stops as on Ctrl-C."""


class PipelineError(EdgeoptError):
    """A pipeline setting or output is invalid."""


class Sink:
    """Where annotated frames go. ``write`` each, then ``finish`` (keep) or ``abort`` (delete).

    ``write(image, t)``: ``t`` is the frame's time on the stream's timeline, s
    (:attr:`~edgeopt.stream.sources.Frame.t_video`); a file sink keeps each frame until the
    next one's ``t``, so the output lasts as long as the stream. None: one frame period each.
    ``finish(t_end)``: the stream's end on that timeline (the last frame is held until then),
    or None.
    """

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        raise NotImplementedError

    def finish(self, t_end: float | None = None) -> None:
        """Complete the output and move it into place."""

    def abort(self) -> None:
        """Delete everything written so far."""
