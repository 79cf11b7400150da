"""Apache TVM: the Relax compiler on the host CPU, optionally tuned with MetaSchedule.

Pipeline: ONNX at static input shapes, shape arithmetic folded by onnxslim ->
``tvm.relax.frontend.onnx.from_onnx`` ->
``DecomposeOpsForInference`` -> LLVM code for this CPU -> ``relax.VirtualMachine``.
Sources: Chen et al., "TVM: An Automated End-to-End Optimizing Compiler for Deep
Learning", OSDI 2018; MetaSchedule: Shao et al., "Tensor Program Optimization with
Probabilistic Programs", NeurIPS 2022; API of apache-tvm 0.27 (``tvm.compile``,
``tvm.s_tir.meta_schedule.relax_integration``).

Target: ``{"kind": "llvm", "mcpu": <LLVM's host CPU name>, "mattr": <every host feature,
+on / -off>}``. Naming the features as well as the CPU keeps the code legal on virtual
machines whose hypervisor hides features the CPU model normally has.

Untuned vs tuned: without tuning, TVM lowers every operator to a naive loop nest with
no schedule (no tiling, no vectorization hints, no multithreading), so untuned TVM is far
slower than ONNX Runtime and ``threads`` has no effect on it. Untuned builds use TVM's
default Relax pipeline (no operator fusion): with no schedules, fusion did not speed
the kernels up and tripled compile time (ppocr-det at 160x160: 5-8 s vs 19-27 s). With
``tune_trials`` > 0, MetaSchedule searches schedules for the fused kernels
(``tune_trials`` measured candidates in all, spread evenly over the kernels; see
:class:`TuneSettings` for the search strategy) and compiles the best ones in. Measured
on this project's 2-core AMD EPYC (zoo:seednet, batch 1, 2 threads, p50, edgeopt's
harness): untuned 54.9 ms, 64 trials 3.8 ms (29 s of tuning), 256 trials 1.6 ms (123 s),
ONNX Runtime 0.67 ms. Every :class:`TvmSession` says which it is (``tuned``,
``tune_trials``) so a report never passes off untuned numbers as TVM's.

Batch sizes: TVM compiles static shapes here. A session compiles the batch-1 shape in
``prepare`` (so import/compile errors surface there) and each new input shape on its
first run, keeping one VirtualMachine per shape (a tuned session tunes each new shape
too, so that first run can take minutes; the disk cache makes it once per machine).

Cache: each compiled executable is a shared library under ``<cache>/tvm/`` keyed by
(model sha256, target, input shapes, tuning trials and settings, TVM, tvm-ffi and
onnxslim versions); ``<cache>`` is ``$EDGEOPT_CACHE``, else ``$XDG_CACHE_HOME/edgeopt``, else
``~/.cache/edgeopt`` (as :func:`edgeopt.zoo.digits.cache_dir`). Writes are atomic (temp
file + rename). Linking the library needs a C compiler (TVM calls ``g++``); without one
the session still runs, uncached.

Threads: TVM's thread pool is sized once per OS thread from ``TVM_NUM_THREADS`` (else
half the logical CPUs on x86), so :meth:`TvmBackend.prepare` raises that variable to at
least ``max(threads, os.cpu_count())`` before the pool exists, and every run sets the
pool to exactly ``threads`` workers with ``runtime.config_threadpool`` (TVM's default
big-core affinity mode) when it differs. :meth:`TvmSession.runtime_threads` reads the
count back from ``tvm.runtime.num_threads()``.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import logging
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._util.cache import cache_root
from ..errors import BackendUnavailable, ShapeError
from .._util.atomic import atomic_write_bytes
from .base import Backend, Session, check_fed_shapes

if TYPE_CHECKING:
    from ..model import Model

TRIALS_ENV = "EDGEOPT_TVM_TRIALS"
# 0.27 was released against apache-tvm-ffi 0.1.14; with 0.1.15.post1/post2 every
# tvm.ir.save_json segfaults, and MetaSchedule serializes each tuning task that way.
_INSTALL = "pip install apache-tvm==0.27.0.post1 'apache-tvm-ffi>=0.1.14,<0.1.15'"
_BAD_FFI_PREFIX = "0.1.15"
# Bump when the build recipe changes, so old cached libraries are not reused.
_CACHE_FORMAT = 1
# TVM's ThreadGroup::kBig: the affinity mode its own pool starts in.
_AFFINITY_BIG = 1


# -- small helpers -----------------------------------------------------------------------
def cache_dir() -> Path:
    """Folder of compiled executables: ``$EDGEOPT_CACHE/tvm`` (default ``~/.cache/edgeopt/tvm``)."""
    return cache_root() / "tvm"


def trials_from_env() -> int:
    """The tuning budget asked for by ``$EDGEOPT_TVM_TRIALS`` (0, i.e. untuned, when unset).

    Raises:
        BackendUnavailable: the variable is not a non-negative integer.
    """
    raw = os.environ.get(TRIALS_ENV, "").strip()
    if not raw:
        return 0
    try:
        trials = int(raw)
    except ValueError:
        trials = -1
    if trials < 0:
        raise BackendUnavailable(
            f"{TRIALS_ENV}={raw!r} is not a number of tuning trials: set a non-negative "
            f"integer (0 = untuned) or unset it"
        )
    return trials


def host_target(num_cores: int | None = None) -> Any:
    """The LLVM target for this machine's CPU, as a ``tvm.target.Target``.

    Args:
        num_cores: cores the generated code may use; MetaSchedule requires it (it sizes
            parallel loops), plain builds do not need it.

    Returns:
        ``Target({"kind": "llvm", "mcpu": ..., "mattr": [...], "num-cores": ...})``.
    """
    import tvm

    cpu = str(tvm.get_global_func("tvm.codegen.llvm.GetHostCPUName")())
    features = tvm.get_global_func("tvm.codegen.llvm.GetHostCPUFeatures")()
    spec: dict[str, Any] = {
        "kind": "llvm",
        "mcpu": cpu,
        "mattr": [("+" if on else "-") + str(name) for name, on in sorted(features.items())],
    }
    if num_cores:
        spec["num-cores"] = int(num_cores)
    return tvm.target.Target(spec)


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


def _reason(e: BaseException, limit: int = 200) -> str:
    """The informative part of a TVM error, on one line."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    # TVM errors may carry a C++ backtrace ("File ...", "at ...") around the message.
    useful = [ln for ln in lines if not ln.startswith(("File ", "at ", "Traceback", "^"))]
    text = useful[-1] if useful else ""
    return f"{type(e).__name__}: {text}"[:limit] if text else type(e).__name__


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("apache-tvm", "apache-tvm-ffi", "onnxslim"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = ""
    return out


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


# -- compiling -----------------------------------------------------------------------------
def _static_proto(proto: Any, shapes: dict[str, tuple[int, ...]]) -> Any:
    """A copy of ``proto`` at these static input shapes, shape arithmetic folded away.

    TVM's ONNX frontend cannot Reshape to a shape computed in the graph (zoo:ppocr-cls
    reshapes to Concat(Slice(Shape(x)), const): "Reshape requires the input new shape to
    be Shape"). With every dim static, onnxslim's constant folding turns such
    subgraphs into constants. Only folding runs (no fusion) so the graph TVM sees keeps
    the model's ops; if onnxslim fails, TVM gets the unfolded static-shape graph.
    """
    import onnx

    static = onnx.ModelProto()
    static.CopyFrom(proto)
    for vi in static.graph.input:
        if vi.name in shapes:
            for dim, size in zip(vi.type.tensor_type.shape.dim, shapes[vi.name]):
                dim.Clear()
                dim.dim_value = int(size)
    try:
        import onnxslim

        # slim() rewrites the proto it is given, even when it then fails.
        scratch = onnx.ModelProto()
        scratch.CopyFrom(static)
        folded = onnxslim.slim(
            scratch, skip_optimizations=["graph_fusion", "subexpression_elimination",
                                        "weight_tying"])
    except Exception:  # noqa: BLE001 - folding is a convenience for TVM's frontend
        folded = None
    return folded if folded is not None else static


def _relax_module(proto: Any, shapes: dict[str, tuple[int, ...]], dtypes: dict[str, str]) -> Any:
    """The ONNX graph as a Relax IRModule at these static input shapes."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    proto = _static_proto(proto, shapes)
    with warnings.catch_warnings():
        # from_onnx runs onnx.checker and re-emits its complaints as UserWarnings; a model
        # TVM cannot convert fails below with OpNotImplemented, which says more.
        warnings.simplefilter("ignore", UserWarning)
        mod = from_onnx(proto, shape_dict={k: list(v) for k, v in shapes.items()},
                        dtype_dict=dict(dtypes))
    # What TVM's static-shape pipeline does first: inference-mode BatchNorm etc.
    return tvm.transform.Sequential(
        [relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings()]
    )(mod)


def _import_cpu_tensor_intrinsics() -> None:
    """Import ``tvm.s_tir.tensor_intrin`` with only this CPU's intrinsics registered.

    MetaSchedule's TuneContext imports the package, whose ``__init__`` parses the tensor
    intrinsics of every target (CUDA alone took 24 s, all of them 40-55 s here). A CPU
    target only looks up x86 or Arm intrinsics, so register the package without running
    its ``__init__``; other targets' submodules still import on demand.
    """
    name = "tvm.s_tir.tensor_intrin"
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:  # layout changed: let TuneContext do the slow import itself
        return
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    import tvm.s_tir

    tvm.s_tir.tensor_intrin = package
    machine = platform.machine().lower()
    sub = "arm_cpu" if machine in ("aarch64", "arm64") or machine.startswith("arm") else "x86"
    importlib.import_module(f"{name}.{sub}")


def _in_process_builder(artifact_dir: str) -> Any:
    """A MetaSchedule builder that compiles candidates in this process.

    TVM's LocalBuilder starts a fresh worker pool for every batch of candidates, and each
    worker re-imports every target's tensor intrinsics (~50 s on this machine) before
    building a kernel that takes ~0.1 s.
    """
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.transform import RemoveWeightLayoutRewriteBlock
    from tvm.support.tar import tar
    from tvm.tirx import build as tvm_build

    @derived_object
    class InProcessBuilder(PyBuilder):
        def build(self, build_inputs):
            results = []
            for item in build_inputs:
                try:
                    # As LocalBuilder's default_build: weights are not pre-packed here.
                    mod = RemoveWeightLayoutRewriteBlock(skip_tensor_rewrite=True)(item.mod)
                    lib = tvm_build(mod, target=item.target)
                    path = os.path.join(tempfile.mkdtemp(dir=artifact_dir), "kernel.tar")
                    lib.export_library(path, fcompile=tar)
                    results.append(BuilderResult(path, None))
                except Exception as e:  # noqa: BLE001 - a failed candidate is recorded, not fatal
                    results.append(BuilderResult(None, _reason(e)))
            return results

    return InProcessBuilder()


@contextmanager
def _quiet_meta_schedule(work_dir: str) -> Iterator[None]:
    """Keep MetaSchedule's per-round tables off stdout; drop its log files afterwards."""
    root = logging.getLogger("tvm.s_tir.meta_schedule")
    level = root.level
    # MetaSchedule's console handler takes the level this logger has when tuning starts.
    root.setLevel(logging.WARNING)
    try:
        yield
    finally:
        root.setLevel(level)
        names = [n for n in logging.Logger.manager.loggerDict if n.startswith(root.name)]
        for logger in {root, *(logging.getLogger(n) for n in names)}:
            for handler in list(logger.handlers):
                if (isinstance(handler, logging.FileHandler)
                        and handler.baseFilename.startswith(work_dir)):
                    logger.removeHandler(handler)
                    handler.close()


@dataclass(frozen=True)
class TuneSettings:
    """How MetaSchedule searches (every field enters the cache key).

    Attributes:
        cost_model: "xgb" when xgboost is importable, else "random" (xgboost's Linux
            wheels pull CUDA's NCCL; ``xgboost-cpu`` provides the module without it).
        evolutionary_from: trials per kernel from which the search is MetaSchedule's
            evolutionary one; below, "replay-trace" (random samples of the design space).
            Why 64: one evolutionary round costs ~9 s of search per kernel here whatever
            the budget (population 512), which dominated small runs: zoo:seednet with 16
            trials took 113 s evolutionary vs 10 s replay-trace (15.6 vs 9.3 ms after), and
            64 is the candidates one evolutionary round measures.
        seed: search seed, for repeatable searches.
    """

    cost_model: str
    evolutionary_from: int = 64
    seed: int = 0

    def strategy(self, trials_per_task: int) -> str:
        """The MetaSchedule search strategy for this per-kernel budget."""
        return "evolutionary" if trials_per_task >= self.evolutionary_from else "replay-trace"

    @staticmethod
    def detect() -> TuneSettings:
        return TuneSettings("xgb" if importlib.util.find_spec("xgboost") else "random")


@dataclass(frozen=True)
class TuneResult:
    """What one MetaSchedule run did.

    Attributes:
        tasks: kernels (fused TIR functions) in the model.
        tasks_tuned: kernels for which a working schedule was measured and compiled in
            (the others keep TVM's naive loops).
        strategy: the search strategy used.
        seconds: wall time of the search, in seconds.
    """

    tasks: int
    tasks_tuned: int
    strategy: str
    seconds: float


def _tune_and_build(mod: Any, target: Any, trials: int, threads: int,
                    settings: TuneSettings) -> tuple[Any, TuneResult]:
    """MetaSchedule search on ``mod``'s fused kernels, then a build with the best schedules.

    Candidates run in one TVM worker process with ``threads`` pool threads, each timed as
    the mean of >= 100 ms of runs (TVM's default EvaluatorConfig).
    """
    import tvm
    from tvm.relax import pipeline as relax_pipeline
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.relax_integration import (
        extract_tasks,
        extracted_tasks_to_tune_contexts,
    )

    _import_cpu_tensor_intrinsics()
    start = time.perf_counter()
    # compile_relax fuses with these same passes, so the tuned kernels match its lookups.
    with target:
        fused = tvm.transform.Sequential(
            relax_pipeline.library_dispatch_passes(target)
            + relax_pipeline.legalize_passes(target)
        )(mod)
    tasks = extract_tasks(fused, target)
    database = ms.database.MemoryDatabase()
    # Spread the budget: by default the first kernel would get every trial.
    per_task = max(1, math.ceil(trials / max(1, len(tasks))))
    strategy = settings.strategy(per_task)
    if tasks:
        with tempfile.TemporaryDirectory(prefix="edgeopt-tvm-tune-") as work_dir, \
                _quiet_meta_schedule(work_dir):
            contexts, weights = extracted_tasks_to_tune_contexts(
                tasks, work_dir, strategy=strategy, seed=settings.seed)
            # The runner's worker sizes its pool from TVM_NUM_THREADS when it starts.
            with _env("TVM_NUM_THREADS", str(threads)):
                runner = ms.runner.LocalRunner(timeout_sec=30)
            try:
                ms.tune_tasks(
                    tasks=contexts, task_weights=weights, work_dir=work_dir,
                    max_trials_global=trials, max_trials_per_task=per_task,
                    num_trials_per_iter=min(64, per_task),
                    builder=_in_process_builder(work_dir), runner=runner,
                    database=database, cost_model=settings.cost_model,
                )
            finally:
                runner.pool.shutdown()
    tuned = sum(1 for t in tasks
                if database.query_tuning_record(t.dispatched[0], target, "main") is not None)
    result = TuneResult(len(tasks), tuned, strategy, time.perf_counter() - start)
    executable = ms.relax_integration.compile_relax(database, mod, target, None)
    return executable, result


# -- the session ------------------------------------------------------------------------
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
        """sha256 hex of everything the compiled library depends on."""
        payload = {
            "format": _CACHE_FORMAT,
            "model": self._model_sha,
            "target": self.target,
            "shapes": [list(s) for s in shapes],
            "trials": self.tune_trials,
            "tuning": ({"cost_model": self._settings.cost_model,
                        "evolutionary_from": self._settings.evolutionary_from,
                        "seed": self._settings.seed} if self.tuned else None),
            "versions": _versions(),
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    def cache_path(self, shapes: tuple[tuple[int, ...], ...]) -> Path | None:
        """Where the library for ``shapes`` is cached (None when caching is off)."""
        if self._cache is None:
            return None
        batch = shapes[0][0] if shapes and shapes[0] else 0
        key = self.cache_key(shapes)
        return self._cache / f"{self._model_sha[:12]}-b{batch}-t{self.tune_trials}-{key[:16]}.so"

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
        executable = None
        if path is not None and path.exists():
            try:
                import tvm

                executable = tvm.runtime.load_module(str(path))
                source = "cache"
            except Exception:  # noqa: BLE001 - unreadable (e.g. truncated): rebuild it
                executable = None
        tune = None
        if executable is None:
            executable, tune = self._compile(shapes)
            source = "compiled"
            path = self._save(executable, path)
        main = relax.VirtualMachine(executable, self._device)["main"]
        self.builds.append(Build(shapes, source, time.perf_counter() - start,
                                 str(path or ""), tune))
        self._vms[shapes] = main
        return main

    def _compile(self, shapes: tuple[tuple[int, ...], ...]) -> tuple[Any, TuneResult | None]:
        import tvm

        try:
            mod = _relax_module(self._model.proto, dict(zip(self._names, shapes)),
                                {s.name: s.dtype for s in self._specs})
            if self.tuned:
                return _tune_and_build(mod, self._target, self.tune_trials, self.threads,
                                       self._settings)
            return tvm.compile(mod, target=self._target), None
        except Exception as e:
            raise BackendUnavailable(
                f"TVM cannot compile {self._model.name} at input shapes "
                f"{[list(s) for s in shapes]} ({_reason(e)}): use the ort backend"
            ) from e

    def _save(self, executable: Any, path: Path | None) -> Path | None:
        """Write the library atomically; None (and a warning) when it cannot be written."""
        if path is None:
            return None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".so")
            os.close(fd)
            try:
                executable.export_library(tmp)
                os.replace(tmp, path)
            finally:
                Path(tmp).unlink(missing_ok=True)
            meta = {"model": self._model.source, "passes": list(self._model.passes),
                    "target": self.target, "tune_trials": self.tune_trials,
                    "versions": _versions()}
            atomic_write_bytes(path.with_suffix(".json"),
                               json.dumps(meta, indent=1).encode())
        except Exception as e:  # noqa: BLE001 - caching is an optimization
            warnings.warn(f"TVM library not cached ({_reason(e)}): every prepare() of this "
                          f"model will compile again", RuntimeWarning, stacklevel=2)
            return None
        return path

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
        ffi = _versions()["apache-tvm-ffi"]
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
