"""The seed benchmark studies, reproduced here or on a board in one command within a time budget.

A suite is a grid: models x precision variants x backends x thread counts x batch sizes.
:data:`~edgeopt.suites.catalog.SUITES` holds the studies the seed articles ran:

- ``seed-rpi``: the seed Raspberry Pi 3 study timed one small CNN (zoo:seednet) on Caffe,
  TensorFlow and MXNet builds for batch sizes 1 to 256, 100 forward passes each, and
  reported mean time per image in a table and two plots (linear and log). Here: every
  runtime installed, 1 and 2 threads.
- ``seed-nnpack``: the seed MXNet study compared NNPACK on and off on AlexNet, VGG-16,
  Inception-BN, Inception v3, ResNet-50 and ResNet-152 with random images, images/s vs
  batch. Here: PyTorch's three conv paths (oneDNN, NNPACK, im2col + GEMM), ONNX Runtime
  and OpenVINO.
- ``mobile``: the lightweight networks (MobileNet v1/v2/v3, ShuffleNet v2, SqueezeNet
  1.1) at batch 1, fp32 and int8, on each backend.

How the budget is spent (:func:`run_suite`): breadth first (:mod:`edgeopt.suites.plan`):
every model at the smallest batch on its fastest runtimes before any model gets more, so
a short budget covers every model. One session is prepared per (model, variant, backend,
threads) and group of batches, timed in increasing batch order, so the smaller batch
predicts the cost of the next. The budget is one :class:`~edgeopt._util.deadline.
Deadline`: before loading a model or building its variant it asks for the time this
run's loads and builds took (:mod:`edgeopt.suites.models`, which keeps them for later
visits), before preparing a session for the prepare time measured on that backend
(scaled by model size), before each cell for 3 runs at the per-image time of the batch
before; what does not fit is skipped and says why. A cell that runs gets an even
share of the time left over the cells not yet run as its cap
(:func:`~edgeopt.bench.harness.time_session`: at least 3 timed runs, up to the suite's
``min_runs`` within the share), so each cell adapts its repetitions to the budget and
reports how many runs it got. Cells are reported in grid order whatever the order they ran in.

On a board (``suite --device KIND``, :class:`~edgeopt.suites.cells.DeviceCells`) the plan,
the shares and the skipping are the same; the models are loaded and built here, and each
cell is one fresh session on a board of the kind (a board has no session to keep between
tasks), so each cell's check counts the board's measured prepare too.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from .. import load as loading
from ..backends import registry
from ..errors import EdgeoptError
from .._util.deadline import WRITE_RESERVE_S, Deadline
from .._util.errorline import error_line
from .._util.progress import progress_bar
from .._util.resources import check_threads
from ..bench.control import CellControl
from ..bench.harness import FLOOR_RUNS, BenchResult
from . import plan
from .catalog import SuiteSpec, Variant
from .cells import DeviceCells, LocalCells, Timer
from .models import Skip, SuiteModels
from .result import SuiteCell, SuiteRun

if TYPE_CHECKING:
    from ..device.target import DeviceTarget
    from ..model import Model

RESERVE_S = 30.0
"""At most this many seconds of the budget are kept for writing the report and plots."""


def run_suite(spec: SuiteSpec, *, budget_s: float, progress: bool = True,
              load: Callable[[str], "Model"] | None = None, backends: tuple[str, ...] | None = None,
              clock: Callable[[], float] = time.perf_counter, spent_s: float = 0.0,
              control: CellControl | None = None, target: "DeviceTarget | None" = None) -> SuiteRun:
    """Run the cells of ``spec`` within ``budget_s`` seconds, breadth first (see the module docstring).

    Args:
        spec: the suite.
        budget_s: wall-time budget in seconds (> 0), loading and preparing included.
        progress: show a progress bar with the current cell.
        load: zoo reference -> Model (default :func:`edgeopt.load.load_model`); tests
            pass small models.
        backends: run only these of the suite's backends (``suite --backends``).
        clock: monotonic clock in seconds (injected by tests).
        spent_s: seconds of the budget already spent before this call (the command's
            start-up: :func:`~edgeopt._util.deadline.process_elapsed_s`).
        control: pin each session's threads, cool down before each cell (default: neither);
            on a board, the board does both.
        target: measure every cell on a board of this kind (``suite --device``), a fresh
            session per cell; its machine record becomes the run's ``machine`` and its
            runtimes decide which backends are usable (default: here).

    Returns:
        the :class:`SuiteRun`, cells in grid order; backends that are not installed (here,
        or on the board) are listed in ``unavailable`` and get no cells.

    Raises:
        EdgeoptError: a non-positive budget, a backend the suite does not run, no backend
            of the suite is usable where the cells run, or a thread count above what the
            smallest board of the kind takes (:func:`~edgeopt._util.resources.check_threads`).
    """
    if not budget_s > 0:
        raise EdgeoptError(f"budget {budget_s!r} s is invalid: pass a positive duration, e.g. --budget 10m")
    # Looked up at call time (not bound at import), so a replaced edgeopt.load.load_model counts as the default.
    default_load = loading.load_model
    load = load or default_load
    # Kept for the report and plots: 5% of the budget, at least what writing takes on a
    # loaded machine (at most 30% of the budget), at most RESERVE_S.
    reserve = min(RESERVE_S, max(0.05 * budget_s, min(WRITE_RESERVE_S, 0.3 * budget_s)))
    deadline = Deadline(budget_s, clock=clock, reserve_s=reserve, start=clock() - spent_s)
    cells = LocalCells() if target is None else DeviceCells(target)
    run = SuiteRun(spec=spec, budget_s=budget_s, machine=cells.machine(), control=control or CellControl())
    usable = _usable(run, _chosen(spec, backends), cells)
    threads = tuple(t or cells.all_cpus() for t in spec.threads)
    if target is not None:  # the catalog's counts suit this machine; a board may have fewer cores
        check_threads(threads, cpus=target.cpus, where=f"of {target.smallest}")
    backends_of = [[b for b in (v.backends or usable) if b in usable] for v in spec.variants]
    total = sum(len(bs) for bs in backends_of) * len(spec.models) * len(threads) * len(spec.batches)
    with progress_bar(f"suite {spec.name}", total, enabled=progress) as bar:
        models = SuiteModels(load, deadline, run.estimates)

        def do(groups: list[plan.Group]) -> None:
            for g in groups:
                variant = spec.variants[g.variant]
                bar.describe(f"{g.ref.removeprefix('zoo:')} {variant.name} {g.backend} t{g.threads}")
                # Local only: on a board every cell is already a fresh session in the board's worker.
                if (target is None and registry.get(g.backend).threads_fixed_per_process and len(threads) > 1
                        and load is default_load):
                    _run_group_in_child(run, g, variant, deadline, total, bar)
                else:
                    _run_group(run, g, variant.name, models.get(g.ref, variant), deadline, total, bar, cells)

        do(plan.probe(spec.models, backends_of, threads, spec.batches))
        probe_ms = {c.result.backend: c.result.ms_per_image for c in run.cells}
        ranking = plan.rank_backends(backends_of[0], probe_ms)
        do(plan.rest(spec.models, backends_of, threads, spec.batches, ranking))
    run.cells.sort(key=_grid_key(spec, backends_of, threads))
    run.elapsed_s = deadline.elapsed()
    return run


def _chosen(spec: SuiteSpec, backends: tuple[str, ...] | None) -> list[str]:
    """The suite's backends, restricted to ``backends`` when given (each must be one of them)."""
    names = list(spec.backends or registry.names())
    if backends is None:
        return names
    wrong = [b for b in backends if b not in names]
    if wrong:
        raise EdgeoptError(f"suite {spec.name} does not run {', '.join(wrong)}: "
                           f"--backends takes some of {','.join(names)}")
    return [b for b in names if b in backends]


