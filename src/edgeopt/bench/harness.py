"""Time one model on one backend at one batch size and thread count.

The method: the seed study's (repeated forward passes at a batch size, time per image
= latency / batch, here the p50 latency rather than the study's mean: a few slow runs on
a busy machine move the mean far from a typical run) with what the standard tools add:

1. prepare the session and time it (load/compile, ``prepare_ms``), as OpenVINO
   ``benchmark_app`` reports "Compile model took";
2. time the first inference on its own (``first_ms``, cold caches and lazy
   initialisation), as ``benchmark_app`` reports "First inference took";
3. run ``warmup`` more inferences, not recorded (onnxruntime ``perf_test`` warms up);
4. repeat timed inferences until at least ``min_runs`` runs AND ``min_time_s`` seconds
   (MLPerf LoadGen's min query count and min duration), stopping at the cell's
   ``max_time_s`` wall-time cap so a sweep always ends.

Each run is timed with ``time.perf_counter_ns`` around ``Session.run`` only; the
garbage collector is paused during timed and warm-up runs (as ``timeit`` does) so a
collection of unrelated objects does not land in one run.
"""

from __future__ import annotations

import gc
import math
import os
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Sequence

import numpy as np

from ..backends import registry
from ..errors import ArtifactTampered, EdgeoptError, ShapeError
from .._util.errorline import error_line
from .conditions import merge_records, recording
from .control import CellControl
from .environment import machine_info
from .result import BenchResult
from .rss import peak_bytes, start_cell

__all__ = ["BenchResult", "benchmark", "time_session", "merge_sessions", "timed_backend", "fixed_batch_error"]

if TYPE_CHECKING:
    from ..backends.base import Backend, Session
    from ..model import Model
    from .real_inputs import RealInputs

Feeds = dict[str, np.ndarray]

DEFAULT_WARMUP = 3
DEFAULT_MIN_RUNS = 10
DEFAULT_MIN_TIME_S = 1.0
DEFAULT_MAX_TIME_S = 30.0
FLOOR_RUNS = 3
"""Timed runs a cell always gets, past its time cap: min(FLOOR_RUNS, min_runs)."""
WARMUP_SHARE = 0.2
"""Warm-up stops early once it has used this share of the time left in the cell."""


