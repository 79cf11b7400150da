"""Fixtures shared by the test files."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def history_in_tmp(monkeypatch, tmp_path_factory):
    """Commands that store their run (bench, suite) write the history at $EDGEOPT_HISTORY:
    a temporary file in every test, never the user's ~/.local/share/edgeopt/history.db."""
    path = tmp_path_factory.mktemp("history") / "history.db"
    monkeypatch.setenv("EDGEOPT_HISTORY", str(path))
    return path


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run torch on one thread for a test module, then restore the setting.

    The machine's 2 cores are shared: at 2 threads, OpenMP's spinning second thread made
    small torch convolutions 5-100x slower whenever the other core was busy.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
