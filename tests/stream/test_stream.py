"""Real-time pipeline: ring buffer semantics, simulated camera timing, ring vs sequential
latency with a slow fake detector, shutdown on errors and Ctrl-C, and the CLI with the
real MTCNN on the test clip."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from importlib import metadata

import numpy as np
import pytest

from edgeopt.stream import (
    Detections,
    RingBuffer,
    SimCamera,
    SourceError,
    TestClip,
    make_sink,
    run_ring,
    run_sequential,
)
from edgeopt.errors import EdgeoptError
from edgeopt.stream.base import PipelineError
from edgeopt.stream.sinks import FolderSink, VideoSink

FPS = 30.0


class FakeClock:
    """perf_counter / sleep pair where sleeping advances time instantly."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.now += s


class SlowDetector:
    """Sleeps ``ms`` per frame, returns one box; raises ``error`` on frame ``fail_at``."""

    def __init__(self, ms: float, fail_at: int | None = None, error: BaseException | None = None) -> None:
        self.ms, self.fail_at, self.error, self.calls = ms, fail_at, error, 0

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        if self.fail_at is not None and self.calls == self.fail_at:
            raise self.error
        time.sleep(self.ms / 1e3)
        return Detections(np.array([[2, 2, 20, 20]], np.float32), np.array([0.9], np.float32),
                          {"inference": self.ms})


def _frames(n: int) -> list[np.ndarray]:
    return [np.full((48, 64, 3), i % 256, np.uint8) for i in range(n)]


def _capture_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "edgeopt-capture"]


# -- ring buffer ---------------------------------------------------------------------------
def test_ring_buffer_overwrites_the_oldest_and_gives_the_newest():
    ring = RingBuffer(3)
    for i in range(5):
        ring.put(i)
    assert ring.contents() == [2, 3, 4]  # 0 and 1 overwritten
    assert ring.take_latest(timeout=0) == 4
    assert ring.take_latest(timeout=0) is None  # 2 and 3 are stale: never returned
    assert (ring.written, ring.taken, ring.skipped) == (5, 1, 4)
    ring.put(5)
    assert ring.skipped == 4  # 5 is pending, not skipped
    ring.close()
    assert ring.take_latest(timeout=0) == 5  # what is left after close is still delivered
    assert ring.take_latest() is None  # closed and drained: no wait
    assert (ring.taken, ring.skipped) == (2, 4)
    with pytest.raises(PipelineError, match="slots"):
        RingBuffer(0)


# -- simulated camera ------------------------------------------------------------------------
def test_sim_camera_timestamps_and_drops_with_a_slow_reader():
    fc = FakeClock()
    cam = SimCamera(_frames(20), FPS, buffers=4, clock=fc.clock, sleep=fc.sleep)
    f0, f1 = cam.read(), cam.read()
    assert (f0.index, f1.index) == (0, 1)
    assert f0.t_capture == 100.0
    assert f1.t_capture == pytest.approx(100.0 + 1 / FPS)
    assert fc.now == pytest.approx(100.0 + 1 / FPS, abs=1e-6)  # the reader waited for frame 1
    fc.now += 0.2  # a slow reader: 6 more frames arrive (2..7), the 4-slot queue keeps 4..7
    f = cam.read()
    assert f.index == 4 and f.t_capture == pytest.approx(100.0 + 4 / FPS)
    assert cam.lost == 2 and cam.captured == 8
    assert [cam.read().index for _ in range(3)] == [5, 6, 7]
    indices = []
    while (f := cam.read()) is not None:
        indices.append(f.index)
    assert indices == list(range(8, 20)) and cam.captured == 20

    fc = FakeClock()
    unbounded = SimCamera(_frames(20), FPS, buffers=None, clock=fc.clock, sleep=fc.sleep)
    unbounded.read()
    fc.now += 0.2
    assert unbounded.read().index == 1 and unbounded.lost == 0  # queued, not lost: it is now late
    with pytest.raises(SourceError, match="fps"):
        SimCamera(_frames(2), 0)


