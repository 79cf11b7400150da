"""The cache's folders (0700) and the sha256 manifests of artifacts loaded as code."""

from __future__ import annotations

import stat

import pytest

from edgeopt._util import cache
from edgeopt.errors import EdgeoptError


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_cache_folders_are_private_and_existing_ones_are_left_alone(tmp_path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    made = cache.private_dir(shared / "edgeopt" / "tvm")
    assert made.is_dir()
    assert _mode(shared / "edgeopt") == 0o700 and _mode(made) == 0o700
    assert _mode(shared) == 0o755
    assert cache.private_dir(made) == made  # exists: nothing to do


def test_an_artifact_with_its_manifest_verifies(tmp_path) -> None:
    path = tmp_path / "c" / "lib.so"
    cache.write_artifact(path, b"\x7fELF code")
    assert _mode(path.parent) == 0o700
    assert cache.manifest_path(path).read_text().endswith("  lib.so\n")
    assert cache.verify_artifact(path) and cache.verify_artifact(path, b"\x7fELF code")


def test_an_artifact_without_a_manifest_is_a_miss(tmp_path) -> None:
    path = tmp_path / "lib.so"
    path.write_bytes(b"written by an older edgeopt")
    assert cache.verify_artifact(path) is False


@pytest.mark.parametrize("tamper", ["flip a byte", "bytes read differ", "manifest garbage"])
def test_a_changed_artifact_is_refused_in_one_line(tmp_path, tamper) -> None:
    path = tmp_path / "lib.so"
    cache.write_artifact(path, b"\x7fELF code")
    data = None
    if tamper == "flip a byte":
        raw = bytearray(path.read_bytes())
        raw[0] ^= 0xFF
        path.write_bytes(bytes(raw))
    elif tamper == "bytes read differ":
        data = b"something else"
    else:
        cache.manifest_path(path).write_bytes(b"")
    with pytest.raises(EdgeoptError) as info:
        cache.verify_artifact(path, data)
    msg = str(info.value)
    assert "\n" not in msg and str(path) in msg and f"delete the folder {tmp_path}" in msg
