"""``edgeopt bench --pin --cooldown``: the options reach every cell and its record."""

from __future__ import annotations

import json

from edgeopt.bench import control
from edgeopt.bench.control import Cooldown

from support import assert_one_line_error, run_cli


def test_bench_pins_cools_down_and_records_conditions(monkeypatch, capsys, tmp_path):
    waits = []
    monkeypatch.setattr(control, "cool_down", lambda cap: waits.append(cap) or Cooldown(0.25, True))
    # --sessions 1 times in this process, where the cooldown stand-in is (workers would not see it)
    code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--batch", "1,2", "--threads", "1",
                             "--budget", "20", "--pin", "--cooldown", "0.5", "--sessions", "1",
                             "--out", str(tmp_path))
    assert code == 0, err
    assert "conditions: " in out and ", pinned" in out
    cells = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert len(cells) == 2 and len(waits) == 2
    assert waits[0] == 0.5  # under half of the first cell's share of 20 s: the cap as given
    for c in cells:
        cond = c["conditions"]
        assert cond["pinned"] is True and len(cond["pinned_cpus"]) == 1
        assert (cond["cooldown_s"], cond["cooldown_settled"]) == (0.25, True)
        assert {"other_cpu_pct", "steal_pct", "load1_start", "governor", "temp_c_end", "throttled"} <= set(cond)


def test_bench_refuses_a_negative_cooldown(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--cooldown", "-1")
    assert_one_line_error(code, err, "--cooldown")


def test_bench_refuses_zero_sessions(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--sessions", "0")
    assert_one_line_error(code, err, "--sessions")