def benchmark(
    model: "Model",
    backend: str,
    *,
    batch: int = 1,
    threads: int = 2,
    warmup: int = DEFAULT_WARMUP,
    min_runs: int = DEFAULT_MIN_RUNS,
    min_time_s: float = DEFAULT_MIN_TIME_S,
    max_time_s: float = DEFAULT_MAX_TIME_S,
    feeds: Feeds | None = None,
    inputs: "RealInputs | None" = None,
    pin: bool = False,
    cooldown_s: float = 0.0,
    sessions: int = 1,
) -> BenchResult:
    """Time ``model`` on ``backend`` (see the module docstring for the method).

    Args:
        model: the Model to time.
        backend: registry name, e.g. "ort".
        batch: images per inference (>= 1).
        threads: intra-op threads for the session (>= 1).
        warmup: untimed runs after the first inference (>= 0); they also stop once
            they have used :data:`WARMUP_SHARE` of the time left in the cell.
        min_runs: timed runs to reach (>= 1).
        min_time_s: seconds of timed runs to reach (>= 0).
        max_time_s: wall-time cap of the whole cell in seconds, from the start of
            prepare (>= min_time_s). Past it the cell stops after the current run, but
            it always gets min(3, min_runs) timed runs, so a slow cell overshoots by at
            most the prepare, first inference and those runs.
        feeds: {input name: array}, ``batch`` on each input's batch axis and an input
            without one at its own shape; default: random inputs of the model's
            InputSpecs at ``batch`` (``Model.example_feeds``).
        inputs: real inputs instead (:class:`~edgeopt.bench.real_inputs.RealInputs`), in
            batches of ``batch`` made before the session, run r fed batch r mod their
            count; recorded as ``result.inputs``. Not with ``feeds``.
        pin: pin the session's threads and the timing thread to ``threads`` CPUs
            (:func:`edgeopt.bench.control.pinned`); recorded as ``conditions["pinned"]``.
        cooldown_s: before the cell, wait at most this many seconds for the temperature
            and frequency to settle (:func:`edgeopt.bench.control.cool_down`; 0: no
            wait); the wait is ``conditions["cooldown_s"]``, outside ``max_time_s``.
        sessions: fresh sessions to time the cell in, one after the other, each with an
            even share of the runs, time and cap (>= 1); with two or more the p50's
            interval covers session-to-session noise (:mod:`edgeopt.bench.session_stats`).

    Returns:
        a BenchResult; when the backend is not installed or cannot load or run the
        model, or the model runs at another batch only (:attr:`Model.fixed_batch`: its
        graph fixes the batch, or no input has a batch axis), a BenchResult with
        ``error`` set and no runs (a sweep goes on).

    Raises:
        EdgeoptError: a setting is out of range, or the backend has ``timed = False``
            (an oracle such as "reference" is not a runtime to time).
        BackendUnavailable: ``backend`` is not a registered name.
        ShapeError: ``feeds`` do not name the model's inputs or do not have ``batch`` on
            each input's batch axis (an input's own shape where it has none).
        DataError: ``inputs`` do not fit the model.
        ArtifactTampered: the backend's cached library or conversion changed after
            edgeopt wrote it (see :func:`edgeopt._util.cache.verify_artifact`).
    """
    _check_settings(batch, threads, warmup, min_runs, min_time_s, max_time_s, sessions)
    result = BenchResult(
        backend=backend, backend_version="", model=model.name, model_sha256=model.sha256,
        batch=batch, threads=threads, machine=machine_info(),
    )
    if feeds is not None and inputs is not None:
        raise EdgeoptError("benchmark() takes feeds or inputs, not both: pass one")
    be = _usable_backend(model, backend, batch, feeds, result)
    if be is None:
        return result
    cycle = _feed_cycle(model, batch, feeds, inputs, result)
    control = CellControl(pin=pin, cooldown_s=cooldown_s)
    waited = control.settle()
    # pinned around prepare too: the runtime's threads, made there, inherit the mask
    with control.pinning(threads) as cpus:
        result.conditions = {**control.record(cpus, waited), "pid": os.getpid()}
        if sessions == 1:
            _prepare_and_time(be, model, cycle, result, max_time_s, warmup, min_runs, min_time_s)
            return result
        return _time_sessions(be, model, cycle, result, sessions, max_time_s, warmup, min_runs, min_time_s)


def _time_sessions(be: "Backend", model: "Model", feeds: Sequence[Feeds], result: BenchResult,
                   sessions: int, max_time_s: float, warmup: int, min_runs: int, min_time_s: float) -> BenchResult:
    """:func:`_prepare_and_time` in ``sessions`` fresh sessions, each with an even share of
    what is left of the cap and of the runs and time asked; their runs pooled by
    :func:`merge_sessions`. A session that fails makes the cell's error."""
    start = time.perf_counter()
    parts: list[BenchResult] = []
    for i in range(sessions):
        left = max_time_s - (time.perf_counter() - start)
        if parts and left <= 0:
            break
        cap = max(left, 0.0) / (sessions - i)
        part = replace(result, latencies_ms=[], conditions=dict(result.conditions))
        _prepare_and_time(be, model, feeds, part, cap, warmup, max(1, math.ceil(min_runs / sessions)),
                          min(min_time_s / sessions, cap))
        parts.append(part)
    return merge_sessions(parts, sessions)


