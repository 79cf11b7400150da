"""On-screen output (WindowSink on a virtual X display, Xvfb) and the OpenCV camera source.

The window tests grab the X screen and compare its pixels with the frames written, so
they check what a viewer would see; they need the Xvfb binary (apt install xvfb) and
skip without it. The camera source is exercised through OpenCV's VideoCapture on a
video file, the same calls as on /dev/video0, since this machine has no camera.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time

import numpy as np
import pytest

from edgeopt.stream import OutputClosed, SimCamera, make_sink, run_ring, run_sequential
from edgeopt.stream.base import PipelineError
from edgeopt.stream.sinks import TeeSink, VideoSink

FPS = 30.0
SCREEN = (1024, 768)


def _need_tk() -> None:
    """Skip when this Python has no Tk (python3-tk) or Pillow no ImageTk: the window's
    own error for that case is checked in test_no_display_is_one_clear_error."""
    pytest.importorskip("tkinter", reason="this Python has no Tk: apt install python3-tk")
    pytest.importorskip("PIL.ImageTk", reason="Pillow without ImageTk")


@pytest.fixture(scope="module")
def xvfb():
    """A private virtual display; yields its name (":N")."""
    _need_tk()
    if shutil.which("Xvfb") is None:
        pytest.skip("no Xvfb binary: apt install xvfb")
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-screen", "0", f"{SCREEN[0]}x{SCREEN[1]}x24",
                             "-nolisten", "tcp"], pass_fds=(write,), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    os.close(write)
    number = b""
    with os.fdopen(read, "rb") as f:
        while not number.endswith(b"\n"):
            chunk = f.read(1)
            if not chunk:
                break
            number += chunk
    if not number.strip():
        proc.kill()
        pytest.skip("Xvfb did not start")
    yield f":{int(number)}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture
def display(xvfb, monkeypatch):
    monkeypatch.setenv("DISPLAY", xvfb)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    return xvfb


def _pattern(h: int, w: int, seed: int) -> np.ndarray:
    """Blocks of random colours (8x8 px) with exact values, so a screen grab can be
    compared pixel for pixel."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.ascontiguousarray(blocks.repeat(8, 0).repeat(8, 1)[:h, :w])


def _on_screen(sink, display: str) -> np.ndarray:
    """The pixels of the window's image area, grabbed from the X server."""
    from PIL import ImageGrab

    label = sink._label
    x, y = label.winfo_rootx(), label.winfo_rooty()
    w, h = label.winfo_width(), label.winfo_height()
    return np.asarray(ImageGrab.grab(bbox=(x, y, x + w, y + h), xdisplay=display).convert("RGB"))


def test_window_shows_each_frame_pixel_for_pixel(display):
    from edgeopt.stream.window import WindowSink

    sink = WindowSink("test")
    try:
        for seed in (1, 2, 3):  # the first frame creates the image, the next ones paste into it
            frame = _pattern(120, 160, seed)
            sink.write(frame)
            assert np.array_equal(_on_screen(sink, display), frame), f"frame {seed} not on screen"
        assert sink.frames == 3 and sink.scale == 1.0
    finally:
        sink.finish()


def test_a_frame_larger_than_the_screen_is_shrunk_to_fit(display):
    from edgeopt.stream.window import SCREEN_FRACTION, WindowSink

    sink = WindowSink()
    try:
        sink.write(_pattern(1500, 2000, 0))
        shown = _on_screen(sink, display)
        assert sink.scale == pytest.approx(SCREEN_FRACTION * SCREEN[1] / 1500)
        assert shown.shape == (round(1500 * sink.scale), round(2000 * sink.scale), 3)
    finally:
        sink.finish()


@pytest.mark.parametrize("how", ["close button", "q key", "escape key"])
def test_closing_the_window_stops_the_stream_and_keeps_the_video(display, tmp_path, how):
    import imageio.v3 as iio

    from edgeopt.stream.window import WindowSink

    class ClosingDetector:
        """Closes the window (as its viewer would) while detecting frame ``at``."""

        def __init__(self, window: WindowSink, at: int) -> None:
            self.window, self.at, self.calls = window, at, 0

        def __call__(self, image):
            from edgeopt.stream import Detections

            self.calls += 1
            if self.calls == self.at:
                root = self.window._root
                if how == "close button":  # what the window manager runs on a click on [x]
                    root.tk.call(root.protocol("WM_DELETE_WINDOW"))
                else:  # keys reach the focused window: the viewer clicked into it first
                    root.focus_force()
                    root.update()
                    root.event_generate("<KeyPress>", keysym="q" if how == "q key" else "Escape", when="tail")
            time.sleep(0.005)
            return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), {})

    out = tmp_path / "kept.mp4"
    window = WindowSink()
    sink = make_sink(out, FPS, show=False)
    report = run_sequential(SimCamera([_pattern(48, 64, i) for i in range(60)], FPS),
                            ClosingDetector(window, at=4), TeeSink([window, sink]))
    assert report.interrupted
    # Closed while frame 4 was being detected: frame 4 is not shown, 1-3 are kept.
    assert report.processed == 3
    assert sink.frames == report.processed  # each held until the next, the last until the stop
    assert iio.imread(out).shape[0] == sink.video_frames >= report.processed
    with pytest.raises(OutputClosed):
        window.write(_pattern(48, 64, 0))


