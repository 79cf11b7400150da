"""The results history: every suite and bench run kept in one SQLite file, to compare boards and days.

A run is one invocation (``edgeopt suite seed-rpi`` or ``edgeopt bench MODEL`` on some
machine at some time); its
cells are :class:`~edgeopt.bench.harness.BenchResult` records, stored whole (latencies
included) as JSON beside the columns a query wants (model, backend, batch, threads,
ms per image). The file is ``$EDGEOPT_HISTORY`` or ``~/.local/share/edgeopt/history.db``;
copying it from a Raspberry Pi to a laptop is how two boards are compared
(``edgeopt compare history:3 history:7``, or the two runs' JSON files).

SQLite is the store because it is one file, needs no server, and is in the standard
library. A history file is marked as edgeopt's with ``PRAGMA application_id``
(:data:`APPLICATION_ID`) and versioned with ``PRAGMA user_version``; any other file given
as the history (another program's SQLite database, an empty file, a model) is refused
without being opened for writing. A file written before the marker existed is accepted
when its tables are exactly edgeopt's, and marked on its next write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ._util.sqlite_file import sqlite_file_problem
from .bench.compare import results_file
from .bench.harness import BenchResult
from .bench.sweep import read_json
from .errors import EdgeoptError

SCHEMA_VERSION = 1
# "EdOp": the SQLite header field that tells an edgeopt history from any other database.
APPLICATION_ID = 0x45644F70
# The columns of each table, as a history file written by any edgeopt has them.
_COLUMNS = {
    "runs": ("id", "kind", "name", "started", "host", "cpu_model", "meta"),
    "cells": ("run_id", "model", "backend", "batch", "threads", "runs", "ms_per_image", "error", "result"),
}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    started TEXT NOT NULL,
    host TEXT NOT NULL,
    cpu_model TEXT NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cells (
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    model TEXT NOT NULL,
    backend TEXT NOT NULL,
    batch INTEGER NOT NULL,
    threads INTEGER NOT NULL,
    runs INTEGER NOT NULL,
    ms_per_image REAL,
    error TEXT,
    result TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS cells_by_run ON cells(run_id);
"""


def default_path() -> Path:
    """``$EDGEOPT_HISTORY`` if set, else ``~/.local/share/edgeopt/history.db``."""
    env = os.environ.get("EDGEOPT_HISTORY")
    return Path(env) if env else Path.home() / ".local" / "share" / "edgeopt" / "history.db"


@dataclass(frozen=True)
class RunInfo:
    """One stored run.

    Attributes:
        id: the run's number in the file (``history:ID``).
        kind: what produced it ("suite", "bench").
        name: the suite name (or the model for a bench run).
        started: local start time, ISO 8601.
        host: machine name; cpu_model: /proc/cpuinfo model name.
        cells: stored cells; meta: what the producer recorded (budget, settings, notes).
        measured: how many of the cells ran and have timed runs (the rest: errors,
            skipped, out of budget).
    """

    id: int
    kind: str
    name: str
    started: str
    host: str
    cpu_model: str
    cells: int
    meta: dict[str, Any]
    measured: int = 0


_ANOTHER = "pass another --history file, or a path that does not exist yet to start a new history"


def _refuse(path: Path, what: str) -> EdgeoptError:
    return EdgeoptError(f"{path} is not an edgeopt results history ({what}): {_ANOTHER}")