def merge_sessions(parts: list[BenchResult], sessions: int) -> BenchResult:
    """One cell's result from its fresh sessions' results, in the order they ran: runs
    pooled session after session (``session_runs`` counts each: the p50's interval is
    over sessions, :mod:`edgeopt.bench.session_stats`); prepare, first inference and
    settings from the first, stop reason from the last, conditions merged
    (:func:`~edgeopt.bench.conditions.merge_records`) with ``session_pids``, resident
    memory from the session with the highest peak. A session with
    an error or no timed runs makes the cell's error; one session is returned as it is.

    Raises:
        ValueError: ``parts`` is empty.
    """
    if not parts:
        raise ValueError("merge_sessions needs at least one session's result")
    for i, part in enumerate(parts):
        if part.error or not part.latencies_ms:
            return replace(part, latencies_ms=[], session_runs=[],
                           error=part.error or f"{part.backend} session {i + 1} of {sessions} had no timed runs")
    if len(parts) == 1:
        return parts[0]
    top = max(parts, key=lambda p: p.peak_rss_bytes or 0)
    return replace(parts[0], warmup_runs=sum(p.warmup_runs for p in parts), stop_reason=parts[-1].stop_reason,
                   baseline_rss_bytes=top.baseline_rss_bytes, peak_rss_bytes=top.peak_rss_bytes,
                   rss_scope=top.rss_scope,
                   conditions={**merge_records([p.conditions for p in parts]),
                               "session_pids": [p.conditions.get("pid") for p in parts]},
                   session_runs=[len(p.latencies_ms) for p in parts],
                   latencies_ms=[x for p in parts for x in p.latencies_ms])


def _prepare_and_time(be: "Backend", model: "Model", feeds: Sequence[Feeds], result: BenchResult,
                      max_time_s: float, warmup: int, min_runs: int, min_time_s: float) -> None:
    """Prepare the session (timed as ``prepare_ms``), then :func:`_time_into`; a failure
    to prepare is the result's error. The resident memory is read before the prepare and
    its peak after the timed runs, before the session is closed (:mod:`edgeopt.bench.rss`)."""
    mark = start_cell()
    result.baseline_rss_bytes, result.rss_scope = mark.baseline_bytes, mark.scope
    start = time.perf_counter_ns()
    deadline = start + int(max_time_s * 1e9)
    try:
        session = be.prepare(model, threads=result.threads)
    except ArtifactTampered:  # the user's cache, not this cell, needs attention
        raise
    except Exception as e:  # any failure to load is a result of the cell, not a crash
        result.error = _failure(result.backend, "prepare", result.batch, e)
        return
    result.prepare_ms = (time.perf_counter_ns() - start) / 1e6
    try:
        result.settings = session.settings()
        _time_into(session, feeds, result, deadline, warmup, min_runs, min_time_s)
    finally:
        result.peak_rss_bytes = peak_bytes()
        session.close()


def _usable_backend(model: "Model", backend: str, batch: int, feeds: Feeds | None,
                    result: BenchResult):
    """The backend that times this cell, or None with ``result.error`` saying why the cell
    cannot run (a batch the graph does not take, a runtime that does not import or is not
    usable); sets ``result.backend_version``. Raises as :func:`benchmark` for bad feeds."""
    result.error = fixed_batch_error(model, batch)
    if result.error:
        return None
    try:
        be = timed_backend(backend)
    except ImportError as e:  # a backend module that imports its runtime eagerly
        result.error = f"backend {backend!r} cannot be imported: {error_line(e, limit=300, with_type=False)}"
        return None
    result.backend_version = be.version()
    if feeds is not None:
        _check_feeds(model, feeds, batch)
    why = be.available()
    if why is not None:
        result.error = f"backend {backend!r} is not usable: {why}"
        return None
    return be