def test_window_with_the_ring_pipeline(display):
    from edgeopt.stream import Detections

    def detector(image):
        time.sleep(0.01)
        return Detections(np.array([[4, 4, 30, 30]], np.float32), np.array([0.9], np.float32), {})

    sink = make_sink(None, FPS, show=True, title="ring")
    report = run_ring(SimCamera([_pattern(96, 128, i) for i in range(20)], FPS), detector, sink)
    assert report.processed >= 5 and not report.interrupted
    assert sink.frames == report.processed
    assert not [t for t in threading.enumerate() if t.name == "edgeopt-capture"]


def test_no_display_is_one_clear_error(monkeypatch, tmp_path):
    import importlib.util
    import sys

    from edgeopt.stream.window import display_error

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    # Without Tk the first problem named is the missing Tk, with its install command.
    has_tk = all(importlib.util.find_spec(m) for m in ("tkinter", "PIL.ImageTk"))
    expected = "$DISPLAY is not set" if has_tk else "apt install python3-tk"
    assert expected in display_error()
    with pytest.raises(PipelineError, match="use --out FILE" if has_tk else "python3-tk"):
        make_sink(tmp_path / "x.mp4", FPS, show=True)
    assert list(tmp_path.iterdir()) == []  # the video sink was never started
    # The console entry point, before any model is loaded: one line, exit status 2.
    result = subprocess.run([sys.executable, "-m", "edgeopt.cli", "stream", "--show", "--out",
                             str(tmp_path / "x.mp4")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_display_that_refuses_the_connection(monkeypatch):
    from edgeopt.stream.window import WindowSink

    _need_tk()
    monkeypatch.setenv("DISPLAY", ":987")  # nobody listens there
    with pytest.raises(PipelineError, match="cannot open a window on display ':987'"):
        WindowSink()


def test_video_and_window_sinks_finish_together(display, tmp_path):
    sink = make_sink(tmp_path / "both.mp4", FPS, show=True)
    assert isinstance(sink, TeeSink) and isinstance(sink.sinks[1], VideoSink)
    sink.write(_pattern(48, 64, 0))
    sink.finish()
    assert (tmp_path / "both.mp4").is_file()


# -- the OpenCV camera source ------------------------------------------------------------------
def test_camera_source_reads_rgb_frames_with_timestamps(tmp_path):
    pytest.importorskip("cv2", reason="pip install opencv-python-headless")
    from edgeopt.stream.run import parse_source
    from edgeopt.stream import CameraSource, SourceError

    frames = [np.zeros((48, 64, 3), np.uint8) for _ in range(4)]
    for i, f in enumerate(frames):
        f[:, :, i % 3] = 200  # red, green, blue, red: catches a BGR / RGB mix-up
    video = VideoSink(tmp_path / "cam.mp4", FPS)
    for f in frames:
        video.write(f)
    video.finish()

    cam = parse_source(f"camera:{tmp_path / 'cam.mp4'}", seconds=None, buffers=None)
    assert isinstance(cam, CameraSource) and cam.fps == pytest.approx(FPS)
    t0 = time.perf_counter()
    got = []
    while (f := cam.read()) is not None:
        got.append(f)
    cam.close()
    assert [f.index for f in got] == [0, 1, 2, 3] and cam.captured == 4
    assert [int(np.argmax(f.image.reshape(-1, 3).mean(0))) for f in got] == [0, 1, 2, 0]
    assert all(f.image.dtype == np.uint8 and f.image.flags.c_contiguous for f in got)
    ts = [f.t_capture for f in got]
    assert t0 <= ts[0] and ts == sorted(ts) and ts[-1] <= time.perf_counter()

    with pytest.raises(SourceError, match="cannot be opened"):
        CameraSource(str(tmp_path / "no-such-device"))
    with pytest.raises(SourceError, match="neither an index nor a device path"):
        parse_source("camera:front", seconds=None, buffers=None)
