"""The results history's file: edgeopt's marker, files from before the marker, and files
that are not a history at all (never modified)."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from edgeopt import store
from edgeopt.bench.harness import BenchResult
from edgeopt.errors import EdgeoptError


def _cell() -> BenchResult:
    return BenchResult(backend="ort", backend_version="1", model="m", model_sha256="ab", batch=1, threads=1,
                       latencies_ms=[1.0, 2.0], machine={"cpu_model": "Test CPU"})


def _pragmas(path) -> tuple[int, int]:
    with sqlite3.connect(path) as con:
        return (con.execute("PRAGMA application_id").fetchone()[0], con.execute("PRAGMA user_version").fetchone()[0])


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_new_history_carries_the_marker_and_the_schema_version(tmp_path) -> None:
    db = tmp_path / "sub" / "h.db"
    store.check_history(db)  # absent is fine: a new history
    assert store.record_run([_cell()], kind="suite", name="s", path=db) == 1
    assert _pragmas(db) == (store.APPLICATION_ID, store.SCHEMA_VERSION)
    store.check_history(db)
    assert [r.name for r in store.list_runs(db)] == ["s"]


def test_a_history_from_before_the_marker_is_read_untouched_and_marked_on_write(tmp_path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as con:  # what edgeopt wrote before application_id
        con.executescript(store._SCHEMA)
        con.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION}")
        con.execute("INSERT INTO runs (kind, name, started, host, cpu_model, meta) "
                    "VALUES ('suite', 'old', '2024-01-01T00:00:00', 'pi', 'Cortex-A72', '{}')")
    con.close()
    before = _digest(db)
    assert [r.name for r in store.list_runs(db)] == ["old"]
    assert _digest(db) == before, "reading must not write"
    assert store.record_run([_cell()], kind="suite", name="new", path=db) == 2
    assert _pragmas(db) == (store.APPLICATION_ID, store.SCHEMA_VERSION)
    assert [r.name for r in store.list_runs(db)] == ["old", "new"]


def test_a_history_of_a_newer_schema_is_refused(tmp_path) -> None:
    db = tmp_path / "h.db"
    store.record_run([_cell()], kind="suite", name="s", path=db)
    with sqlite3.connect(db) as con:
        con.execute(f"PRAGMA user_version = {store.SCHEMA_VERSION + 1}")
    con.close()
    with pytest.raises(EdgeoptError, match="upgrade edgeopt"):
        store.list_runs(db)


@pytest.mark.parametrize("make", ["foreign", "same-tables-other-columns", "empty"])
def test_files_that_are_not_a_history_are_refused_and_not_modified(tmp_path, make) -> None:
    db = tmp_path / "x.db"
    if make == "empty":
        db.write_bytes(b"")
    else:
        with sqlite3.connect(db) as con:
            con.execute("CREATE TABLE runs (id INTEGER)" if make != "foreign" else "CREATE TABLE notes (t TEXT)")
            con.execute("CREATE TABLE cells (x INTEGER)")
        con.close()
    before = _digest(db)
    for call in (lambda: store.check_history(db), lambda: store.list_runs(db),
                 lambda: store.record_run([_cell()], kind="suite", name="s", path=db)):
        with pytest.raises(EdgeoptError, match="is not an edgeopt results history"):
            call()
    assert _digest(db) == before
