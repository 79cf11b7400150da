"""``edgeopt device certs``: the cluster's certificates, never over existing ones."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from support import assert_one_line_error, run_cli

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")


def test_certs_name_every_host_and_are_never_overwritten(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, "device", "certs", str(tmp_path / "tls"), "--host", "10.0.0.5",
                             "--host", "pi4.lan", "--days", "3")
    assert code == 0, err
    sans = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "tls" / "node.pem"), "-noout", "-ext",
                           "subjectAltName"], capture_output=True, text=True, check=True).stdout
    assert "IP Address:127.0.0.1" in sans and "IP Address:10.0.0.5" in sans and "DNS:pi4.lan" in sans
    verified = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "tls" / "ca.pem"),
                               str(tmp_path / "tls" / "node.pem")], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr
    before = (tmp_path / "tls" / "node-key.pem").read_bytes()
    code, _, err = run_cli(monkeypatch, capsys, "device", "certs", str(tmp_path / "tls"))
    assert_one_line_error(code, err, "already has ca.pem, node.pem, node-key.pem", "pass an empty folder")
    assert (tmp_path / "tls" / "node-key.pem").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "tls").iterdir()) == ["ca.pem", "node-key.pem", "node.pem"]