def _inspect(path: Path) -> str:
    """What ``path`` is: "absent", "edgeopt" (marked) or "legacy" (edgeopt's tables, no
    marker yet); read only, through a read-only connection.

    Raises:
        EdgeoptError: anything else (not a regular file, empty, not SQLite, another
            program's database, a newer schema).
    """
    problem = sqlite_file_problem(path)
    if problem == "absent":
        return "absent"
    if problem is not None:
        raise _refuse(path, problem)
    try:
        with closing(_read_only(path)) as con:
            app_id = con.execute("PRAGMA application_id").fetchone()[0]
            version = con.execute("PRAGMA user_version").fetchone()[0]
            names = [n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                               "AND name NOT LIKE 'sqlite_%'")]
            tables = {n: tuple(c for (c,) in con.execute("SELECT name FROM pragma_table_info(?)", (n,)))
                      for n in names}
    except sqlite3.DatabaseError as e:
        raise _refuse(path, f"unreadable as SQLite: {e}") from None
    if app_id == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise EdgeoptError(f"{path} has history schema {version}, this edgeopt reads {SCHEMA_VERSION}: "
                               f"upgrade edgeopt or pass another --history file")
        return "edgeopt"
    if app_id == 0 and version in (0, SCHEMA_VERSION) and tables == _COLUMNS:
        return "legacy"
    named = ", ".join(sorted(tables)) or "none"
    raise _refuse(path, f"another program's SQLite database, with tables {named}")


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write to ``path`` (SQLite's ``mode=ro``)."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def check_history(path: str | os.PathLike | None = None) -> None:
    """Refuse a history path that is neither absent nor an edgeopt history, without
    touching it (commands that record a run check before they run).

    Raises:
        EdgeoptError: see :func:`_inspect`.
    """
    _inspect(Path(path) if path is not None else default_path())


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    """A connection to the history at ``path``: read-only unless ``create``, which also
    creates a missing file (and its folder) and marks an unmarked edgeopt file.

    Raises:
        EdgeoptError: no file (without ``create``), or not an edgeopt history.
    """
    kind = _inspect(path)
    if kind == "absent" and not create:
        raise EdgeoptError(f"no results history at {path}: run `edgeopt bench MODEL` or `edgeopt suite NAME` first, or pass --history FILE")
    try:
        if not create:
            return _read_only(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        con = sqlite3.connect(str(path))
        con.execute("PRAGMA foreign_keys = ON")
        if kind != "edgeopt":
            with con:
                con.executescript(_SCHEMA)
                con.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except (sqlite3.DatabaseError, OSError) as e:
        raise EdgeoptError(f"cannot open the results history {path} ({e}): {_ANOTHER}") from e
    return con


def record_run(results: Sequence[BenchResult], *, kind: str, name: str, meta: dict[str, Any] | None = None,
               path: str | os.PathLike | None = None) -> int:
    """Store one run and its cells in one transaction.

    Args:
        results: the cells (errors and skipped cells too: they say what was not measured).
        kind, name: see :class:`RunInfo`.
        meta: JSON-serialisable settings of the run (budget, suite spec, notes).
        path: the history file (default :func:`default_path`; created if missing).

    Returns:
        the new run's id.

    Raises:
        EdgeoptError: the file is not an edgeopt history.
    """
    path = Path(path) if path is not None else default_path()
    machine = next((r.machine for r in results if r.machine), {})
    with closing(_connect(path, create=True)) as con, con:
        cur = con.execute(
            "INSERT INTO runs (kind, name, started, host, cpu_model, meta) VALUES (?, ?, ?, ?, ?, ?)",
            (kind, name, time.strftime("%Y-%m-%dT%H:%M:%S"), os.uname().nodename,
             str(machine.get("cpu_model", "")), json.dumps(meta or {}, default=str)),
        )
        run_id = int(cur.lastrowid)
        con.executemany(
            "INSERT INTO cells (run_id, model, backend, batch, threads, runs, ms_per_image, error, result)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(run_id, r.model, r.backend, r.batch, r.threads, len(r.latencies_ms), r.ms_per_image, r.error,
              json.dumps(r.to_dict())) for r in results],
        )
    return run_id


def list_runs(path: str | os.PathLike | None = None, *, missing_ok: bool = False) -> list[RunInfo]:
    """Every stored run, oldest first.

    Args:
        missing_ok: no history file is an empty history (``edgeopt history`` before the
            first run), not an error.

    Raises:
        EdgeoptError: no history file (without ``missing_ok``), or not an edgeopt history.
    """
    path = Path(path) if path is not None else default_path()
    if missing_ok and not os.path.lexists(path):
        return []
    with closing(_connect(path, create=False)) as con:
        # A cell counts as measured as BenchResult.ok says: no error and timed runs.
        rows = con.execute(
            "SELECT r.id, r.kind, r.name, r.started, r.host, r.cpu_model, r.meta, COUNT(c.run_id),"
            " COALESCE(SUM(c.error IS NULL AND c.runs > 0), 0)"
            " FROM runs r LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id"
        ).fetchall()
    return [RunInfo(id=i, kind=k, name=n, started=s, host=h, cpu_model=c, cells=cells, meta=json.loads(m),
                    measured=measured)
            for i, k, n, s, h, c, m, cells, measured in rows]


def load_run(run_id: int, path: str | os.PathLike | None = None) -> tuple[RunInfo, list[BenchResult]]:
    """One run and its cells (as stored, in insertion order).

    Raises:
        EdgeoptError: no such run (the message lists the ids there are), or no history.
    """
    path = Path(path) if path is not None else default_path()
    runs = {r.id: r for r in list_runs(path)}
    if run_id not in runs:
        have = ", ".join(map(str, runs)) or "none"
        raise EdgeoptError(f"no run {run_id} in {path} (runs: {have}): see `edgeopt history`")
    with closing(_connect(path, create=False)) as con:
        rows = con.execute("SELECT result FROM cells WHERE run_id = ? ORDER BY rowid", (run_id,)).fetchall()
    return runs[run_id], [BenchResult.from_dict(json.loads(r)) for (r,) in rows]


def load_results(ref: str, *, history: str | os.PathLike | None = None) -> tuple[str, list[BenchResult]]:
    """The cells of ``ref``: ``history:ID`` (a run in the results history at ``history``,
    default :func:`default_path`), a JSON file written by ``edgeopt bench`` / ``edgeopt suite``,
    or the ``--out`` folder that holds it (:func:`edgeopt.bench.compare.results_file`).

    Returns:
        (a one-line description of the run, its cells).

    Raises:
        EdgeoptError: no such run or file, or not an edgeopt results file.
    """
    if ref.startswith("history:"):
        try:
            run_id = int(ref.removeprefix("history:"))
        except ValueError:
            raise EdgeoptError(f"{ref!r} is not a history reference: write history:ID, e.g. history:3 "
                               f"(see `edgeopt history`)") from None
        info, cells = load_run(run_id, history)
        return f"run {info.id}: {info.kind} {info.name}, {info.started} on {info.host} ({info.cpu_model})", cells
    return ref, read_json(results_file(ref))
