"""``edgeopt suite --device``: every cell timed on a board of the kind, a fresh session each."""

from __future__ import annotations

import json
import os
from dataclasses import replace

import pytest

from edgeopt import load_model
from edgeopt.device.cluster import connect
from edgeopt.device.target import DeviceTarget
from edgeopt.bench.harness import BenchResult
from edgeopt.errors import EdgeoptError
from edgeopt.report.suite_report import suite_markdown, suite_measured_on
from edgeopt.suites.catalog import SuiteSpec
from edgeopt.suites.cells import DeviceCells
from edgeopt.suites.run import SuiteCell, SuiteRun, run_suite

from support import board_worker_pids, run_cli


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


def _spec(**kw) -> SuiteSpec:
    base = dict(name="tiny", title="test", source="test study", models=("zoo:seednet",), backends=("ort",),
                threads=(1,), batches=(1, 2), metric="ms_per_image", min_runs=5)
    return SuiteSpec(**{**base, **kw})


def test_a_suite_on_a_device_times_every_cell_in_a_board_worker(cluster, seednet):
    address, tls, _ = cluster
    pids = board_worker_pids(address, tls)
    with connect(address, tls_dir=tls) as client:
        run = run_suite(_spec(), budget_s=60.0, progress=False, load=lambda ref: seednet,
                        target=DeviceTarget(client, "twin"))
    assert [(c.result.batch, c.result.ok, c.skipped) for c in run.cells] == [(1, True, False), (2, True, False)], \
        [c.result.error for c in run.cells]
    for c in run.cells:
        board = c.result.machine["device"]
        assert board["kind"] == "twin" and pids[board["name"]] == board["pid"] != os.getpid()
        assert c.result.prepare_ms > 0  # each cell is a fresh session: the board's prepare is in it
    # The run's record is a board's, with the runtimes it has; one session per cell.
    assert run.machine["device"]["kind"] == "twin" and "ort" in run.machine["runtimes"]
    assert [(s["backend"], s["batch"], s["board"]) for s in run.sessions] == [
        ("ort", c.result.batch, c.result.machine["device"]["name"]) for c in run.cells]


def test_cli_suite_on_a_device_says_where_it_measured(cluster, monkeypatch, capsys, tmp_path, seednet):
    address, tls, _ = cluster
    pids = board_worker_pids(address, tls)
    # seed-rpi is the smallest real suite (one small model); ort only, so the budget goes to 18 cells.
    code, out, err = run_cli(monkeypatch, capsys, "suite", "seed-rpi", "--backends", "ort", "--budget", "20s",
                             "--no-history", "--device", "twin", "--scheduler", address, "--tls", str(tls),
                             "--out", str(tmp_path / "o"))
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "suite.json").read_text())
    measured = [r for r in doc["results"] if r["error"] is None]
    assert measured and len(doc["results"]) == 2 * 9  # threads 1, 2 x batches 1..256
    assert all(r["cell"]["skipped"] for r in doc["results"] if r["error"] is not None), \
        [r["error"] for r in doc["results"]]
    for r in measured:
        board = r["machine"]["device"]
        assert board["kind"] == "twin" and pids[board["name"]] == board["pid"] != os.getpid()
    names = sorted({r["machine"]["device"]["name"] for r in measured})
    where = f"measured on board{'s' * (len(names) > 1)} {', '.join(names)} (kind twin)"
    assert f"{len(measured)} of 18 cells {where} in" in out
    md = (tmp_path / "o" / "report.md").read_text()
    assert f"{where[0].upper()}{where[1:]}: " in md and "Measured here" not in md
    assert doc["meta"]["machine"]["device"]["kind"] == "twin"


class _Board:
    """What DeviceCells asks of a target, for a board with ``runtimes`` (no cluster)."""

    kind, cpus, smallest = "rpi4", 4, "the smallest rpi4 board"

    def __init__(self, runtimes: dict[str, str]) -> None:
        self.runtimes = runtimes

    def machine(self) -> dict:
        return {"cpu_model": "Cortex-A72", "device": {"name": "pi-1", "kind": "rpi4"}, "runtimes": self.runtimes}

    def unavailable(self, backend: str) -> str | None:  # DeviceTarget's, for every board having these runtimes
        have = ", ".join(sorted(self.runtimes))
        return None if backend in self.runtimes else f"not installed on every rpi4 board (they have {have})"

    def benchmark(self, model, backend, **settings):
        raise AssertionError("no cell should run")


def test_backends_the_board_lacks_are_unavailable_with_the_reason():
    cells = DeviceCells(_Board({"ort": "1.20.1"}))
    assert cells.why_not("ort") is None
    assert cells.why_not("openvino") == "not installed on every rpi4 board (they have ort)"
    assert cells.why_not("reference") == ""  # the oracle is never timed: no note
    assert cells.version("ort") == "1.20.1" and cells.version("openvino") == ""
    assert cells.all_cpus() == 4


def test_a_board_without_any_of_the_suites_runtimes_is_one_line(seednet):
    with pytest.raises(EdgeoptError) as e:
        run_suite(_spec(backends=("openvino", "tvm")), budget_s=10.0, progress=False, load=lambda ref: seednet,
                  target=_Board({"ort": "1.20.1"}))
    assert str(e.value) == ("none of the suite's backends is usable on the rpi4 board (openvino: not installed on "
                            "every rpi4 board (they have ort); tvm: not installed on every rpi4 board (they have ort))")


class _FastBoard(_Board):
    """Every cell takes 1 ms per run on board pi-1, after a 5 ms prepare."""

    def benchmark(self, model, backend, **settings):
        return BenchResult(backend=backend, backend_version="1.20.1", model=model.name, model_sha256=model.sha256,
                           batch=settings["batch"], threads=settings["threads"], machine=self.machine(),
                           prepare_ms=5.0, first_ms=1.0, latencies_ms=[1.0] * 5)


def test_unavailable_backends_are_listed_and_the_report_says_where(seednet):
    run = run_suite(_spec(backends=("ort", "openvino")), budget_s=30.0, progress=False, load=lambda ref: seednet,
                    target=_FastBoard({"ort": "1.20.1"}))
    assert run.unavailable == {"openvino": "not installed on every rpi4 board (they have ort)"}
    assert [(c.result.backend, c.result.batch, c.result.ok) for c in run.cells] == [("ort", 1, True), ("ort", 2, True)]
    assert run.machine["device"]["name"] == "pi-1"
    assert [s["prepare_ms"] for s in run.sessions] == [5.0, 5.0]  # the board's prepare, one per cell
    md = suite_markdown(run, [])
    assert "Measured on board pi-1 (kind rpi4): Cortex-A72, " in md
    assert "- openvino: not installed on every rpi4 board (they have ort).\n" in md and " here" not in md
    # A run in which no cell ran still names the board kind it was for, not "here".
    nothing = SuiteRun(run.spec, budget_s=1.0, machine=run.machine,
                       cells=[SuiteCell("zoo:seednet", "fp32", replace(run.cells[0].result, latencies_ms=[],
                                                                       error="skipped: x"), True)])
    assert suite_measured_on(nothing) == "measured on a rpi4 board"
    assert suite_measured_on(replace(nothing, machine={"cpu_model": "x"})) == "measured here"
