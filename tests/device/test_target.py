"""DeviceTarget's bookkeeping without a cluster: what it sends, and what it reads from the boards' profiles."""

from __future__ import annotations

import dataclasses

import pytest

from edgeopt import load_model
from edgeopt.device.target import DeviceTarget


class FakeClient:
    """The three calls :func:`edgeopt.device.cluster.boards` makes, and scatter (recorded)."""

    def __init__(self, boards: dict[str, dict]) -> None:
        self._boards, self.scattered = boards, []

    def scheduler_info(self, n_workers: int = 5) -> dict:
        return {"workers": {a: {"name": b["name"], "resources": {f"device-{b['kind']}": 1}, "nthreads": 1}
                            for a, b in self._boards.items()}}

    def processing(self) -> dict:
        return {}

    def run(self, fn) -> dict:
        return {a: {"machine": {"usable_cpus": b["cpus"]}, "runtimes": b["runtimes"],
                    "available_memory_bytes": b["memory"]} for a, b in self._boards.items()}

    def scatter(self, data, hash: bool = True, broadcast: bool = False):
        self.scattered.append(data)
        return f"future-{len(self.scattered)}"


def _board(name, kind="pi", cpus=4, runtimes=("ort",), memory=2 * 2**30):
    return {"name": name, "kind": kind, "cpus": cpus, "runtimes": dict.fromkeys(runtimes, "1"), "memory": memory}


@pytest.fixture(scope="module")
def with_module():
    torch = pytest.importorskip("torch")
    model = load_model("zoo:seednet")
    return model if model.torch_module is not None else dataclasses.replace(model, torch_module=torch.nn.Identity())


def test_the_smallest_board_and_the_common_runtimes_rule():
    client = FakeClient({"a": _board("pi-a", runtimes=("ort", "openvino")), "b": _board("pi-b", cpus=1, memory=2**29),
                         "c": _board("x", kind="jetson", cpus=1)})
    target = DeviceTarget(client, "pi")
    assert (target.parallel, target.cpus, target.memory, target.runtimes) == (2, 1, 2**29, {"ort"})
    assert target.unavailable("ort") is None
    assert target.unavailable("openvino") == ("not installed on every pi board (they have ort): "
                                              "pip install 'edgeopt[openvino]' there")


def test_a_lean_board_gets_the_model_without_its_torch_module(with_module):
    client = FakeClient({"a": _board("pi-a")})
    target = DeviceTarget(client, "pi")
    assert target._sent(with_module) == target._sent(with_module) == "future-1"  # sent once
    sent = client.scattered[0]
    assert sent.torch_module is None and sent.sha256 == with_module.sha256 and with_module.torch_module is not None


def test_a_board_with_torch_gets_the_module(with_module):
    client = FakeClient({"a": _board("pi-a", runtimes=("ort", "torch"))})
    DeviceTarget(client, "pi")._sent(with_module)
    assert client.scattered[0].torch_module is with_module.torch_module


TABLE = """Mismatched versions found

+---------+----------------+----------------+----------------+
| Package | Client         | Scheduler      | Workers        |
+---------+----------------+----------------+----------------+
| python  | 3.11.7.final.0 | 3.11.7.final.0 | 3.11.2.final.0 |
+---------+----------------+----------------+----------------+"""


def test_a_python_patch_level_difference_is_not_worth_a_warning():
    from edgeopt.device.cluster import version_mismatch

    assert version_mismatch(TABLE) is None
    numpy = TABLE.replace("+---------+----------------+----------------+----------------+\n| python",
                          "| numpy   | 2.4.6          | 2.4.6          | 2.3.1          |\n| python", 1)
    assert version_mismatch(numpy) == ("versions differ between this client, the scheduler and the boards (a pickle "
                                       "may not load): numpy 2.4.6 here, 2.4.6 on the scheduler, 2.3.1 on the boards; "
                                       "python 3.11.7.final.0 here, 3.11.7.final.0 on the scheduler, 3.11.2.final.0 "
                                       "on the boards")
    minor = TABLE.replace("3.11.2.final.0", "3.12.1.final.0")
    assert "python 3.11.7.final.0 here" in version_mismatch(minor)


def test_a_board_reports_the_peaks_edgeopt_machine_saved_there(tmp_path, monkeypatch):
    from edgeopt.analysis.device import DeviceProfile, save_profile
    from edgeopt.cli.device import _peaks
    from edgeopt.device.board import measured_peaks

    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    assert measured_peaks() is None and _peaks(None) == "-"
    save_profile(DeviceProfile(name="pi", source="measured", cores=4, peak_gflops={"fp32": {1: 6.0, 4: 21.5}},
                               bandwidth_gbs={"copy": 3.5, "triad": 4.25}), tmp_path / "device.json")
    peaks = measured_peaks()
    assert (peaks["fp32_gflops"], peaks["bandwidth_gbs"]) == (21.5, 4.25) and peaks["path"].endswith("device.json")
    assert _peaks(peaks) == "21.5 GFLOP/s, 4.2 GB/s"
    (tmp_path / "device.json").write_text("{not json")
    assert measured_peaks() is None  # a broken file is no peaks, never a failed board


class _Forgetting(FakeClient):
    """A scheduler that forgets the first task (its data's last replica was on a board
    that died), then runs the next one."""

    def __init__(self, boards):
        super().__init__(boards)
        self.submitted = []

    def submit(self, fn, *args, **kw):
        from concurrent.futures import CancelledError

        self.submitted.append(args)
        first = len(self.submitted) == 1

        class Future:
            key = f"task-{len(self.submitted)}"

            def result(self):
                if first:
                    raise CancelledError(f"{self.key} cancelled for reason: already forgotten.")
                return {"ran": args}
        return Future()

    def run_on_scheduler(self, fn, key):
        return 0


def test_a_forgotten_task_is_sent_again_and_counted_as_a_lost_board(with_module):
    client = _Forgetting({"a": _board("pi-a")})
    target = DeviceTarget(client, "pi")
    result, lost = target._run_counted(lambda: (print, target._sent(with_module)))
    assert result == {"ran": ("future-2",)} and lost == 1  # the model was scattered again, the task run again
    assert client.submitted == [("future-1",), ("future-2",)]
