"""MetaSchedule: search schedules for a model's fused kernels, then build with the best.

Untuned vs tuned: without tuning, TVM lowers every operator to a naive loop nest with
no schedule (no tiling, no vectorization hints, no multithreading), so untuned TVM is far
slower than ONNX Runtime and ``threads`` has no effect on it. With ``tune_trials`` > 0,
MetaSchedule searches schedules for the fused kernels (``tune_trials`` measured
candidates in all, spread evenly over the kernels; see :class:`TuneSettings` for the
search strategy) and compiles the best ones in. Measured on this project's 2-core AMD
EPYC (zoo:seednet, batch 1, 2 threads, p50, edgeopt's harness): untuned 54.9 ms, 64
trials 3.8 ms (29 s of tuning), 256 trials 1.6 ms (123 s), ONNX Runtime 0.67 ms.

Source: Shao et al., "Tensor Program Optimization with Probabilistic Programs", NeurIPS
2022; API of apache-tvm 0.27 (``tvm.s_tir.meta_schedule.relax_integration``).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import math
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ...errors import BackendUnavailable
from .compile import reason

TRIALS_ENV = "EDGEOPT_TVM_TRIALS"


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


@contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    """Environment variable ``name`` set to ``value`` inside the block, restored after."""
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


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
                    results.append(BuilderResult(None, reason(e)))
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


def tune_and_build(mod: Any, target: Any, trials: int, threads: int,
                   settings: TuneSettings) -> tuple[Any, TuneResult]:
    """MetaSchedule search on ``mod``'s fused kernels, then a build with the best schedules.

    Candidates run in one TVM worker process with ``threads`` pool threads, each timed as
    the mean of >= 100 ms of runs (TVM's default EvaluatorConfig).

    Args:
        mod: the Relax IRModule (:func:`edgeopt.backends.tvm.compile.relax_module`).
        target: the TVM target, with ``num-cores`` (:func:`~.compile.host_target`).
        trials: measured candidates in all (> 0), spread evenly over the kernels.
        threads: TVM pool threads the candidates are timed with.
        settings: the search strategy, cost model and seed.

    Returns:
        (the Relax executable, what the search did).

    Raises:
        whatever TVM raises while searching or building (the session words the error).
    """
    from tvm.s_tir import meta_schedule as ms

    _import_cpu_tensor_intrinsics()
    start = time.perf_counter()
    tasks = _extract_tasks(mod, target)
    database = ms.database.MemoryDatabase()
    # Spread the budget: by default the first kernel would get every trial.
    per_task = max(1, math.ceil(trials / max(1, len(tasks))))
    strategy = settings.strategy(per_task)
    if tasks:
        _search(tasks, database, trials=trials, per_task=per_task, strategy=strategy,
                threads=threads, settings=settings)
    tuned = sum(1 for t in tasks
                if database.query_tuning_record(t.dispatched[0], target, "main") is not None)
    result = TuneResult(len(tasks), tuned, strategy, time.perf_counter() - start)
    executable = ms.relax_integration.compile_relax(database, mod, target, None)
    return executable, result


def _extract_tasks(mod: Any, target: Any) -> list[Any]:
    """The kernels of ``mod`` as MetaSchedule tuning tasks, fused as ``compile_relax`` fuses."""
    import tvm
    from tvm.relax import pipeline as relax_pipeline
    from tvm.s_tir.meta_schedule.relax_integration import extract_tasks

    # compile_relax fuses with these same passes, so the tuned kernels match its lookups.
    with target:
        fused = tvm.transform.Sequential(
            relax_pipeline.library_dispatch_passes(target)
            + relax_pipeline.legalize_passes(target)
        )(mod)
    return extract_tasks(fused, target)


def _search(tasks: list[Any], database: Any, *, trials: int, per_task: int, strategy: str,
            threads: int, settings: TuneSettings) -> None:
    """Run MetaSchedule on ``tasks``; the measured schedules land in ``database``."""
    from tvm.s_tir import meta_schedule as ms
    from tvm.s_tir.meta_schedule.relax_integration import extracted_tasks_to_tune_contexts

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
