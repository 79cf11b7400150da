"""Cluster options (--scheduler, --tls, --insecure) mean something only with --device."""

from __future__ import annotations

import pytest

from support import assert_one_line_error, run_cli


@pytest.mark.parametrize("command", [["bench", "zoo:seednet"], ["suite", "seed-rpi"], ["optimize", "zoo:seednet"]])
def test_cluster_options_without_device_are_refused_not_ignored(command, monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, *command, "--scheduler", "tls://127.0.0.1:1", "--tls", str(tmp_path),
                           "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "--scheduler and --tls apply only with --device KIND",
                          "add --device KIND or drop --scheduler and --tls")
    assert not (tmp_path / "out").exists()
    # The environment configures the cluster for every command: not a request on its own.
    monkeypatch.setenv("EDGEOPT_SCHEDULER", "tls://127.0.0.1:1")
    code, _, err = run_cli(monkeypatch, capsys, *command, "--insecure", "--out", str(tmp_path / "out"))
    assert_one_line_error(code, err, "--insecure applies only with --device KIND")
    if command[0] == "bench":  # the variable alone passes this check: the next one speaks
        code, _, err = run_cli(monkeypatch, capsys, *command, "--batch", "0", "--out", str(tmp_path / "out"))
        assert code == 2 and "--device" not in err and "--batch" in err, err