def time_session(
    session: "Session",
    model: "Model",
    *,
    batch: int = 1,
    warmup: int = DEFAULT_WARMUP,
    min_runs: int = DEFAULT_MIN_RUNS,
    min_time_s: float = DEFAULT_MIN_TIME_S,
    max_time_s: float = DEFAULT_MAX_TIME_S,
    prepare_ms: float | None = None,
) -> BenchResult:
    """Time a session that is already prepared, at one batch size (the method of
    :func:`benchmark` from the first inference on).

    A suite prepares one session per (model, backend, threads) and times it at each
    batch size: preparing again per batch would spend the budget on compiling (TVM,
    OpenVINO) instead of running. The session is not closed.

    Args:
        session: from ``Backend.prepare(model, threads=...)``; its ``backend`` and
            ``threads`` attributes name the cell.
        model: the Model the session was prepared from (name, sha256, input specs).
        batch, warmup, min_runs, min_time_s, max_time_s: as in :func:`benchmark`;
            ``max_time_s`` counts from this call (the prepare is not in it).
        prepare_ms: the session's prepare time, recorded in the result (None: not known).

    Returns:
        a BenchResult; a failure to run is its ``error``, not an exception.

    Raises:
        EdgeoptError: a setting is out of range.
    """
    _check_settings(batch, session.threads, warmup, min_runs, min_time_s, max_time_s)
    be = registry.get(session.backend)
    result = BenchResult(
        backend=session.backend, backend_version=be.version(), model=model.name,
        model_sha256=model.sha256, batch=batch, threads=session.threads, machine=machine_info(),
        prepare_ms=prepare_ms,
    )
    result.error = fixed_batch_error(model, batch)
    if result.error:
        return result
    deadline = time.perf_counter_ns() + int(max_time_s * 1e9)
    _time_into(session, [model.example_feeds(batch)], result, deadline, warmup, min_runs, min_time_s)
    return result


def fixed_batch_error(model: "Model", batch: int) -> str | None:
    """Why ``model`` cannot be timed at ``batch`` (it runs at another batch only: its graph
    fixes the batch, or no input has a batch axis), else None."""
    status = model.batch_status
    if status.fixed is None or status.fixed == batch:
        return None
    return (f"{model.name} runs at batch {status.fixed} only ({status.reason}): time it at "
            f"batch {status.fixed}")


def _time_into(session: "Session", feeds: Sequence[Feeds], result: BenchResult, deadline: int,
               warmup: int, min_runs: int, min_time_s: float) -> None:
    """:func:`_run_cell`, a failure recorded as the result's error; derived fields updated."""
    try:
        _run_cell(session, feeds, result, deadline, warmup, min_runs, min_time_s)
    except Exception as e:
        result.error = _failure(session.backend, "run", result.batch, e)
        result.latencies_ms = []
    if result.conditions:
        result.conditions["runtime_pinning"] = _runtime_pinning(session)
    result._derive()


def _runtime_pinning(session: "Session") -> bool | None:
    """Whether the runtime pins its own threads, as it reports it (OpenVINO's
    ``ENABLE_CPU_PINNING``, on by default on Linux), else None: a runtime may pin even
    when edgeopt did not, and the record should say so."""
    props = getattr(session, "properties", None)
    try:
        value = props().get("ENABLE_CPU_PINNING") if callable(props) else None
    except Exception:  # a property the runtime version does not know: not reported
        return None
    return None if value is None else str(value).lower() in ("true", "yes", "1")


def timed_backend(name: str) -> "Backend":
    """The registered backend ``name``, checked to be one that may be timed.

    Raises:
        BackendUnavailable: ``name`` is not registered.
        EdgeoptError: the backend has ``timed = False`` (an oracle such as "reference").
        ImportError: the backend module itself cannot be imported.
    """
    be = registry.get(name)
    if not getattr(be, "timed", True):
        timed = [n for n in registry.names() if n != name]
        raise EdgeoptError(
            f"backend {name!r} is a correctness oracle, not a runtime to time: "
            f"benchmark one of {', '.join(timed)} instead"
        )
    return be


