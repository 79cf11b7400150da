"""The conditions record: arithmetic on fake readings, not on this machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeopt.bench import conditions as cond
from edgeopt.bench.conditions import CpuTimes, Readers


def _readers(script: list[dict], cpus: int = 2) -> Readers:
    """Readers that return the i-th dict of ``script`` on the i-th snapshot."""
    state = {"i": -1}

    def at(key):
        return lambda: script[state["i"]][key]

    def clock():
        state["i"] += 1
        return script[state["i"]]["clock"]

    return Readers(clock=clock, cpu=at("cpu"), self_cpu=at("self"), load1=at("load"), freq=at("freq"),
                   governor=lambda: "performance", temperature=at("temp"), throttled=at("thr"), cpus=cpus)


START = {"clock": 100.0, "cpu": CpuTimes(busy=50.0, steal=1.0), "self": 3.0, "load": 6.5,
         "freq": (1800.0, 600.0, 1800.0), "temp": 61.0, "thr": 0x0}


def test_other_processes_share_is_system_busy_minus_own_over_wall_and_cpus():
    # 4 s wall on 2 CPUs = 8 CPU-s; the machine was busy 7 CPU-s, 3 of them ours
    end = {**START, "clock": 104.0, "cpu": CpuTimes(busy=57.0, steal=1.8), "self": 6.0, "load": 7.0,
           "freq": (1500.0, 600.0, 1800.0), "temp": 70.0, "thr": 0x0}
    with cond.recording(pinned=True, readers=_readers([START, end])) as rec:
        pass
    assert rec["wall_s"] == 4.0
    assert rec["other_cpu_pct"] == 50.0
    assert rec["steal_pct"] == 10.0
    assert (rec["load1_start"], rec["load1_end"]) == (6.5, 7.0)
    assert (rec["freq_mhz_start"], rec["freq_mhz_end"], rec["freq_mhz_min"], rec["freq_mhz_max"]) == (
        1800.0, 1500.0, 600.0, 1800.0)
    assert (rec["temp_c_start"], rec["temp_c_end"]) == (61.0, 70.0)
    assert rec["governor"] == "performance"
    assert rec["pinned"] is True and rec["throttled"] is False and rec["throttled_raw"] == "0x0"


def test_shares_are_clipped_and_missing_readings_are_none():
    # own time counted larger than the system's (different sampling): clipped to 0, not negative
    end = {**START, "clock": 102.0, "cpu": CpuTimes(busy=51.0, steal=1.0), "self": 5.0, "thr": None,
           "temp": None, "freq": None}
    rec = cond.summarize(cond.snapshot(_readers([START, end])), _second(end), 2)
    assert rec["other_cpu_pct"] == 0.0 and rec["steal_pct"] == 0.0
    assert rec["temp_c_end"] is None and rec["freq_mhz_end"] is None and rec["freq_mhz_max"] == 1800.0
    # a reader that raises or a platform without /proc/stat: not reported, no failure
    broken = Readers(clock=iter([0.0, 1.0]).__next__, cpu=lambda: 1 / 0, self_cpu=lambda: None,
                     load1=lambda: None, freq=lambda: None, governor=lambda: None,
                     temperature=lambda: None, throttled=lambda: None, cpus=4)
    with cond.recording(readers=broken) as rec2:
        rec2["cooldown_s"] = 1.5
    assert rec2["other_cpu_pct"] is None and rec2["steal_pct"] is None and rec2["cpus"] == 4
    assert rec2["cooldown_s"] == 1.5 and rec2["throttled"] is None


def _second(end: dict) -> cond.Snapshot:
    return cond.Snapshot(clock_s=end["clock"], cpu=end["cpu"], self_cpu_s=end["self"], load1=end["load"],
                         freq_mhz=end["freq"], governor=None, temp_c=end["temp"], throttled=end["thr"])


def test_throttled_reads_the_raspberry_pi_now_bits():
    assert cond.parse_throttled("throttled=0x50005\n") == 0x50005
    assert cond.parse_throttled("error") is None
    past_only = {**START, "thr": 0x50000}
    now = {**START, "clock": 101.0, "thr": 0x4}
    rec = cond.summarize(_second(past_only), _second(past_only | {"clock": 101.0}), 2)
    assert rec["throttled"] is False and rec["throttled_raw"] == "0x50000"
    assert cond.summarize(_second(START), _second(now), 2)["throttled"] is True


def test_sysfs_readers(tmp_path: Path):
    for i, (gov, temp) in enumerate((("ondemand", "45500"), ("performance", "52250"))):
        (tmp_path / f"cpu{i}/cpufreq").mkdir(parents=True)
        (tmp_path / f"cpu{i}/cpufreq/scaling_governor").write_text(gov + "\n")
        (tmp_path / f"thermal_zone{i}").mkdir()
        (tmp_path / f"thermal_zone{i}/temp").write_text(temp + "\n")
    assert cond.read_governor(tmp_path) == "ondemand,performance"
    assert cond.read_temperature(tmp_path) == pytest.approx(52.25)
    assert cond.read_governor(tmp_path / "none") is None
    (tmp_path / "cpu0/cpufreq/cpuinfo_max_freq").write_text("1800000\n")
    (tmp_path / "cpu1/cpufreq/cpuinfo_max_freq").write_text("2400000\n")
    assert cond.read_hw_max_freq(tmp_path) == 1800.0 and cond.read_hw_max_freq(tmp_path / "none") is None


def test_interference_difference():
    quiet = {"other_cpu_pct": 3.0, "steal_pct": 0.0, "throttled": False}
    busy = {"other_cpu_pct": 95.0, "steal_pct": 0.5, "throttled": False}
    assert cond.interference_difference(quiet, {**quiet, "other_cpu_pct": 20.0}) is None
    why = cond.interference_difference(quiet, busy)
    assert why == "other processes used 3% of the CPU in A, 95% in B"
    assert "throttled in B only" in cond.interference_difference(quiet, {**quiet, "throttled": True})
    assert cond.interference_difference(quiet, {}) is None
    assert cond.interference_difference(None, busy) is None
    assert cond.interference_difference(quiet, {**quiet, "other_cpu_pct": None}) is None


def test_default_readers_run_here():
    rec = cond.summarize(cond.snapshot(), cond.snapshot(), 1)
    assert set(rec) >= {"other_cpu_pct", "steal_pct", "load1_start", "temp_c_end", "pinned", "throttled"}


def test_interference_of_one_cell():
    assert cond.interference({"other_cpu_pct": 62.4, "steal_pct": 12.0, "throttled": True,
                              "throttled_raw": "0x4"}) == (
        "other processes used 62% of the CPU; steal 12%; throttled (0x4)")
    assert cond.interference({"other_cpu_pct": 20.0, "steal_pct": None, "throttled": None}) is None
    assert cond.interference({}) is None


def test_conditions_line_and_the_history_keep_the_record(tmp_path):
    from edgeopt.bench.harness import BenchResult
    from edgeopt.report.conditions_text import conditions_line
    from edgeopt.store import load_run, record_run

    def cell(batch, **c):
        base = {"other_cpu_pct": 3.0, "steal_pct": 0.0, "load1_end": 0.5, "temp_c_end": None,
                "freq_mhz_end": None, "governor": None, "pinned": False, "throttled": None}
        return BenchResult("ort", "1", "m", "ab", batch, 2, latencies_ms=[1.0, 2.0], conditions={**base, **c})

    cells = [cell(1), cell(2, other_cpu_pct=61.0, load1_end=6.25)]
    assert conditions_line(cells) == ("conditions: other processes 3..61% of the CPU, steal 0%, load 0.5..6.2, "
                                      "not pinned; 1 of 2 cells under interference")
    assert conditions_line([BenchResult("ort", "1", "m", "ab", 1, 2)]) is None
    record_run(cells, kind="bench", name="m", path=tmp_path / "h.db")
    _, back = load_run(1, tmp_path / "h.db")
    assert [r.conditions for r in back] == [c.conditions for c in cells]