def _usable(run: SuiteRun, names: list[str], cells: LocalCells) -> list[str]:
    """The backends of ``names`` that ``cells`` can time (here, or on the board); the
    others' reasons go to ``run.unavailable``."""
    usable = []
    for name in names:
        why = cells.why_not(name)
        if why is None:
            usable.append(name)
        elif why:
            run.unavailable[name] = why
    if not usable:
        raise EdgeoptError(f"none of the suite's backends is usable {cells.where} "
                           f"({'; '.join(f'{b}: {why}' for b, why in run.unavailable.items())})")
    return usable


def _grid_key(spec: SuiteSpec, backends_of: list[list[str]], threads: tuple[int, ...]):
    """Sort key putting cells in grid order (model, variant, backend, threads, batch)."""
    names = [v.name for v in spec.variants]

    def key(c: SuiteCell) -> tuple:
        v = names.index(c.variant)
        return (spec.models.index(c.ref), v, backends_of[v].index(c.result.backend),
                threads.index(c.result.threads), spec.batches.index(c.result.batch))
    return key


def _run_group_in_child(run: SuiteRun, g: plan.Group, variant: Variant, deadline: Deadline, total: int,
                        bar) -> None:
    """:func:`_run_group` in a fresh process, for a backend whose thread pool is sized once
    per process; the child gets the cells' shares of the time left as its budget."""
    import concurrent.futures
    import multiprocessing

    budget = deadline.remaining() * len(g.batches) / max(total - len(run.cells), 1)
    ctx = multiprocessing.get_context("spawn")  # fork would inherit this process's pools
    if budget <= 0:  # nothing to give a child: the cells are skipped as in this process
        _run_group(run, g, variant.name, "", deadline, total, bar)
        return
    try:
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
            cells, sessions = pool.submit(_child_group, run.spec, g, variant, budget, run.machine,
                                          run.control).result()
    except Exception as e:  # a crashed child is the group's result, not the suite's end
        why = f"{g.backend} t{g.threads} in a fresh process failed: {error_line(e, limit=None, with_type=False)}"
        for batch in g.batches:
            run.cells.append(SuiteCell(g.ref, variant.name, BenchResult(
                backend=g.backend, backend_version=registry.get(g.backend).version(),
                model=g.ref.removeprefix("zoo:"), model_sha256="", batch=batch, threads=g.threads,
                machine=run.machine, error=why)))
            bar.advance()
        return
    for d in cells:
        cell = d.pop("cell")
        run.cells.append(SuiteCell(cell["ref"], cell["variant"], BenchResult.from_dict(d), cell["skipped"]))
        bar.advance()
    run.sessions += sessions


