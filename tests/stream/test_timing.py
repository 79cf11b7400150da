"""What a person sees of a stream over time (issue 18): the video lasts as long as the
stream, the live status line, no nan on the first overlay, the text clip for text models,
and ``--seconds`` stopping every kind of source. All on an injected clock."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from edgeopt.stream import Detections, SimCamera, TestClip, run_sequential
from edgeopt.stream import run as stream_run
from edgeopt.stream.metrics import StreamMetrics
from edgeopt.stream.sinks import FolderSink, VideoSink
from edgeopt.stream.status import StatusLine

from stream.test_stream import FakeClock
from support import installed

FPS = 30.0


class TimedDetector:
    """Takes ``ms`` of fake time per frame; keeps the frames it saw."""

    def __init__(self, time: FakeClock, ms: float = 100.0) -> None:
        self.time, self.ms, self.seen = time, ms, []

    def __call__(self, image: np.ndarray) -> Detections:
        self.seen.append(image)
        self.time.sleep(self.ms / 1e3)
        return Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), {"inference": self.ms})

    def warmup(self, image: np.ndarray) -> None:
        pass

    def close(self) -> None:
        pass


def _gray(value: int) -> np.ndarray:
    return np.full((48, 64, 3), value, np.uint8)


# -- the video keeps the stream's time ----------------------------------------------------------
def test_video_lasts_as_long_as_the_stream_with_each_frame_held_until_the_next(tmp_path):
    import imageio.v3 as iio

    # A ring pipeline's rhythm: a processed frame every ~140 ms (jittered) over 20 s.
    rng = np.random.default_rng(0)
    times = np.concatenate([[0.0], np.cumsum(rng.uniform(0.1, 0.18, 200))])
    times = times[times <= 20.0]
    values = [(40 * k) % 250 for k in range(len(times))]
    sink = VideoSink(tmp_path / "v.mp4", FPS)
    for t, v in zip(times, values):
        sink.write(_gray(v), 1000.0 + t)  # any origin: the first frame starts the video
    t_end = (np.floor(times[-1] * FPS) + 0.99) / FPS
    assert t_end > times[-1]
    sink.write(_gray(7), 1000.0 + t_end)  # within the last frame's period: replaces it
    sink.finish()
    video = iio.imread(tmp_path / "v.mp4")
    assert iio.immeta(tmp_path / "v.mp4")["fps"] == FPS
    duration = len(video) / FPS
    assert t_end < duration <= t_end + 1 / FPS  # T to T + one frame interval (not 140 frames = 4.7 s)
    assert t_end > 19.8 and len(video) == sink.video_frames and sink.merged == 1
    # Video frame j shows the newest frame written before its period ends.
    for t in (0.0, 3.3, 10.0, 15.55, 19.0):
        j = int(round(t * FPS))
        shown = int(np.searchsorted(times, (j + 1) / FPS)) - 1
        assert abs(float(video[j].mean()) - values[shown]) < 4, t  # H.264 is lossy
    assert abs(float(video[-1].mean()) - 7) < 4
    # A live stream ends after its last processed frame: that one stays until the end.
    sink = VideoSink(tmp_path / "end.mp4", FPS)
    sink.write(_gray(0), 5.0)
    sink.write(_gray(200), 5.5)
    sink.finish(t_end=5.0 + 2.0)
    assert len(iio.imread(tmp_path / "end.mp4")) == 2.0 * FPS


def test_frame_folder_records_each_frames_time(tmp_path):
    sink = FolderSink(tmp_path / "frames")
    for t in (10.0, 10.15, 10.4):
        sink.write(_gray(9), t)
    sink.finish()
    rows = (tmp_path / "frames" / "timestamps.csv").read_text().splitlines()
    assert rows == ["file,t_ms", "000000.png,0.0", "000001.png,150.0", "000002.png,400.0"]
    assert sorted(p.name for p in (tmp_path / "frames").iterdir())[:3] == ["000000.png", "000001.png", "000002.png"]


# -- live status line and overlay -----------------------------------------------------------------
def test_first_overlay_has_no_nan():
    time = FakeClock()
    metrics = StreamMetrics(clock=time.clock)
    time.now += 0.08
    first = metrics.overlay(time.now - 0.05)
    assert "nan" not in first and first == "fps measuring...  latency 50 ms"
    assert metrics.overlay() == "fps measuring...  latency measuring..."
    assert "nan" not in metrics.status(0) and "0/0 frames processed" in metrics.status(0)
    for k in range(3):
        metrics.record(time.now - 0.06, time.now, {}, 0)
        time.now += 0.1
    assert metrics.overlay(time.now - 0.07) == "10.0 fps  latency 70 ms"


@pytest.mark.parametrize("tty, every_s", [(True, 0.5), (False, 5.0)])
def test_status_line_on_stderr_with_fps_p50_and_drops(tty, every_s):
    time = FakeClock()
    err = io.StringIO()
    status = StatusLine(err, tty=tty)
    assert status.every_s == every_s
    # 12 s at 30 fps, a detector of 70 ms, a 4-frame camera queue: 14.3 fps, half the frames lost.
    cam = SimCamera(TestClip(12, FPS, size=(64, 48)), FPS, buffers=4, clock=time.clock, sleep=time.sleep)
    report = run_sequential(cam, TimedDetector(time, ms=70), clock=time.clock, status=status)
    text = err.getvalue()
    assert "nan" not in text
    lines = text.split("\r")[1:] if tty else text.splitlines()
    # About 2 lines a second on a terminal (plus the final one), one every 5 s in a log.
    assert abs(len(lines) - tty - report.wall_s / every_s) <= 1
    assert text.endswith("\n") and (text.count("\n") == 1 if tty else True)
    for line in lines[2:]:
        assert "14.3 fps" in line and " dropped" in line
        p50 = float(line.split("latency p50 ")[1].split(" ms")[0])
        assert 70 <= p50 <= 70 + 4 * 1000 / FPS  # one detection plus the camera queue's backlog
    if tty:  # the final line shows the report's numbers
        assert f"{report.processed}/{report.captured} frames processed, {report.dropped} dropped" in lines[-1]
        assert report.dropped > 150
    assert "measuring..." in lines[0]  # the first frame: no fps yet


# -- the text clip for text models ---------------------------------------------------------------------
def test_text_models_stream_the_text_clip(monkeypatch):
    time = FakeClock()
    made = {}

    def fake_detector(model, **kwargs):
        made[model] = TimedDetector(time)
        return made[model]

    monkeypatch.setattr(stream_run, "frame_detector", fake_detector)
    for model, kind in (("zoo:ppocr-det", "text"), ("zoo:mtcnn", "faces")):
        stream_run.run_stream(model, "clip@30fps", pipeline="sequential", seconds=0.3, clock=time.clock,
                              sleep=time.sleep)
        first = made[model].seen[0]
        assert np.array_equal(first, TestClip(0.3, FPS, kind=kind)[0]), model
    text, faces = TestClip(8, FPS, kind="text"), TestClip(8, FPS, kind="faces")
    assert [text.shot(i) for i in (0, 60, 120, 180)] == ["page:0", "page", "page:1", "text"]
    # Pages are mostly white paper with dark print; the faces clip is a photo.
    assert (text[0] > 200).mean() > 0.6 and (faces[0] > 200).mean() < 0.3
    src = stream_run.parse_source("clip:faces@15fps", seconds=1, buffers=None, clip="text")
    assert src.frames.kind == "faces" and len(src.frames) == 15


@pytest.mark.skipif(not installed("rapidocr-onnxruntime"), reason="pip install --no-deps rapidocr-onnxruntime==1.4.4")
def test_the_text_detector_finds_the_lines_of_the_text_clip():
    import edgeopt
    from edgeopt.detect.db import TextDetector

    det = TextDetector(edgeopt.load_model("zoo:ppocr-det"), backend="ort", threads=1)
    try:
        found = det.detect(TestClip(2, FPS, kind="text")[0])
    finally:
        det.close()
    assert len(found.scores) >= 8  # the title and paragraph lines in view


# -- --seconds stops every source ---------------------------------------------------------------------
def _folder(tmp_path, n: int):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(n):
        Image.fromarray(_gray(20 * i)).save(folder / f"{i:02d}.png")
    return folder


class FakeCapture:
    """cv2.VideoCapture of a camera that never ends."""

    def __init__(self, device) -> None:
        pass

    def isOpened(self) -> bool:
        return True

    def get(self, prop) -> float:
        return 30.0

    def read(self):
        return True, _gray(90)

    def release(self) -> None:
        pass


@pytest.mark.parametrize("kind", ["clip", "sim", "video", "folder", "camera"])
def test_seconds_stops_every_source(tmp_path, monkeypatch, kind):
    folder = _folder(tmp_path, 12)
    if kind == "video":
        sink = VideoSink(tmp_path / "v.mp4", FPS)
        for i in range(12):
            sink.write(_gray(20 * i))
        sink.finish()
    if kind == "camera":
        cv2 = pytest.importorskip("cv2")
        monkeypatch.setattr(cv2, "VideoCapture", FakeCapture)
    spec = {"clip": "clip@30fps", "sim": f"sim:{folder}@30fps", "video": str(tmp_path / "v.mp4"),
            "folder": str(folder), "camera": "camera:0"}[kind]
    time = FakeClock()
    detector = TimedDetector(time)
    monkeypatch.setattr(stream_run, "frame_detector", lambda model, **kw: detector)
    # Unbounded camera queue: without the limit the sequential loop would work through
    # every queued frame (the clip's 14, the folder's 12) long after the 0.45 s.
    report = stream_run.run_stream("zoo:mtcnn", spec, pipeline="sequential", seconds=0.45, camera_buffers=0,
                                   clock=time.clock, sleep=time.sleep)
    assert report.processed == 5 and len(detector.seen) == 5  # 100 ms each: stopped after 0.45 s
    assert report.wall_s == pytest.approx(0.5)
