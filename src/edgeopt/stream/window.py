"""On-screen output for the stream: the annotated frames in a Tk window.

Tk (the standard library's ``tkinter``) with Pillow's ``ImageTk`` needs no further
dependency; OpenCV's ``imshow`` would need the GUI build of OpenCV, which conflicts with
the headless build the camera source uses. All Tk calls happen in the thread that
writes frames (the inference thread of both pipelines), the one that created the window:
Tk objects must stay in one thread.

The window is repainted and its events handled on each ``write``, as OpenCV demos do
with ``imshow`` + ``waitKey(1)``: while the detector runs, the window does not respond.
Closing it or pressing q / Escape ends the stream (``write`` raises
:class:`OutputClosed`, which the pipelines treat like Ctrl-C: the other outputs are kept).
"""

from __future__ import annotations

import os
import sys

import numpy as np

from ..errors import EdgeoptError
from .base import OutputClosed, PipelineError, Sink

SCREEN_FRACTION = 0.9  # frames larger than this share of the screen are shrunk to fit


def display_error() -> str | None:
    """Why no window can be opened here, as one line with the fix, or None when one can.

    Only checks what is cheap (an X11/Wayland display variable on Linux and BSD,
    ``tkinter`` importable); :class:`WindowSink` reports a display that refuses the
    connection.
    """
    try:
        import tkinter  # noqa: F401

        from PIL import ImageTk  # noqa: F401
    except ImportError as e:
        return (f"the window needs Tk ({e}): install it (Debian/Raspberry Pi OS: apt install python3-tk) "
                "or drop --show")
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")) and not (
            os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return "--show needs a display, and $DISPLAY is not set (no desktop session): use --out FILE instead"
    return None


class WindowSink(Sink):
    """Shows each annotated frame in a window (Tk); nothing is written to disk.

    Args:
        title: the window title.

    Attributes:
        frames: frames shown so far.
        scale: the factor applied to frames larger than :data:`SCREEN_FRACTION` of the
            screen (1.0 when they fit), set on the first frame.

    Raises:
        PipelineError: no display (see :func:`display_error`) or the display refuses
            the connection.
        OutputClosed: from ``write``, once the window was closed or q / Escape pressed.
    """

    def __init__(self, title: str = "edgeopt stream") -> None:
        why = display_error()
        if why:
            raise PipelineError(why)
        import tkinter

        from PIL import Image, ImageTk

        self._Image, self._ImageTk = Image, ImageTk
        try:
            self._root = tkinter.Tk()
        except tkinter.TclError as e:
            raise PipelineError(f"cannot open a window on display {os.environ.get('DISPLAY', '')!r} ({e}): "
                                "check the display or use --out FILE instead") from None
        self._root.title(title)
        self._label = tkinter.Label(self._root, borderwidth=0, highlightthickness=0)
        self._label.pack()
        self._root.protocol("WM_DELETE_WINDOW", self.request_close)
        for key in ("<KeyPress-q>", "<KeyPress-Q>", "<KeyPress-Escape>"):
            self._root.bind(key, lambda _event: self.request_close())
        self._photo = None  # Tk shows the image only while a Python reference is held
        self.closed = False
        self.frames = 0
        self.scale: float | None = None

    def request_close(self) -> None:
        """What closing the window and q / Escape do: the next ``write`` raises OutputClosed."""
        self.closed = True

    def write(self, image: np.ndarray, t: float | None = None) -> None:
        if self.closed:
            raise OutputClosed("the window was closed")
        pil = self._Image.fromarray(image)
        if self.scale is None:
            fit_w = SCREEN_FRACTION * self._root.winfo_screenwidth() / pil.width
            fit_h = SCREEN_FRACTION * self._root.winfo_screenheight() / pil.height
            self.scale = min(1.0, fit_w, fit_h)
        if self.scale < 1.0:
            size = (max(1, round(pil.width * self.scale)), max(1, round(pil.height * self.scale)))
            pil = pil.resize(size, self._Image.Resampling.BILINEAR)
        if self._photo is None or (self._photo.width(), self._photo.height()) != pil.size:
            # A new PhotoImage per frame costs ~35 ms (the label re-lays out and Tk
            # redraws the window); pasting into the shown one costs ~3 ms (640x480, Xvfb).
            self._photo = self._ImageTk.PhotoImage(pil)
            self._label.configure(image=self._photo)
        else:
            self._photo.paste(pil)
        self._root.update()  # paints the frame and runs the close / key handlers
        self.frames += 1
        if self.closed:
            raise OutputClosed("the window was closed")

    def _destroy(self) -> None:
        try:
            self._root.destroy()
        except Exception:  # already destroyed by the window manager
            pass

    def finish(self, t_end: float | None = None) -> None:
        self._destroy()

    def abort(self) -> None:
        self._destroy()


def check_show(show: bool) -> None:
    """Fail early (before loading models) when ``--show`` cannot open a window.

    Raises:
        EdgeoptError: the one-line reason from :func:`display_error`.
    """
    if show:
        why = display_error()
        if why:
            raise EdgeoptError(why)