def _child_group(spec: SuiteSpec, g: plan.Group, variant: Variant, budget_s: float,
                 machine: dict[str, Any], control: CellControl) -> tuple[list[dict], list[dict]]:
    """The child's side of :func:`_run_group_in_child` (module level, so spawn can import it)."""
    child = SuiteRun(spec=spec, budget_s=budget_s, machine=machine, control=control)
    deadline = Deadline(budget_s)
    model = SuiteModels(loading.load_model, deadline, child.estimates).get(g.ref, variant)
    with progress_bar("", 0, enabled=False) as bar:
        _run_group(child, g, variant.name, model, deadline, len(g.batches), bar)
    return [c.to_dict() for c in child.cells], child.sessions


def _run_group(run: SuiteRun, g: plan.Group, variant: str, model: "Model | str", deadline: Deadline,
               total: int, bar, cells: LocalCells | None = None) -> None:
    """Time ``g`` at each of its batches with ``cells`` (default :class:`~edgeopt.suites.
    cells.LocalCells`: one session prepared here); cells appended to ``run``."""
    cells = cells or LocalCells()
    backend, threads = g.backend, g.threads

    def add(result: BenchResult, skipped: bool = False) -> None:
        run.cells.append(SuiteCell(g.ref, variant, result, skipped))
        bar.advance()

    def failed(batch: int, why: str) -> BenchResult:
        name = model.name if not isinstance(model, str) else g.ref.removeprefix("zoo:")
        sha = model.sha256 if not isinstance(model, str) else ""
        return BenchResult(backend=backend, backend_version=cells.version(backend), model=name,
                           model_sha256=sha, batch=batch, threads=threads, machine=run.machine, error=why)

    why = _why_skip_prepare(run, deadline, backend, model, cells.where)
    if why or isinstance(model, str):
        for batch in g.batches:
            add(failed(batch, why or model), skipped=bool(why) or isinstance(model, Skip))
        return
    with cells.group(run, g, variant, model, deadline.clock) as timer:
        if isinstance(timer, str):  # the backend cannot prepare this model: every batch says so
            for batch in g.batches:
                add(failed(batch, timer))
            return
        _time_batches(run, g, variant, timer, lambda: cells.cell_prepare_s(run, backend, model), deadline, total,
                      add, failed)


