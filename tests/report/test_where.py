"""Where a figure was measured, as reports say it."""

from __future__ import annotations

from edgeopt.report.where import where_measured


def test_here_boards_and_emulation_are_said_plainly():
    assert where_measured([{"arch": "x86_64"}]) == "measured here"
    boards = [{"device": {"name": "pi-b", "kind": "rpi4"}}, {"device": {"name": "pi-a", "kind": "rpi4"}}]
    assert where_measured(boards) == "measured on boards pi-a, pi-b (kind rpi4)"
    emulated = [{"device": {"name": "arm-1", "kind": "arm64-emulated"}, "emulated": "QEMU user mode on an x86_64 host"}]
    assert where_measured(emulated) == ("measured on board arm-1 (kind arm64-emulated), emulated (QEMU user mode on an "
                                        "x86_64 host): timings are the emulator's, not the board's")
