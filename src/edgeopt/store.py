"""The results history: every suite run kept in one SQLite file, to compare boards and days.

A run is one invocation (``edgeopt suite seed-rpi`` on some machine at some time); its
cells are :class:`~edgeopt.bench.harness.BenchResult` records, stored whole (latencies
included) as JSON beside the columns a query wants (model, backend, batch, threads,
ms per image). The file is ``$EDGEOPT_HISTORY`` or ``~/.local/share/edgeopt/history.db``;
copying it from a Raspberry Pi to a laptop is how two boards are compared
(``edgeopt compare history:3 history:7``, or the two runs' JSON files).

SQLite is the store because it is one file, needs no server, and is in the standard
library; the schema is versioned with ``PRAGMA user_version``.
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

from .bench.harness import BenchResult
from .bench.sweep import read_json
from .errors import EdgeoptError

SCHEMA_VERSION = 1
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
    """

    id: int
    kind: str
    name: str
    started: str
    host: str
    cpu_model: str
    cells: int
    meta: dict[str, Any]


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if not create and not path.exists():
        raise EdgeoptError(f"no results history at {path}: run `edgeopt suite NAME` first, or pass --history FILE")
    if create:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(str(path))
        con.execute("PRAGMA foreign_keys = ON")
        version = con.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            con.close()
            raise EdgeoptError(f"{path} has history schema {version}, this edgeopt reads {SCHEMA_VERSION}: "
                               f"upgrade edgeopt or pass another --history file")
        con.executescript(_SCHEMA)
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except sqlite3.DatabaseError as e:
        raise EdgeoptError(f"{path} is not an edgeopt results history ({e}): pass another --history file") from e
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


def list_runs(path: str | os.PathLike | None = None) -> list[RunInfo]:
    """Every stored run, oldest first.

    Raises:
        EdgeoptError: no history file, or not an edgeopt history.
    """
    path = Path(path) if path is not None else default_path()
    with closing(_connect(path, create=False)) as con:
        rows = con.execute(
            "SELECT r.id, r.kind, r.name, r.started, r.host, r.cpu_model, r.meta, COUNT(c.run_id)"
            " FROM runs r LEFT JOIN cells c ON c.run_id = r.id GROUP BY r.id ORDER BY r.id"
        ).fetchall()
    return [RunInfo(id=i, kind=k, name=n, started=s, host=h, cpu_model=c, cells=cells, meta=json.loads(m))
            for i, k, n, s, h, c, m, cells in rows]


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
    default :func:`default_path`) or a JSON file written by ``edgeopt bench`` / ``edgeopt suite``.

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
    return ref, read_json(ref)
