"""The tvm backend: a Model compiled by TVM for this CPU, one VirtualMachine per shape.

Every :class:`TvmSession` says whether it is tuned (``tuned``, ``tune_trials``) so a
report never passes off untuned numbers as TVM's (see :mod:`.tune` for how far apart
they are).

Batch sizes: TVM compiles static shapes here. A session compiles the batch-1 shape in
``prepare`` (so import/compile errors surface there) and each new input shape on its
first run, keeping one VirtualMachine per shape (a tuned session tunes each new shape
too, so that first run can take minutes; the disk cache of :mod:`.cache` makes it once
per machine).

Threads: TVM's thread pool is sized once per OS thread from ``TVM_NUM_THREADS`` (else
half the logical CPUs on x86), so :meth:`TvmBackend.prepare` raises that variable to at
least ``max(threads, os.cpu_count())`` before the pool exists, and every run sets the
pool to exactly ``threads`` workers with ``runtime.config_threadpool`` (TVM's default
big-core affinity mode) when it differs. :meth:`TvmSession.runtime_threads` reads the
count back from ``tvm.runtime.num_threads()``.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ...errors import BackendUnavailable, ShapeError
from ..base import Backend, Session, check_fed_shapes
from .cache import cache_dir, cache_key, cache_path, load, save, versions
from .compile import host_target, reason, relax_module
from .tune import TuneResult, TuneSettings, trials_from_env, tune_and_build

if TYPE_CHECKING:
    from ...model import Model

# 0.27 was released against apache-tvm-ffi 0.1.14; with 0.1.15.post1/post2 every
# tvm.ir.save_json segfaults, and MetaSchedule serializes each tuning task that way.
_INSTALL = "pip install apache-tvm==0.27.0.post1 'apache-tvm-ffi>=0.1.14,<0.1.15'"
_BAD_FFI_PREFIX = "0.1.15"
# TVM's ThreadGroup::kBig: the affinity mode its own pool starts in.
_AFFINITY_BIG = 1


def _reserve_thread_pool(threads: int) -> None:
    """Size TVM's pool (created lazily, per OS thread) for ``threads`` workers.

    TVM reads TVM_NUM_THREADS when a thread's pool is created and can never grow it;
    config_threadpool only chooses how many of those workers run.
    """
    want = max(threads, os.cpu_count() or 1)
    try:
        have = int(os.environ.get("TVM_NUM_THREADS", "0"))
    except ValueError:
        have = 0
    if have < want:
        os.environ["TVM_NUM_THREADS"] = str(want)


def _set_threads(threads: int) -> int:
    """Make this OS thread's TVM pool use ``threads`` workers; the count now in use."""
    import tvm

    if tvm.runtime.num_threads() != threads:
        tvm.get_global_func("runtime.config_threadpool")(_AFFINITY_BIG, threads)
    return int(tvm.runtime.num_threads())


@dataclass(frozen=True)
class Build:
    """How the executable for one set of input shapes was obtained.

    Attributes:
        shapes: the input shapes, in graph input order.
        source: "compiled" (built, and tuned if the session is) or "cache" (loaded).
        seconds: wall time of that compile (tuning included) or cache load, in seconds.
        path: the cached shared library, or "" when it could not be written.
        tune: the tuning run, for tuned compiles; None otherwise.
    """

    shapes: tuple[tuple[int, ...], ...]
    source: str
    seconds: float
    path: str
    tune: TuneResult | None = None


