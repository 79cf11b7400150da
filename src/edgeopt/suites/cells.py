"""How a suite's cells are timed: here, or on a board of one kind.

:func:`~edgeopt.suites.run.run_suite` plans the cells, shares the budget among them and
skips what does not fit the same way wherever they run; a cell timer does the timing only:

- :class:`LocalCells`: one session prepared here per group (model, variant, backend,
  threads) and timed at each of its batches (:func:`~edgeopt.bench.harness.time_session`),
  so a compiling runtime (TVM, OpenVINO) compiles once per group, not once per batch;
- :class:`DeviceCells`: each cell is one fresh session on a board of the kind
  (:meth:`~edgeopt.device.target.DeviceTarget.benchmark`, one Dask task), so its prepare
  is inside the cell: the board reports it, and the budget checks charge it per cell.

The models are loaded and built here either way (:class:`~edgeopt.suites.models.SuiteModels`);
a board gets each one once.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..backends import registry
from ..bench.control import CellControl
from ..bench.environment import machine_info
from ..bench.harness import BenchResult, time_session
from ..errors import ArtifactTampered
from .._util.errorline import error_line
from .plan import Group
from .result import SuiteRun

if TYPE_CHECKING:
    from ..device.target import DeviceTarget
    from ..model import Model

SESSION_FACTS = ("tuned", "tune_trials", "conv_paths", "path_share")
"""Session attributes a report needs to read a number right (TVM tuned or not, which
conv kernel torch really ran), recorded per session when the backend exposes them."""

Timer = Callable[[int, float], BenchResult]
"""Times one cell: (batch, the cell's share of the budget in seconds) -> its result."""


class LocalCells:
    """Cells timed on this machine (see the module docstring).

    Attributes:
        where: how a message names the place the cells run.
    """

    where = "here"

    def machine(self) -> dict[str, Any]:
        """This machine's record (:func:`~edgeopt.bench.environment.machine_info`)."""
        return machine_info()

    def all_cpus(self) -> int:
        """The thread count :data:`~edgeopt.suites.catalog.ALL_CPUS` stands for: the logical CPUs here."""
        return os.cpu_count() or 1

    def why_not(self, backend: str) -> str | None:
        """None when ``backend`` can be timed here; "" for an oracle (never timed, not worth
        a note); else why not (not installed, does not import)."""
        try:
            be = registry.get(backend)
        except ImportError as e:  # a backend module that imports its runtime eagerly
            return f"cannot be imported: {error_line(e, limit=None, with_type=False)}"
        if not be.timed:
            return ""
        return be.available()

    def version(self, backend: str) -> str:
        """The version of ``backend``'s runtime here."""
        return registry.get(backend).version()

    def cell_prepare_s(self, run: SuiteRun, backend: str, model: "Model") -> float:
        """Seconds of preparing inside each cell: none here (a group prepares once, before its cells)."""
        return 0.0

    @contextmanager
    def group(self, run: SuiteRun, g: Group, variant: str, model: "Model",
              clock: Callable[[], float]) -> Iterator[Timer | str]:
        """Prepare one session of ``g`` here (timed on ``clock``, recorded in ``run``) and
        yield the :data:`Timer` of its batches, or why it could not be prepared; the
        session is closed after the block.

        Raises:
            ArtifactTampered: the backend's cached artifact changed after edgeopt wrote it.
        """
        # pinned around prepare too: the runtime's threads, made there, inherit the mask
        with run.control.pinning(g.threads) as cpus:
            t0 = clock()
            try:
                session = registry.get(g.backend).prepare(model, threads=g.threads)
            except ArtifactTampered:  # the user's cache, not this cell, needs attention
                raise
            except Exception as e:  # a backend that cannot run this model is a result, not a crash
                session, why = None, error_line(e, limit=None, with_type=False)
            if session is None:
                yield f"{g.backend} cannot prepare {model.name}: {why}"
                return
            prepare_ms = (clock() - t0) * 1e3
            run.record_session(g, variant, model.size_bytes, prepare_ms,
                               **{k: getattr(session, k) for k in SESSION_FACTS if hasattr(session, k)})

            def time(batch: int, share: float) -> BenchResult:
                waited = run.control.settle(share)
                if waited is not None:
                    share = max(share - waited.waited_s, 0.0)
                result = time_session(session, model, batch=batch, min_runs=run.spec.min_runs,
                                      min_time_s=min(1.0, share), max_time_s=share,
                                      prepare_ms=prepare_ms if batch == g.batches[0] else None)
                result.machine = run.machine
                result.conditions.update(CellControl.record(cpus, waited))
                return result

            try:
                yield time
            finally:
                session.close()


class DeviceCells(LocalCells):
    """Cells timed on the boards of one kind, a fresh session per cell (see the module docstring).

    Args:
        target: the boards; asked once here for a board's machine record and runtimes.
    """

    def __init__(self, target: "DeviceTarget") -> None:
        self.target, self.where = target, f"on the {target.kind} board"
        self._machine = target.machine()

    def machine(self) -> dict[str, Any]:
        """A board's record (:meth:`~edgeopt.device.target.DeviceTarget.machine`: ``device``, ``runtimes``)."""
        return self._machine

    def all_cpus(self) -> int:
        """The usable CPUs of the smallest board of the kind (every board can run the count)."""
        return self.target.cpus

    def why_not(self, backend: str) -> str | None:
        """None when every board of the kind has ``backend``'s runtime; "" for an oracle;
        else why not (:meth:`~edgeopt.device.target.DeviceTarget.unavailable`)."""
        try:
            oracle = not registry.get(backend).timed
        except ImportError:  # not importable here says nothing of the board
            oracle = False
        return "" if oracle else self.target.unavailable(backend)

    def version(self, backend: str) -> str:
        """The version of ``backend``'s runtime on the board ("" when it has none)."""
        return self._machine.get("runtimes", {}).get(backend, "")

    def cell_prepare_s(self, run: SuiteRun, backend: str, model: "Model") -> float:
        """Every cell prepares a fresh session on the board: the prepares measured so far
        in this run (scaled by model size), 0 before the first."""
        return run.prepare_estimate(backend, model.size_bytes) or 0.0

    @contextmanager
    def group(self, run: SuiteRun, g: Group, variant: str, model: "Model",
              clock: Callable[[], float]) -> Iterator[Timer | str]:
        """Yield the :data:`Timer` of ``g``'s batches: each one task on a board, which
        prepares, times and closes its own session (its prepare kept in the result)."""
        def time(batch: int, share: float) -> BenchResult:
            # The board waits out the cooldown before its cap starts: the cap is what is left.
            cool = min(run.control.cooldown_s, share / 2)
            cap = max(share - cool, 0.0)
            result = self.target.benchmark(model, g.backend, batch=batch, threads=g.threads,
                                           min_runs=run.spec.min_runs, min_time_s=min(1.0, cap), max_time_s=cap,
                                           pin=run.control.pin, cooldown_s=cool)
            if result.prepare_ms is not None:
                run.record_session(g, variant, model.size_bytes, result.prepare_ms, batch=batch,
                                   board=result.machine.get("device", {}).get("name"))
            return result

        yield time
