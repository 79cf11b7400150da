"""Fixtures shared by the test files."""

from __future__ import annotations

from importlib import metadata

import pytest


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


def installed(dist: str) -> bool:
    """Whether the distribution ``dist`` is installed (tests of packaged models skip without it)."""
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True