def _run_cell(session: "Session", feeds: Sequence[Feeds], result: BenchResult,
              deadline: int, warmup: int, min_runs: int, min_time_s: float) -> None:
    """First inference, warm-up, then timed runs, each run fed the next of ``feeds`` in
    turn (the first inference ``feeds[0]``); fills ``result`` in place."""
    clock = time.perf_counter_ns
    gc_was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        t0 = clock()
        session.run(feeds[0])
        t1 = clock()
        result.first_ms = (t1 - t0) / 1e6

        warmup_end = t1 + max(0, int((deadline - t1) * WARMUP_SHARE))
        while result.warmup_runs < warmup and clock() < warmup_end:
            session.run(feeds[(1 + result.warmup_runs) % len(feeds)])
            result.warmup_runs += 1

        latencies: list[float] = []
        with recording() as record:
            _timed_runs(session, feeds, result, latencies, deadline, min_runs, min_time_s)
        # what the caller set (pinned, cooldown_s) is known better than the recorder's default
        result.conditions = {**record, **result.conditions}
        result.latencies_ms = latencies
    finally:
        if gc_was_enabled:
            gc.enable()


def _timed_runs(session: "Session", feeds: Sequence[Feeds], result: BenchResult, latencies: list[float],
                deadline: int, min_runs: int, min_time_s: float) -> None:
    """Timed runs into ``latencies`` until the target or the deadline (the module docstring's step 4)."""
    clock = time.perf_counter_ns
    floor = min(FLOOR_RUNS, min_runs)
    min_time_ns = int(min_time_s * 1e9)
    begin = clock()
    while True:
        feed = feeds[len(latencies) % len(feeds)]  # picked before the clock starts
        t0 = clock()
        session.run(feed)
        t1 = clock()
        latencies.append((t1 - t0) / 1e6)
        if len(latencies) < floor:
            continue
        if len(latencies) >= min_runs and t1 - begin >= min_time_ns:
            result.stop_reason = "target"
            break
        if t1 >= deadline:
            result.stop_reason = "max_time"
            break


def _feed_cycle(model: "Model", batch: int, feeds: Feeds | None, inputs: "RealInputs | None",
                result: BenchResult) -> list[Feeds]:
    """The feeds run r takes (r mod their count): the real inputs' batches (recorded in
    ``result.inputs``), else ``feeds`` or the model's random example feeds."""
    if inputs is None:
        return [model.example_feeds(batch) if feeds is None else feeds]
    result.inputs = inputs.record(batch)
    return inputs.feeds(model, batch)


def _check_settings(batch: int, threads: int, warmup: int, min_runs: int,
                    min_time_s: float, max_time_s: float, sessions: int = 1) -> None:
    for name, value, low in (("batch", batch, 1), ("threads", threads, 1),
                             ("warmup", warmup, 0), ("min_runs", min_runs, 1), ("sessions", sessions, 1)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
            raise EdgeoptError(f"{name}={value!r} is invalid: pass an integer >= {low}")
    for name, value in (("min_time_s", min_time_s), ("max_time_s", max_time_s)):
        if not math.isfinite(value) or value < 0:
            raise EdgeoptError(f"{name}={value!r} is invalid: pass a finite number of seconds >= 0")
    if min_time_s > max_time_s:
        raise EdgeoptError(
            f"min_time_s={min_time_s} exceeds the cap max_time_s={max_time_s}: "
            f"raise max_time_s or lower min_time_s"
        )


def _check_feeds(model: "Model", feeds: Feeds, batch: int) -> None:
    names = [s.name for s in model.inputs]
    if set(feeds) != set(names):
        raise ShapeError(f"feeds name {sorted(feeds)}, the model's inputs are {names}: "
                         f"pass one array per input")
    for spec in model.inputs:
        shape = tuple(np.shape(feeds[spec.name]))
        want = spec.batched(batch)
        if len(shape) != len(want) or (spec.batch_axis is None and shape != want) or (
                spec.batch_axis is not None and shape[spec.batch_axis] != batch):
            where = ("the input has no batch axis, pass its own shape" if spec.batch_axis is None
                     else f"its batch axis {spec.batch_axis} must be batch={batch}")
            raise ShapeError(f"feed {spec.name!r} has shape {shape}: {where} "
                             f"({'x'.join(map(str, want))})")


def _failure(backend: str, stage: str, batch: int, e: Exception) -> str:
    if isinstance(e, EdgeoptError):
        return str(e)
    return f"{backend} failed to {stage} the model at batch {batch}: {error_line(e, limit=300)}"
