"""A grid of benchmark cells (backend x threads x batch) under one total time budget.

The budget rule (a :class:`~edgeopt._util.deadline.Deadline`): cells run in grid order
(backend, then threads, then batch). Before each cell, the sweep asks the deadline
whether the cell's floor fits: prepare, first inference and min(3, min_runs) timed runs,
estimated from the cells of the same backend already measured (per image, times the
batch: conservative for larger batches). A cell that does not fit is not started; it is
recorded with ``error`` "skipped: ..." and the reason. A cell that fits gets an even
share of the time left over the cells not yet run (cells of a backend that is not
installed end at once and take no share) as its ``max_time_s`` cap (and the ceiling of
its ``min_time_s``); a cell that reaches its ``min_runs`` and ``min_time_s`` early leaves
its unused share to the cells after it. So the sweep overruns ``budget_s`` by at most
the part of one cell's floor its estimate missed.

With ``sessions`` > 1 the unit of that rule is one session of a cell, and the grid is
walked once per session (session-major), each walk in its own worker process when
``isolate`` (:mod:`edgeopt.bench.workers`): a cell's sessions then differ in process and
in time, the two things a second run of the same command would change, so the p50's
interval over sessions (:mod:`edgeopt.bench.session_stats`) covers what an A/A
comparison of two runs sees.

Results are written as JSON (every field, latencies included) or CSV (one summary row
per cell), each atomically (temp file in the same folder, then ``os.replace``).
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence

from ..errors import EdgeoptError
from .._util.atomic import atomic_write_bytes
from .._util.deadline import Deadline
from .._util.progress import progress_bar
from .._util.resources import check_threads
from .._util.userfile import read_user_text
from .environment import machine_info
from .harness import (DEFAULT_MIN_RUNS, DEFAULT_MIN_TIME_S, DEFAULT_WARMUP, BenchResult,
                      merge_sessions, timed_backend)
from .noise import noisy
from .workers import InProcess, SessionWorkers

if TYPE_CHECKING:
    from ..model import Model
    from .real_inputs import RealInputs

JSON_SCHEMA = "edgeopt.bench/1"
CSV_COLUMNS = (
    "backend", "backend_version", "model", "model_sha256", "batch", "threads",
    "prepare_ms", "first_ms", "warmup_runs", "runs", "min_ms", "mean_ms", "std_ms",
    "p50_ms", "p50_low_ms", "p50_high_ms", "cv", "rcv", "p90_ms", "p99_ms", "max_ms", "ms_per_image",
    "throughput_ips", "noisy", "stop_reason", "inputs", "baseline_rss_bytes", "peak_rss_bytes",
    "other_cpu_pct", "steal_pct", "load1", "temp_c", "pinned", "throttled",
    "cpu_model", "flags", "error",
)


def sweep(
    model: "Model",
    backends: Sequence[str],
    batches: Sequence[int],
    threads: Sequence[int] | int,
    *,
    budget_s: float,
    progress: bool = True,
    warmup: int = DEFAULT_WARMUP,
    min_runs: int = DEFAULT_MIN_RUNS,
    min_time_s: float = DEFAULT_MIN_TIME_S,
    pin: bool = False,
    cooldown_s: float = 0.0,
    sessions: int = 1,
    isolate: bool = False,
    runner: InProcess | None = None,
    inputs: "RealInputs | None" = None,
    clock: Callable[[], float] = time.perf_counter,
) -> list[BenchResult]:
    """Benchmark every (backend, threads, batch) cell within ``budget_s`` seconds in total.

    Args:
        model: the Model to time.
        backends: registry names, e.g. ["ort", "openvino"].
        batches: batch sizes, e.g. [1, 2, 4, 8].
        threads: one thread count or several.
        budget_s: total wall-time budget in seconds (> 0), shared as the module docstring says.
        progress: show a transient progress bar on stderr naming the current cell.
        warmup, min_runs, min_time_s: per cell, as in :func:`~edgeopt.bench.harness.benchmark`
            (``min_time_s`` is lowered to the cell's share when the share is smaller).
        pin: pin each cell's threads to cores (:func:`~edgeopt.bench.control.pinned`).
        cooldown_s: before each cell, wait at most this many seconds for the temperature and
            frequency to settle (:func:`~edgeopt.bench.control.cool_down`), out of its share.
        sessions, isolate, runner: fresh sessions per cell, session-major (module
            docstring); each session index in its own worker process (``isolate``, as
            ``bench`` does), or on ``runner`` (a board: :class:`~edgeopt.device.runner.DeviceRunner`).
        inputs: real inputs every cell is fed, cycled through its runs
            (:class:`~edgeopt.bench.real_inputs.RealInputs`); None: random inputs. Not with
            ``runner`` (which holds its own).
        clock: monotonic clock in seconds (injected by tests).

    Returns:
        one BenchResult per cell, in grid order; cells whose backend cannot run the
        model, and cells the budget had no room for ("skipped: ..."), carry ``error``
        and no runs.

    Raises:
        EdgeoptError: an empty grid, a non-positive budget, sessions < 1, a thread count over
            :func:`~edgeopt._util.resources.max_threads`, or a backend with
            ``timed = False`` (checked before any cell runs).
        BackendUnavailable: a backend name is not registered, or the model has ops no
            backend runs (:func:`~edgeopt.analysis.opsupport.check_runnable`); both
            checked before any cell.
        ShapeError: the largest batch needs more memory than is available
            (:func:`~edgeopt.analysis.memory.check_fits`), checked before any cell.
    """
    thread_list = [threads] if isinstance(threads, int) else list(threads)
    _check_grid(model, backends, batches, thread_list, budget_s, sessions, runner)
    usable = {name: _usable(name) for name in backends}
    cells = [(b, t, n) for b in backends for t in thread_list for n in batches]
    # Session-major, so a cell's sessions are spread over the sweep's time as well as over processes.
    steps = [(s, i) for s in range(sessions) for i in range(len(cells))]
    settings = {"warmup": warmup, "min_runs": max(1, math.ceil(min_runs / sessions)), "pin": pin,
                "min_time_s": min_time_s / sessions, "cooldown_s": cooldown_s}
    deadline = Deadline(budget_s, clock=clock, margin=1.5)
    parts: list[list[BenchResult]] = [[] for _ in cells]
    skipped: dict[int, BenchResult] = {}
    runner = _runner(runner, model, sessions, [b for b in backends if usable[b]], inputs, isolate)
    with runner, progress_bar("bench", len(steps), enabled=progress) as bar:
        for k, (s, i) in enumerate(steps):
            backend, nthreads, batch = cells[i]
            bar.describe(f"{backend} threads={nthreads} batch={batch}"
                         + (f" session {s + 1}/{sessions}" if sessions > 1 else ""))
            if not (any(p.error for p in parts[i]) or i in skipped):  # else the later sessions would fail alike
                later = [cells[j] for _, j in steps[k:] if usable[cells[j][0]]]
                step = _step(runner, deadline, model, backends, usable[backend], cells[i], later, s, settings)
                if step.error and step.error.startswith("skipped: "):
                    skipped[i] = step
                else:
                    parts[i].append(step)
            bar.advance()
    return [merge_sessions(parts[i], sessions) if parts[i] else skipped[i] for i in range(len(cells))]


def _runner(runner: "InProcess | None", model: "Model", sessions: int, usable: list[str],
            inputs: "RealInputs | None", isolate: bool) -> "InProcess":
    """The given runner, else worker processes (one per session index) when ``isolate`` and
    several sessions, else this process; real ``inputs`` go to the runner it makes."""
    if runner is not None:
        if inputs is not None:
            raise EdgeoptError("sweep() takes inputs or a runner, not both: give the runner the inputs")
        return runner
    return SessionWorkers(model, sessions, usable, inputs) if isolate and sessions > 1 else InProcess(model, inputs)


def _step(runner: InProcess, deadline: Deadline, model: "Model", backends: Sequence[str], usable: bool,
          cell: tuple[str, int, int], later: list[tuple[str, int, int]], session: int,
          settings: dict) -> BenchResult:
    """One session of ``cell`` (backend, threads, batch) within its share of the budget,
    or the record of a cell the budget has no room for ("skipped: ...")."""
    backend, nthreads, batch = cell
    floor = _floor_estimate(deadline, backend, batch, backends)
    if usable and not deadline.allows(floor):
        return _skipped(model, backend, batch, nthreads, deadline.why_not("cell", need_s=floor))
    share = _share(deadline, floor, later, backends)
    cool = min(settings["cooldown_s"], share / 2) if usable else 0.0
    result = runner.run(session, backend, batch=batch, threads=nthreads, max_time_s=share - cool,
                        **{**settings, "min_time_s": min(settings["min_time_s"], share - cool), "cooldown_s": cool})
    _learn(deadline, result, settings["min_runs"])
    return result


def _share(deadline: Deadline, floor: float, later: list[tuple[str, int, int]], backends: Sequence[str]) -> float:
    """The cap of the step about to run: its floor plus an even share of what the steps
    still to run (``later``, this one first, usable backends only) leave above their floors."""
    floors = [_floor_estimate(deadline, b, n, backends) for b, _, n in later]
    spare = max(deadline.remaining() - sum(floors), 0.0) / max(len(later), 1)
    return min(floor + spare, deadline.remaining())


def _check_grid(model: "Model", backends: Sequence[str], batches: Sequence[int], thread_list: list[int],
                budget_s: float, sessions: int, runner: InProcess | None) -> None:
    """Refuse, before any cell runs, what :func:`sweep` lists under Raises."""
    from ..analysis.memory import check_fits
    from ..analysis.opsupport import check_runnable

    if not backends or not batches or not thread_list:
        raise EdgeoptError("the sweep grid is empty: pass at least one backend, batch and thread count")
    if not budget_s > 0:
        raise EdgeoptError(f"budget_s={budget_s!r} is invalid: pass a positive number of seconds")
    if sessions < 1:
        raise EdgeoptError(f"sessions={sessions!r} is invalid: pass 1 or more")
    where = runner or InProcess  # a board's CPUs for a --device run, else this machine's
    check_threads(thread_list, cpus=where.cpus, where=where.where)
    check_runnable(model)
    check_fits(model, max(batches), available=where.memory, where=where.memory_where)


def _floor_estimate(deadline: Deadline, backend: str, batch: int, backends: Sequence[str]) -> float:
    """Seconds a cell needs whatever its cap: the backend's prepare plus, per image, the
    first inference and the floor runs. A backend not yet measured borrows the slowest
    measured one (a first estimate; 0 before any cell ran, so the first cell runs)."""
    def est(part: str, name: str) -> float:
        own = deadline.estimate(f"{name} {part}", prior_s=-1.0)
        if own >= 0:
            return own
        return max((deadline.estimate(f"{b} {part}") for b in backends), default=0.0)
    return est("prepare", backend) + est("image", backend) * batch


def _learn(deadline: Deadline, result: BenchResult, min_runs: int) -> None:
    """Record a measured cell's floor: its prepare, and per image its first inference and
    min(3, min_runs) runs at the slowest latency seen."""
    if result.prepare_ms is None:
        return
    first = result.first_ms or 0.0
    slowest = max(result.latencies_ms, default=first)
    deadline.record(f"{result.backend} prepare", result.prepare_ms / 1e3)
    deadline.record(f"{result.backend} image", (first + min(3, min_runs) * slowest) / 1e3 / result.batch)


def _skipped(model: "Model", backend: str, batch: int, threads: int, why: str) -> BenchResult:
    """The record of a cell the budget had no room for (no runs, ``error`` says why)."""
    return BenchResult(backend=backend, backend_version="", model=model.name, model_sha256=model.sha256,
                       batch=batch, threads=threads, machine=machine_info(), error=why)


def _usable(name: str) -> bool:
    """Whether ``name`` is installed here; raises for unknown or untimed backends."""
    try:
        return timed_backend(name).available() is None
    except ImportError:
        return False  # benchmark() records the reason as the cell's error


def write_json(results: Sequence[BenchResult], path: str | os.PathLike, *, extra: dict | None = None) -> Path:
    """Write ``{"schema": "edgeopt.bench/1", "results": [BenchResult.to_dict(), ...]}``,
    plus the JSON-ready entries of ``extra`` (e.g. "throughput": the cells of
    ``bench --streams``), which :func:`read_json` leaves aside.

    Returns:
        the path written (parent folders created; written atomically).
    """
    doc = {"schema": JSON_SCHEMA, "results": [r.to_dict() for r in results], **(extra or {})}
    return _write(path, json.dumps(doc, indent=2).encode())


_PASS_RESULTS = "pass the bench.json or suite.json that `edgeopt bench`/`edgeopt suite` wrote, or its --out folder"


def read_json(path: str | os.PathLike) -> list[BenchResult]:
    """Read results written by :func:`write_json`.

    Raises:
        EdgeoptError: the file is missing or not an edgeopt bench JSON file.
    """
    text = read_user_text(path, what="bench results")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise EdgeoptError(f"cannot read bench results {path}: {e}: {_PASS_RESULTS}") from e
    if not isinstance(doc, dict) or doc.get("schema") != JSON_SCHEMA:
        raise EdgeoptError(f"{path} is not an {JSON_SCHEMA} file: {_PASS_RESULTS}")
    return [BenchResult.from_dict(d) for d in doc["results"]]


def csv_row(result: BenchResult) -> dict[str, str | int | float | None]:
    """The :data:`CSV_COLUMNS` of one result (latencies in ms, throughput in images/s at the
    p50, cv a fraction, noisy the reason of :func:`edgeopt.bench.noise.noisy` or empty, inputs
    "random" or "KIND:N:SOURCE", resident memory in bytes, the conditions' shares in %)."""
    s = result.stats
    return {
        "backend": result.backend, "backend_version": result.backend_version,
        "model": result.model, "model_sha256": result.model_sha256,
        "batch": result.batch, "threads": result.threads,
        "prepare_ms": result.prepare_ms, "first_ms": result.first_ms,
        "warmup_runs": result.warmup_runs, "runs": len(result.latencies_ms),
        "min_ms": s and s.min, "mean_ms": s and s.mean, "std_ms": s and s.std,
        "p50_ms": s and s.p50, "p50_low_ms": s and s.p50_low, "p50_high_ms": s and s.p50_high,
        "cv": s and s.cv, "rcv": s and s.rcv, "p90_ms": s and s.p90, "p99_ms": s and s.p99,
        "max_ms": s and s.max, "ms_per_image": result.ms_per_image,
        "throughput_ips": result.throughput, "noisy": noisy(result),
        "stop_reason": result.stop_reason, "inputs": inputs_label(result.inputs),
        "baseline_rss_bytes": result.baseline_rss_bytes, "peak_rss_bytes": result.peak_rss_bytes,
        **_conditions_columns(result.conditions),
        "cpu_model": result.machine.get("cpu_model", ""),
        "flags": " ".join(result.machine.get("flags", [])),
        "error": result.error,
    }


def inputs_label(inputs: dict) -> str:
    """A result's inputs in one cell: "random", or "images:200:photos/" (kind, samples, source)."""
    if not inputs:
        return "random"
    return f"{inputs.get('kind')}:{inputs.get('samples')}:{inputs.get('source')}"


def _conditions_columns(c: dict) -> dict[str, object]:
    """The conditions a CSV row carries: interference (%), load at the end, hottest zone
    (C) at the end, pinning, throttling (:mod:`edgeopt.bench.conditions`); empty without."""
    return {"other_cpu_pct": c.get("other_cpu_pct"), "steal_pct": c.get("steal_pct"), "load1": c.get("load1_end"),
            "temp_c": c.get("temp_c_end"), "pinned": c.get("pinned"), "throttled": c.get("throttled")}


def write_csv(results: Sequence[BenchResult], path: str | os.PathLike) -> Path:
    """Write one :func:`csv_row` per result (None as an empty cell; floats at full precision).

    Returns:
        the path written (parent folders created; written atomically).
    """
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in results:
        writer.writerow({k: ("" if v is None else v) for k, v in csv_row(r).items()})
    return _write(path, buf.getvalue().encode())


def _write(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    atomic_write_bytes(path, data)
    return path