class TvmSession(Session):
    """A Model compiled by TVM for this CPU, one VirtualMachine per input shape.

    Attributes:
        backend: "tvm".
        threads: TVM pool threads used by every run.
        tuned: True when compiled with a MetaSchedule search (``tune_trials`` > 0).
        tune_trials: the search budget in measured candidates (0 = untuned).
        target: the TVM target, as TVM prints it (JSON).
        builds: one :class:`Build` per input shape compiled or loaded, in order.

    Not thread-safe: the VirtualMachines keep their memory between runs.
    """

    def __init__(self, model: Model, *, threads: int, trials: int, cache: Path | None,
                 settings: TuneSettings) -> None:
        import tvm

        self.backend = "tvm"
        self.threads = threads
        self.tune_trials = trials
        self.tuned = trials > 0
        self.builds: list[Build] = []
        self._settings = settings
        self._model = model
        self._model_sha = model.sha256
        self._specs = list(model.inputs)
        self._names = [s.name for s in model.inputs]
        self._cache = cache
        self._vms: dict[tuple, Any] = {}
        self._target = host_target(threads if self.tuned else None)
        self.target = str(self._target)
        self._device = tvm.cpu(0)
        # Compile the batch-1 shape now so import/compile errors surface in prepare().
        self._vm_for(tuple(s.shape for s in self._specs))

    # -- compile / cache ------------------------------------------------------------------
    def cache_key(self, shapes: tuple[tuple[int, ...], ...]) -> str:
        """sha256 hex of everything the compiled library depends on (:func:`.cache.cache_key`)."""
        return cache_key(self._model_sha, self.target, shapes, self.tune_trials, self._settings)

    def cache_path(self, shapes: tuple[tuple[int, ...], ...]) -> Path | None:
        """Where the library for ``shapes`` is cached (None when caching is off)."""
        if self._cache is None:
            return None
        return cache_path(self._cache, self._model_sha, shapes, self.tune_trials,
                          self.cache_key(shapes))

    def _vm_for(self, shapes: tuple[tuple[int, ...], ...]) -> Any:
        """The VirtualMachine's ``main`` for these input shapes (cached in memory and on disk).

        Raises:
            BackendUnavailable: TVM cannot import or compile the model at these shapes.
        """
        hit = self._vms.get(shapes)
        if hit is not None:
            return hit
        from tvm import relax

        path = self.cache_path(shapes)
        start = time.perf_counter()
        executable, source, tune = load(path), "cache", None
        if executable is None:
            executable, tune = self._compile(shapes)
            source = "compiled"
            path = save(executable, path, {
                "model": self._model.source, "passes": list(self._model.passes),
                "target": self.target, "tune_trials": self.tune_trials})
        main = relax.VirtualMachine(executable, self._device)["main"]
        self.builds.append(Build(shapes, source, time.perf_counter() - start,
                                 str(path or ""), tune))
        self._vms[shapes] = main
        return main

    def _compile(self, shapes: tuple[tuple[int, ...], ...]) -> tuple[Any, TuneResult | None]:
        import tvm

        try:
            mod = relax_module(self._model.proto, dict(zip(self._names, shapes)),
                               {s.name: s.dtype for s in self._specs})
            if self.tuned:
                return tune_and_build(mod, self._target, self.tune_trials, self.threads,
                                      self._settings)
            return tvm.compile(mod, target=self._target), None
        except Exception as e:
            raise BackendUnavailable(
                f"TVM cannot compile {self._model.name} at input shapes "
                f"{[list(s) for s in shapes]} ({reason(e)}): use the ort backend"
            ) from e

    # -- running --------------------------------------------------------------------------
    def runtime_threads(self) -> int:
        """Threads TVM's pool uses for this session's runs, read back from the runtime."""
        return _set_threads(self.threads)

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One forward pass; outputs are copies (safe to keep across runs).

        Raises:
            ShapeError: the feeds do not name the model's inputs, or a non-batch dim or
                the dtype differs from the InputSpec.
            BackendUnavailable: TVM cannot compile the model at a new batch size.
        """
        import tvm

        if set(feeds) != set(self._names):
            raise ShapeError(
                f"feeds name {sorted(feeds)}, but {self._model.name} takes {self._names}: "
                f"pass one array per model input"
            )
        arrays = [np.asarray(feeds[n]) for n in self._names]
        check_fed_shapes(self._specs, arrays, self._model.name, dtypes=True)
        main = self._vm_for(tuple(a.shape for a in arrays))
        _set_threads(self.threads)
        out = main(*(tvm.runtime.tensor(np.ascontiguousarray(a)) for a in arrays))
        outs = [out] if isinstance(out, tvm.runtime.Tensor) else list(out)
        return [o.numpy() for o in outs]

    def close(self) -> None:
        self._vms.clear()


class TvmBackend(Backend):
    """Apache TVM (Relax + LLVM) on the host CPU; untuned unless a trial budget is given.

    Args:
        tune_trials: MetaSchedule trials per compiled shape; None reads
            ``$EDGEOPT_TVM_TRIALS`` at each prepare (default 0 = untuned).
        cache: folder for compiled libraries; None = :func:`cache_dir`, False = no disk
            cache.
    """

    name = "tvm"
    module = "tvm"
    distribution = "apache-tvm"
    install = _INSTALL

    def __init__(self, tune_trials: int | None = None, cache: Path | str | bool | None = None
                 ) -> None:
        if tune_trials is not None and tune_trials < 0:
            raise ValueError(f"tune_trials must be >= 0, got {tune_trials}")
        self.tune_trials = tune_trials
        self._cache = cache

    def _cache_folder(self) -> Path | None:
        if self._cache is False:
            return None
        if self._cache is None or self._cache is True:
            return cache_dir()
        return Path(self._cache)

    def _prepare(self, model: Model, *, threads: int) -> Session:
        """Compile ``model`` at batch 1 (from the disk cache when possible).

        Raises:
            BackendUnavailable: TVM cannot import or compile the model, the trial budget
                is malformed, tuning is asked with a tvm-ffi known to crash, or TVM's
                thread pool cannot provide ``threads`` workers in this process.
        """
        if threads < 1:
            raise BackendUnavailable(f"threads must be >= 1, got {threads}")
        trials = self.tune_trials if self.tune_trials is not None else trials_from_env()
        ffi = versions()["apache-tvm-ffi"]
        if trials and ffi.startswith(_BAD_FFI_PREFIX):
            raise BackendUnavailable(
                f"TVM tuning crashes with apache-tvm-ffi {ffi} (save_json segfaults): "
                f"{_INSTALL}"
            )
        _reserve_thread_pool(threads)
        got = _set_threads(threads)
        if got != threads:
            raise BackendUnavailable(
                f"TVM's thread pool in this process has {got} workers, {threads} asked: "
                f"set TVM_NUM_THREADS={threads} before the first TVM run"
            )
        return TvmSession(model, threads=threads, trials=trials, cache=self._cache_folder(),
                          settings=TuneSettings.detect())
