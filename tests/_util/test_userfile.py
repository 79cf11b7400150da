"""The one reader of files a user names: regular files only, under a size cap."""

from __future__ import annotations

import os
import socket

import pytest

from edgeopt._util.userfile import check_regular_file, read_user_file, read_user_text
from edgeopt.errors import DataError, EdgeoptError
from support import one_line


def test_a_regular_file_is_read_whole_and_through_a_symlink(tmp_path):
    f = tmp_path / "a.json"
    f.write_bytes(b'{"x": 1}')
    (tmp_path / "link.json").symlink_to(f)
    assert read_user_file(f, what="file") == b'{"x": 1}'
    assert read_user_text(tmp_path / "link.json", what="file") == '{"x": 1}'
    (tmp_path / "empty").touch()
    assert read_user_file(tmp_path / "empty", what="file", max_bytes=4) == b""


def test_special_files_are_refused_before_reading(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp_path / "sock"))
    s.close()
    for path, kind in ((tmp_path / "fifo", "FIFO"), (tmp_path / "sock", "socket"), ("/dev/zero", "character device"),
                       (tmp_path, "folder")):
        with pytest.raises(EdgeoptError) as e:
            read_user_file(path, what="device profile")
        assert kind in one_line(e) and "device profile" in str(e.value)


def test_missing_large_and_non_utf8_files_name_the_fix(tmp_path):
    with pytest.raises(DataError, match="labels file not found"):
        read_user_file(tmp_path / "nope", what="labels file", error=DataError)
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(11)
    with pytest.raises(EdgeoptError) as e:
        read_user_file(big, what="table", max_bytes=10, too_large="split it")
    assert "11 bytes, over the 10 bytes limit: split it" in one_line(e)
    with pytest.raises(EdgeoptError) as e:
        check_regular_file(big, what="table", max_bytes=10)
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(EdgeoptError, match="not UTF-8 text: save it as UTF-8"):
        read_user_text(tmp_path / "latin1.txt", what="charset file")


def test_a_symlink_loop_is_one_line(tmp_path):
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(EdgeoptError) as e:
        read_user_file(loop, what="model")
    assert "symbolic link loop" in one_line(e)
