"""Atomic writes: all or nothing, folders made for a failed write removed, targets that
are not regular files refused, output modes from the umask, OSErrors as one line."""

from __future__ import annotations

import errno
import os
import stat

import pytest

from edgeopt._util.atomic import NewFolders, atomic_write_bytes, atomic_write_files, umask, write_staged
from edgeopt.errors import OutputError


@pytest.fixture
def umask_027():
    """A fixed umask for the test (restored after)."""
    old = os.umask(0o027)
    yield
    os.umask(old)


def mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def test_umask_is_read_without_changing_it(umask_027):
    assert umask() == 0o027
    assert os.umask(0o027) == 0o027


def test_output_files_and_folders_get_the_umask_modes(tmp_path, umask_027):
    atomic_write_bytes(tmp_path / "a" / "b.json", b"{}")
    assert mode(tmp_path / "a" / "b.json") == 0o640  # mkstemp alone makes 0600
    assert mode(tmp_path / "a") == 0o750

    def write(staging):
        (staging / "x.txt").write_text("x")
        atomic_write_bytes(staging / "m.onnx", b"onnx")
        return {"x": staging / "x.txt", "m": staging / "m.onnx"}

    files = write_staged(tmp_path / "out", write)
    assert {k: mode(p) for k, p in files.items()} == {"x": 0o640, "m": 0o640}
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["m.onnx", "x.txt"]  # staging gone


def test_an_existing_output_is_replaced_with_the_umask_mode(tmp_path, umask_027):
    p = tmp_path / "r.json"
    p.write_text("old")
    p.chmod(0o600)
    atomic_write_bytes(p, b"new")
    assert p.read_bytes() == b"new" and mode(p) == 0o640


def test_a_failed_write_leaves_no_file_and_removes_the_folders_it_made(tmp_path):
    def boom(staging):
        (staging / "half.json").write_text("{")
        raise RuntimeError("renderer failed")

    with pytest.raises(RuntimeError, match="renderer failed"):
        write_staged(tmp_path / "new" / "out", boom)
    assert list(tmp_path.iterdir()) == []

    (tmp_path / "kept").mkdir()
    with pytest.raises(RuntimeError):
        write_staged(tmp_path / "kept", boom)
    assert list((tmp_path / "kept").iterdir()) == []  # a folder that was there stays


def test_several_files_are_written_all_or_none(tmp_path):
    (tmp_path / "in_the_way").mkdir()
    with pytest.raises(OutputError, match="in_the_way is a folder, not a file"):
        atomic_write_files({tmp_path / "sub" / "a.bin": b"a", tmp_path / "in_the_way": b"b"})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in_the_way"]
    written = atomic_write_files({tmp_path / "sub" / "a.bin": b"a", tmp_path / "b.bin": b"b"})
    assert [p.read_bytes() for p in written] == [b"a", b"b"]


@pytest.mark.parametrize("make", ["fifo", "socket"])
def test_a_special_file_is_never_renamed_over(tmp_path, make):
    import socket

    target = tmp_path / "t"
    if make == "fifo":
        os.mkfifo(target)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(target))
        s.close()
    with pytest.raises(OutputError, match=f"is a {'FIFO' if make == 'fifo' else 'socket'}, not a regular file"):
        atomic_write_bytes(target, b"x")
    assert not stat.S_ISREG(os.lstat(target).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no temp file left


def test_os_errors_become_one_line_naming_the_target(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError) as info:
        atomic_write_bytes(tmp_path / "new" / "m.onnx", b"x")
    assert str(info.value) == (f"cannot write {tmp_path / 'new' / 'm.onnx'}: no space left on its file system "
                               f"(disk full): free some space or choose another disk")
    assert info.value.os_error.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_new_folders_are_kept_once_the_output_is_in_place(tmp_path):
    made = NewFolders(tmp_path / "a" / "b")
    made.keep()
    made.remove()
    assert (tmp_path / "a" / "b").is_dir()
    made = NewFolders(tmp_path / "c" / "d")
    made.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a"]
