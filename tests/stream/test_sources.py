"""Folder and video sources on careless input (issue 15): images of mixed sizes, a corrupt
file or a decompression bomb among them, a truncated frame, a file that is no video."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image

from edgeopt.stream import ImageFolderSource, SourceError
from edgeopt.stream.sources import LazyImages, VideoFileSource, ffmpeg_reason
from hostile.test_inputs import bomb_png
from support import one_line


def _folder(tmp_path, sizes):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, (w, h) in enumerate(sizes):
        Image.fromarray(np.full((h, w, 3), 50 * i, np.uint8)).save(folder / f"f{i}.png")
    return folder


def test_frames_of_mixed_sizes_come_at_the_first_frames_size(tmp_path, caplog):
    folder = _folder(tmp_path, [(64, 48), (80, 60), (30, 70)])
    with caplog.at_level(logging.WARNING):
        frames = LazyImages(folder)
    assert "differ in size" in caplog.text and "64x48" in caplog.text
    assert [frames[i].shape for i in range(3)] == [(48, 64, 3)] * 3
    assert int(frames[1].mean()) == 50  # resized, not replaced
    src = ImageFolderSource(folder)
    assert [src.read().image.shape for _ in range(3)] == [(48, 64, 3)] * 3 and src.read() is None


def test_unreadable_files_are_skipped_with_one_warning(tmp_path, caplog):
    folder = _folder(tmp_path, [(64, 48), (64, 48)])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    bomb_png(folder / "bomb.png")
    with caplog.at_level(logging.WARNING):
        frames = LazyImages(folder)
    assert [f.name for f in frames.files] == ["f0.png", "f1.png"]
    assert "skipped 2 file(s)" in caplog.text and "decompression-bomb limit" in caplog.text


def test_a_folder_with_nothing_readable_and_a_truncated_frame_are_one_line(tmp_path):
    folder = tmp_path / "junk"
    folder.mkdir()
    bomb_png(folder / "bomb.png")
    with pytest.raises(SourceError) as e:
        LazyImages(folder)
    assert "no readable image" in one_line(e)
    good = _folder(tmp_path, [(64, 48), (64, 48)])
    data = (good / "f1.png").read_bytes()
    (good / "f1.png").write_bytes(data[: len(data) // 2])  # the header opens, the pixels do not
    frames = LazyImages(good)
    with pytest.raises(SourceError) as e:
        frames[1]
    assert "cannot be decoded" in one_line(e) and "f1.png" in str(e.value)


def test_a_file_that_is_no_video_gives_ffmpegs_reason_in_one_line(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError) as e:
        VideoFileSource(bad)
    msg = one_line(e)
    assert "Invalid data" in msg and "configuration" not in msg and len(msg) < 300
    assert ffmpeg_reason(OSError("banner\n  --enable-x\n\nError opening input: nope\n")) == "Error opening input: nope"


def test_cli_streams_a_folder_of_mixed_sizes_with_a_corrupt_file_into_a_video(monkeypatch, capsys, tmp_path):
    import imageio.v3 as iio

    from support import installed, run_cli

    if not installed("facenet-pytorch"):
        pytest.skip("pip install --no-deps facenet-pytorch==2.6.0")
    folder = _folder(tmp_path, [(64, 48), (80, 60), (30, 70), (64, 48)])
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    out = tmp_path / "v.mp4"
    code, stdout, err = run_cli(monkeypatch, capsys, "stream", "--source", f"sim:{folder}@30fps", "--pipeline",
                                "sequential", "--camera-buffers", "0", "--out", str(out))
    assert code == 0, err
    assert iio.imread(out).shape[1:] == (48, 64, 3)