def test_sim_camera_runs_in_real_time():
    cam = SimCamera(_frames(10), 50.0)
    late = []
    stamps = []
    while (f := cam.read()) is not None:
        late.append(time.perf_counter() - f.t_capture)
        stamps.append(f.t_capture)
    assert np.allclose(np.diff(stamps), 0.02)
    assert min(late) >= 0  # never handed out before it arrives (how soon after: below, on a fake clock)
    assert stamps[-1] - stamps[0] == pytest.approx(0.18)
    fc = FakeClock()
    cam = SimCamera(_frames(10), 50.0, clock=fc.clock, sleep=fc.sleep)
    while (f := cam.read()) is not None:
        assert fc.now - f.t_capture == pytest.approx(0.0, abs=1e-9)  # a fast reader gets it on arrival


# -- ring vs sequential --------------------------------------------------------------------
class VirtualTime:
    """Time that moves only when the detector works: the detector advances it, the
    camera's sleep (capture thread) waits until it has passed, and ``advance`` returns
    once the camera is asleep again (every frame due is in the ring) or done. So the ring
    pipeline's two threads run in lock step, whatever the machine's load."""

    def __init__(self) -> None:
        self.now, self.cond, self.asleep, self.done = 100.0, threading.Condition(), False, False

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        with self.cond:
            target = self.now + s
            self.asleep = True
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.now >= target - 1e-12, timeout=5)
            self.asleep = False

    def advance(self, s: float) -> None:
        with self.cond:
            self.now += s
            self.asleep = False
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.asleep or self.done, timeout=5)


class VirtualCamera(SimCamera):
    def __init__(self, frames, fps, vt: VirtualTime, **kw) -> None:
        super().__init__(frames, fps, clock=vt.clock, sleep=vt.sleep, **kw)
        self.vt = vt

    def read(self, stop=None):
        frame = super().read(stop)
        if frame is None:
            with self.vt.cond:
                self.vt.done = True
                self.vt.cond.notify_all()
        return frame


class ClockedDetector(SlowDetector):
    """Takes ``ms`` per frame on an injected time (``advance``), not on the machine's."""

    def __init__(self, ms: float, advance) -> None:
        super().__init__(ms)
        self.advance = advance

    def __call__(self, image: np.ndarray) -> Detections:
        self.calls += 1
        self.advance(self.ms / 1e3)
        return Detections(np.array([[2, 2, 20, 20]], np.float32), np.array([0.9], np.float32),
                          {"inference": self.ms})


def test_ring_latency_stays_bounded_while_sequential_grows():
    n, ms = 45, 50.0  # 1.5 s at 30 fps; the detector manages 20 fps
    vt = VirtualTime()
    ring = run_ring(VirtualCamera(_frames(n), FPS, vt), ClockedDetector(ms, vt.advance), clock=vt.clock)
    runs = {}
    for buffers in (None, 4):
        fc = FakeClock()
        cam = SimCamera(_frames(n), FPS, buffers=buffers, clock=fc.clock, sleep=fc.sleep)
        runs[buffers] = run_sequential(cam, ClockedDetector(ms, fc.sleep), clock=fc.clock)
    seq, seq4 = runs[None], runs[4]
    # Ring: about one detection plus up to one frame interval; the newest frame is taken.
    # Frames arrive every 33.3 ms, detections end every 50 ms: the newest frame is 16.7 ms
    # old when taken, or 33.3 ms at worst.
    assert ring.latency_ms["p90"] == pytest.approx(ms + 1000 / FPS / 2)
    assert ring.latency_ms["max"] == pytest.approx(ms + 1000 / FPS)
    assert ring.dropped == 14 and ring.captured == n and ring.processed == 31
    assert ring.fps == pytest.approx(1000 / ms)
    # Sequential, unbounded queue: every frame is processed, 17 ms later than the one before.
    assert seq.processed == n and seq.dropped == 0
    assert seq.latency_last_ms["p90"] > 2 * ring.latency_ms["p90"]
    lat = np.array(seq.latencies_ms)
    assert np.allclose(np.diff(lat), ms - 1000 / FPS)  # it grows through the clip, by 16.7 ms a frame
    assert seq.fps == pytest.approx(1000 / ms)
    # A 4-frame camera queue caps the backlog at about 4 detections, losing frames instead.
    assert seq4.dropped > 0
    assert seq4.latency_last_ms["p90"] == pytest.approx(233.33, abs=0.01)