def _time_batches(run: SuiteRun, g: plan.Group, variant: str, timer: Timer, cell_prepare_s: Callable[[], float],
                  deadline: Deadline, total: int, add, failed) -> None:
    """Time each batch of ``g`` with ``timer`` within its share of the budget; a cell
    whose runs (and, on a board, its own prepare: ``cell_prepare_s``) cannot fit its
    share is skipped with the reason."""
    # Per-image time of this (model, variant, backend, threads), kept across its groups:
    # a wave-3 group's first batch is predicted by the wave-1/2 cell of the same session kind.
    kind = f"image {g.ref}/{variant}/{g.backend}/t{g.threads}"
    for batch in g.batches:
        share = deadline.remaining() / max(total - len(run.cells), 1)
        if deadline.expired():
            add(failed(batch, "skipped: the budget was spent before this cell"), True)
            continue
        why = _why_skip_cell(deadline.estimate(kind, prior_s=0.0) * batch, cell_prepare_s(), share)
        if why:
            add(failed(batch, why), True)
            continue
        result = timer(batch, share)
        if result.ok:
            deadline.record(kind, max(result.latencies_ms) / 1e3 / batch)
        add(result)


def _why_skip_cell(run_s: float, prepare_s: float, share: float) -> str:
    """Why a cell cannot fit its ``share`` of the budget ("" when it can): one run takes
    ``run_s`` (from the batch before; 0 when not known yet), the first inference and
    :data:`~edgeopt.bench.harness.FLOOR_RUNS` timed runs are its floor, after a fresh
    session's ``prepare_s`` on a board (0 here: the group prepared before its cells)."""
    runs = FLOOR_RUNS + 1  # the first inference runs before the floor's timed runs
    if prepare_s + runs * run_s <= share:
        return ""
    parts = [f"one run takes ~{run_s:.2g} s (from the batch before), {runs} runs"] if run_s else []
    parts += [f"a fresh session's prepare (~{prepare_s:.1f} s, from this run's others)"] if prepare_s else []
    verb = "exceed" if run_s else "exceeds"
    return f"skipped: {' and '.join(parts)} {verb} this cell's share of the budget ({share:.1f} s)"


def _why_skip_prepare(run: SuiteRun, deadline: Deadline, backend: str, model: "Model | str", where: str) -> str:
    """Why a session cannot be prepared within the time left ("" when it can): the budget
    is spent, or this backend's measured prepares ``where`` the cells run (scaled by
    model size) exceed what is left."""
    if deadline.expired():
        return "skipped: the budget was spent before this cell"
    if isinstance(model, str):
        return ""
    guess = run.prepare_estimate(backend, model.size_bytes)
    left = deadline.remaining()
    if guess is not None and not deadline.allows(guess + 1.0):
        return (f"skipped: preparing it takes ~{guess:.1f} s {where} (from this run's other prepares), more "
                f"than the {left:.1f} s left")
    return ""
