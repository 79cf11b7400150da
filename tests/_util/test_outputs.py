"""Output paths checked before the work: what they may be (the hostile cases in
tests/hostile/test_outputs.py cover what they may not)."""

from __future__ import annotations

import errno
import os

import pytest

from edgeopt._util.outputs import check_outputs, write_error
from edgeopt.errors import OutputError


def test_new_paths_existing_outputs_and_missing_folders_are_fine(tmp_path):
    (tmp_path / "old.json").write_text("{}")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "bench.json").write_text("{}")  # a previous run's output: replaced
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    check_outputs(inputs=(tmp_path / "in.onnx", "zoo:seednet", None),
                  files=[("--out", tmp_path / "old.json"), ("--json", tmp_path / "new" / "deeper" / "r.json"),
                         ("--restored", None)],
                  folders=[("--out", tmp_path / "out", ("bench.json", "bench.csv")),
                           ("--plots", tmp_path / "missing" / "plots", ("a.png",))])
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # the checks write nothing


def test_a_new_output_inside_an_input_folder_is_fine(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    (images / "a.png").write_bytes(b"png")
    check_outputs(inputs=(images,), files=[("--json", images / "report.json")])
    with pytest.raises(OutputError, match="is the input"):
        check_outputs(inputs=(images,), files=[("--json", images / "a.png")])


def test_a_symlink_into_a_non_input_is_fine_and_a_dangling_one_too(tmp_path):
    (tmp_path / "elsewhere.json").write_text("{}")
    (tmp_path / "link.json").symlink_to(tmp_path / "elsewhere.json")
    (tmp_path / "dangling.json").symlink_to(tmp_path / "nowhere.json")
    check_outputs(inputs=(tmp_path / "m.onnx",), files=[("--out", tmp_path / "link.json"),
                                                        ("--json", tmp_path / "dangling.json")])


def test_two_outputs_on_one_file_through_a_symlinked_folder(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    with pytest.raises(OutputError, match="are the same file: give each output its own path"):
        check_outputs(files=[("--out", tmp_path / "real" / "a.onnx"), ("--restored", tmp_path / "alias" / "a.onnx")])


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a 0555 folder")
def test_a_folder_without_write_permission_is_refused_before_the_work(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="cannot write --out .*: permission denied"):
            check_outputs(files=[("--out", locked / "m.onnx")])
    finally:
        locked.chmod(0o755)


@pytest.mark.parametrize("code, words", [
    (errno.ENOSPC, "no space left"), (errno.EDQUOT, "quota"), (errno.EFBIG, "ulimit -f"),
    (errno.EROFS, "read-only file system"), (errno.EACCES, "permission denied"),
    (errno.EIO, "input/output error: choose another path"),
])
def test_write_errors_are_one_line_with_problem_and_fix(code, words):
    msg = str(write_error(OSError(code, os.strerror(code)), "/x/y.json", "--out"))
    assert msg.startswith("cannot write --out /x/y.json: ") and words in msg
    assert "\n" not in msg and msg.count(": ") >= 2
