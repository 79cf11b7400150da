"""Thread counts capped at a multiple of the usable CPUs; the available memory read."""

from __future__ import annotations

import pytest

from edgeopt._util import resources
from edgeopt.errors import EdgeoptError
from support import one_line


def test_threads_up_to_four_per_cpu_pass_and_more_are_one_line(monkeypatch):
    monkeypatch.setattr(resources, "usable_cpus", lambda: 2)
    resources.check_threads(8)
    resources.check_threads([1, 2, 8], "--threads")
    with pytest.raises(EdgeoptError) as e:
        resources.check_threads([1, 100000, 9], "--threads")
    assert one_line(e).startswith("--threads 100000 is more than 8 (4x the 2 CPUs") and "pass at most 8" in str(e.value)


def test_available_memory_is_positive_and_below_the_total():
    import psutil

    avail = resources.available_memory()
    assert 0 < avail <= psutil.virtual_memory().total


def test_human_bytes():
    assert resources.human_bytes(3 << 30) == "3 GiB"
    assert resources.human_bytes(1536 << 10) == "1.5 MiB"
    assert resources.human_bytes(12) == "12 bytes"