# -- shutdown ---------------------------------------------------------------------------------
@pytest.mark.parametrize("pipeline", [run_ring, run_sequential])
def test_detector_error_stops_everything_and_leaves_no_output(tmp_path, pipeline):
    out = tmp_path / "annotated.mp4"
    boom = RuntimeError("detector failed")
    with pytest.raises(RuntimeError, match="detector failed") as info:
        pipeline(SimCamera(_frames(30), FPS), SlowDetector(5, fail_at=4, error=boom), VideoSink(out, FPS))
    assert info.value is boom
    assert not _capture_threads()
    assert list(tmp_path.iterdir()) == []  # neither the output nor its temp file


def test_capture_error_is_raised_once_and_output_folder_is_absent(tmp_path):
    class Broken(SimCamera):
        def read(self, stop=None):
            frame = super().read(stop)
            if frame is not None and frame.index == 5:
                raise SourceError("camera unplugged")
            return frame

    out = tmp_path / "frames"
    with pytest.raises(SourceError, match="unplugged"):
        run_ring(Broken(_frames(30), FPS), SlowDetector(5), FolderSink(out))
    assert not _capture_threads()
    assert list(tmp_path.iterdir()) == []


def test_ctrl_c_keeps_a_complete_output(tmp_path):
    import imageio.v3 as iio

    out = tmp_path / "annotated.mp4"
    sink = VideoSink(out, FPS)
    report = run_ring(SimCamera(_frames(60), FPS), SlowDetector(5, fail_at=6, error=KeyboardInterrupt()), sink)
    assert report.interrupted and report.processed == 5 and sink.frames == 5
    assert not _capture_threads()
    # 5 frames, each held until the next one's capture (more copies when the ring skipped one)
    assert sink.video_frames >= 5 and iio.imread(out).shape == (sink.video_frames, 48, 64, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["annotated.mp4"]


def test_bad_outputs_are_refused(tmp_path):
    with pytest.raises(PipelineError, match="video file"):
        make_sink(tmp_path / "out.txt", FPS)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x.png").write_bytes(b"")
    with pytest.raises(PipelineError, match="empty folder"):
        FolderSink(tmp_path / "full")


def test_outputs_get_the_umask_modes_and_odd_sized_frames_make_a_video(tmp_path):
    import imageio.v3 as iio

    old = os.umask(0o027)
    try:
        video = VideoSink(tmp_path / "new" / "v.mp4", FPS)  # the missing folder is made
        frames = FolderSink(tmp_path / "frames")
        for i in range(3):
            video.write(np.full((47, 63, 3), 60 * i, np.uint8))
            frames.write(np.full((47, 63, 3), 60 * i, np.uint8))
        video.finish()
        frames.finish()
    finally:
        os.umask(old)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(tmp_path / "new" / "v.mp4") == 0o640  # the temp file's 0600 does not stay
    assert mode(tmp_path / "frames") == 0o750 and mode(tmp_path / "frames" / "000000.png") == 0o640
    assert iio.imread(tmp_path / "new" / "v.mp4").shape == (3, 48, 64, 3)  # padded to even sizes
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames", "new"]


@pytest.mark.parametrize("log, code, words", [
    ("Error writing trailer: No space left on device", 1, "no space left on its file system"),
    ("Unknown encoder 'libx264'", 1, "ffmpeg could not write"),
])
def test_a_video_ffmpeg_could_not_finish_is_deleted_not_reported(tmp_path, log, code, words):
    fake = tmp_path / "ffmpeg"
    fake.write_text(f"#!/bin/sh\ncat > /dev/null\necho \"{log}\" >&2\nexit {code}\n")
    fake.chmod(0o755)
    sink = VideoSink(tmp_path / "new" / "v.mp4", FPS)
    sink._exe = str(fake)  # an ffmpeg that fails at the trailer, as on a full disk
    sink.write(_frames(1)[0])
    with pytest.raises(EdgeoptError, match=words) as info:
        sink.finish()
    assert "\n" not in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ffmpeg"]  # no video, no temp file, no folder


def test_test_clip_is_deterministic_and_shows_the_photos():
    clip = TestClip(8, FPS)
    assert len(clip) == 240 and clip[0].shape == (480, 640, 3) and clip[0].dtype == np.uint8
    assert np.array_equal(clip[10], TestClip(8, FPS)[10])
    assert [clip.shot(i) for i in (0, 60, 120, 180)] == ["astronaut", "coffee", "camera", "chelsea"]
    assert not np.array_equal(clip[0], clip[30])  # zooming


# -- CLI with the real MTCNN -------------------------------------------------------------------
def test_cli_stream_runs_mtcnn_on_the_clip(tmp_path):
    try:
        metadata.distribution("facenet-pytorch")
    except metadata.PackageNotFoundError:
        pytest.skip("pip install --no-deps facenet-pytorch==2.6.0")
    import imageio.v3 as iio
    import typer
    from typer.testing import CliRunner

    from edgeopt.cli.stream import command

    app = typer.Typer()
    app.command("stream")(command)
    app.callback()(lambda: None)  # keep "stream" as a sub-command
    out, js = tmp_path / "annotated.mp4", tmp_path / "report.json"
    result = CliRunner().invoke(app, ["stream", "--model", "zoo:mtcnn", "--source", "clip@30fps", "--seconds",
                                      "1.5", "--out", str(out), "--json", str(js), "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "fps" in result.output and "latency p50" in result.output
    report = json.loads(js.read_text())
    assert report["captured"] == 45 and report["processed"] >= 2  # how many depends on the machine's load
    assert report["dropped"] == report["captured"] - report["processed"]
    assert report["boxes"] >= report["processed"] * 0.8  # the astronaut's face, zoomed
    assert 20 < report["latency_ms"]["p50"] < 1000
    assert report["stage_ms"]["inference"] > 0
    # The video lasts as long as the stream (processed frames held), not processed / 30 s.
    n = iio.imread(out).shape[0]
    # From the first capture until the stream stopped: the 1.5 s, plus the last detection
    # (which began before the limit), less than the whole run (closing the video included).
    assert 1.5 - 2 / 30 <= n / 30 <= report["wall_s"] + 1 / 30
    assert n > report["processed"]

    bad = CliRunner().invoke(app, ["stream", "--source", "nowhere.mp4"])
    assert isinstance(bad.exception, SourceError) and "neither" in str(bad.exception)


# -- file, folder and camera sources ---------------------------------------------------------
def test_cli_stream_keeps_no_video_when_its_report_cannot_be_written(tmp_path, monkeypatch):
    try:
        metadata.distribution("facenet-pytorch")
    except metadata.PackageNotFoundError:
        pytest.skip("pip install --no-deps facenet-pytorch==2.6.0")
    import typer
    from PIL import Image
    from typer.testing import CliRunner

    from edgeopt.cli.stream import command
    from edgeopt.errors import OutputError
    from edgeopt.report import json_file

    def full_disk(path, data):
        raise OutputError(f"cannot write --json {path}: no space left on its file system (disk full): ...")

    monkeypatch.setattr(json_file, "write_json", full_disk)
    frames = tmp_path / "frames"
    frames.mkdir()
    for i, f in enumerate(_frames(2)):
        Image.fromarray(f).save(frames / f"{i}.png")
    app = typer.Typer()
    app.command("stream")(command)
    app.callback()(lambda: None)
    result = CliRunner().invoke(app, ["stream", "--source", str(frames), "--pipeline", "sequential",
                                      "--out", str(tmp_path / "v.mp4"), "--json", str(tmp_path / "r.json")])
    assert isinstance(result.exception, OutputError) and "wrote" not in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]  # the video went with the report


def test_video_folder_and_camera_sources(tmp_path):
    import importlib.util

    from PIL import Image

    from edgeopt.stream.run import parse_source
    from edgeopt.stream import ImageFolderSource, VideoFileSource

    frames = [np.full((48, 64, 3), 40 * i, np.uint8) for i in range(5)]
    sink = VideoSink(tmp_path / "v.mp4", FPS)
    for f in frames:
        sink.write(f)
    sink.finish()
    src = VideoFileSource(tmp_path / "v.mp4")
    got = []
    while (f := src.read()) is not None:
        got.append(f)
    src.close()
    assert [f.index for f in got] == [0, 1, 2, 3, 4] and src.fps == pytest.approx(FPS)
    assert [int(f.image.mean()) for f in got] == pytest.approx([0, 40, 80, 120, 160], abs=3)  # H.264 is lossy

    folder = tmp_path / "imgs"
    folder.mkdir()
    for i, f in enumerate(frames[:3]):
        Image.fromarray(f[:, :, 0]).save(folder / f"{i}.png")  # gray files come out RGB
    src = ImageFolderSource(folder)
    assert [src.read().image.shape for _ in range(3)] == [(48, 64, 3)] * 3 and src.read() is None
    cam = parse_source(f"sim:{folder}@15fps", seconds=None, buffers=None)
    assert isinstance(cam, SimCamera) and cam.fps == 15 and len(cam.frames) == 3
    with pytest.raises(SourceError, match="not a folder"):
        ImageFolderSource(tmp_path / "v.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceError, match="no images"):
        ImageFolderSource(tmp_path / "empty")
    if importlib.util.find_spec("cv2") is None:
        with pytest.raises(SourceError, match="opencv-python-headless"):
            parse_source("camera:0", seconds=None, buffers=None)


def test_draw_outlines_boxes_and_writes_the_overlay():
    from edgeopt.stream.draw import draw_frame

    image = np.full((120, 160, 3), 128, np.uint8)
    out = draw_frame(image, np.array([[40, 30, 100, 90]], np.float32), np.array([0.95]), "10.0 fps")
    assert (image == 128).all()  # the input is not modified
    assert tuple(out[60, 40]) == (0, 255, 0) and tuple(out[60, 99]) == (0, 255, 0)  # left, right edges
    assert tuple(out[60, 70]) == (128, 128, 128)  # inside untouched
    band = out[:14, :50]
    assert (band == 0).all(axis=2).any() and (band == (255, 255, 0)).all(axis=2).any()  # dark band, text


def test_cli_stream_runs_text_detection_on_an_image_folder(tmp_path):
    import typer
    from PIL import Image
    from skimage import data as skdata
    from typer.testing import CliRunner

    from edgeopt.cli.stream import command

    folder = tmp_path / "pages"
    folder.mkdir()
    for k in range(3):
        Image.fromarray(skdata.page()).convert("RGB").save(folder / f"page{k}.png")
    app = typer.Typer()
    app.command("stream")(command)
    app.callback()(lambda: None)
    js = tmp_path / "report.json"
    result = CliRunner().invoke(app, ["stream", "--model", "zoo:ppocr-det", "--source", str(folder),
                                      "--pipeline", "sequential", "--out", str(tmp_path / "out"), "--json", str(js)])
    assert result.exit_code == 0, result.output
    report = json.loads(js.read_text())
    assert report["processed"] == 3
    # test_db.py: the page's 7 text lines are found on each frame.
    assert report["boxes"] >= 3 * 6
    bad = CliRunner().invoke(app, ["stream", "--model", "zoo:ppocr-det", "--pnet", str(js)])
    assert bad.exit_code != 0 and "drop --pnet" in str(bad.exception)
