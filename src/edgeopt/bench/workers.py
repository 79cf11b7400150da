"""Where a sweep's sessions run: each session index in its own fresh process, as pyperf does.

A process carries its own speed: where its threads landed, its heap layout, the runtime's
thread-pool start-up. On this project's 2-core VM, five processes timing
``zoo:seednet`` on ORT at batch 1, each in 3 sessions, gave per-session p50s that agreed
within a process (0.468-0.478 ms) and differed 20% between processes (0.47 vs
0.55-0.62 ms); an A/A comparison of two ``bench`` runs whose 3 sessions shared one
process called 8 of 20 cells "faster" or "slower" on the quiet machine. pyperf's answer
is to spread the values of one benchmark over fresh worker processes (20 by default:
"each process has different performance depending on ... address space layout",
V. Stinner, psf/pyperf issue #136). :class:`SessionWorkers` keeps
one spawned process per session index for the whole sweep (the model is sent once, the
runtimes are imported before any timing) and runs one step at a time, so the processes
never compete for the cores; :class:`InProcess` is the same interface in this process
(the library default, and tests' fake backends, which a fresh process would not know).
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
from typing import TYPE_CHECKING, Any, Sequence

from ..backends import registry
from ..errors import ArtifactTampered
from .._util.errorline import error_line
from .environment import machine_info
from .harness import BenchResult, benchmark

if TYPE_CHECKING:
    from ..model import Model
    from .real_inputs import RealInputs

_MODEL: "Model | None" = None  # the worker process's model, set once by _init
_INPUTS: "RealInputs | None" = None  # and the real inputs it is fed, if any


class InProcess:
    """Every session in this process (see the module docstring).

    Args:
        model: the model every session times.
        inputs: real inputs to feed it (:class:`~edgeopt.bench.real_inputs.RealInputs`);
            None: random inputs.

    Attributes:
        cpus: the CPUs the sessions run on (None: this machine's, read when checked);
        where: how a message names them.
        memory: bytes of memory the sessions may use (None: this machine's available
            memory, read when checked).
        memory_where: how a message names that memory.
    """

    cpus: int | None = None
    where = "this process may use"
    memory: int | None = None
    memory_where = ""

    def __init__(self, model: "Model", inputs: "RealInputs | None" = None) -> None:
        self.model = model
        self.inputs = inputs

    def run(self, index: int, backend: str, **settings: Any) -> BenchResult:
        """One fresh session of a cell: :func:`~edgeopt.bench.harness.benchmark` with
        ``sessions=1``, the runner's inputs and ``settings`` (batch, threads, warmup, ... as
        its keywords); ``index`` (the session's number) is not used here."""
        return benchmark(self.model, backend, sessions=1, inputs=self.inputs, **settings)

    def close(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> "InProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SessionWorkers(InProcess):
    """One spawned worker process per session index, started before any timing.

    Args:
        model: sent to each worker once.
        sessions: how many workers (one per session index, >= 1).
        backends: registry names whose runtimes each worker imports when it starts, so
            no session's prepare pays for the import.
        inputs: real inputs, sent to each worker once with the model (None: random).

    A worker that dies (a runtime crash) is the error of the session it was running and
    is replaced for the next one.
    """

    def __init__(self, model: "Model", sessions: int, backends: Sequence[str],
                 inputs: "RealInputs | None" = None) -> None:
        super().__init__(model, inputs)
        self._backends = tuple(backends)
        self._sent = worker_model(model, self._backends)
        self._pools = [self._start() for _ in range(sessions)]
        # Start every worker now (in parallel), outside any cell's time.
        for f in [p.submit(_ready) for p in self._pools]:
            f.result()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        # spawn, not fork: a forked child would share this process's runtime thread pools.
        return concurrent.futures.ProcessPoolExecutor(
            max_workers=1, mp_context=multiprocessing.get_context("spawn"),
            initializer=_init, initargs=(self._sent, self._backends, self.inputs))

    def run(self, index: int, backend: str, **settings: Any) -> BenchResult:
        """As :meth:`InProcess.run`, in worker ``index`` (waits for it: one step at a time)."""
        try:
            return BenchResult.from_dict(self._pools[index].submit(_run, backend, settings).result())
        except ArtifactTampered:  # the user's cache, not this session, needs attention: refuse the run
            raise
        except Exception as e:  # a dead worker is this session's failure, not the sweep's end
            self._pools[index].shutdown(wait=False, cancel_futures=True)
            self._pools[index] = self._start()
            return BenchResult(backend=backend, backend_version="", model=self.model.name,
                               model_sha256=self.model.sha256, batch=settings.get("batch", 1),
                               threads=settings.get("threads", 1), machine=machine_info(),
                               error=f"{backend}: the worker process of session {index + 1} failed: "
                                     f"{error_line(e, limit=None, with_type=False)}")

    def close(self) -> None:
        """Stop the workers."""
        for pool in self._pools:
            pool.shutdown(wait=True, cancel_futures=True)


def worker_model(model: "Model", backends: Sequence[str]) -> "Model":
    """The model as worker processes get it: without its PyTorch module unless one of
    ``backends`` reads it (``Backend.reads_torch_module``), so a worker timing ONNX runtimes
    never imports torch. On zoo:seednet-digits that import held ~200 MB of a worker's
    ~270 MB baseline resident memory and seconds of its start-up, which the command's
    budget pays for."""
    if model.torch_module is None or any(getattr(registry.get(b), "reads_torch_module", True) for b in backends):
        return model
    return dataclasses.replace(model, torch_module=None)


def _init(model: "Model", backends: tuple[str, ...], inputs: "RealInputs | None" = None) -> None:
    """Worker start-up: keep the model and inputs, import each backend's runtime (errors are the cells')."""
    from .harness import timed_backend

    global _MODEL, _INPUTS
    _MODEL, _INPUTS = model, inputs
    for name in backends:
        try:
            timed_backend(name).available()
        except Exception:  # noqa: BLE001 - benchmark() reports the backend's problem per cell
            pass


def _ready() -> bool:
    return True


def _run(backend: str, settings: dict[str, Any]) -> dict[str, Any]:
    assert _MODEL is not None, "the worker was started without a model"
    return benchmark(_MODEL, backend, sessions=1, inputs=_INPUTS, **settings).to_dict()
