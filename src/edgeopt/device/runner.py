"""A sweep's runner on target boards: each session of a cell is one Dask task on a board.

:class:`DeviceRunner` has the interface of :class:`~edgeopt.bench.workers.InProcess`; the
task asks for the worker resource ``device-KIND``, so it runs on a matching board, one at
a time per board (``device serve`` starts one thread), and the model is sent to the
cluster once (:class:`~edgeopt.device.target.DeviceTarget`). A board that disconnects
mid-task loses that task only: the scheduler runs it again on another board of the kind
(distributed's ``allowed-failures``), and when none is left the session is a failed row
with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..bench.harness import BenchResult
from ..bench.workers import InProcess

if TYPE_CHECKING:
    from ..model import Model
    from .target import DeviceTarget


class DeviceRunner(InProcess):
    """A sweep's sessions on the boards of one kind (see the module docstring).

    Args:
        target: the boards (:class:`~edgeopt.device.target.DeviceTarget`).
        model: the model every session times.
    """

    def __init__(self, target: "DeviceTarget", model: "Model") -> None:
        super().__init__(model)
        self.target = target
        self.cpus, self.where = target.cpus, f"of {target.smallest}"
        self.memory, self.memory_where = target.memory, f"on {target.smallest}"

    def run(self, index: int, backend: str, **settings: Any) -> BenchResult:
        """One fresh session on a board of the kind (``index`` is not used: every task
        is already a fresh session in the board's worker)."""
        return self.target.benchmark(self.model, backend, **settings)
