"""Hostile storages (issue 15): broken ``optimize --search`` storages, foreign files given
as the results history, cached artifacts changed after edgeopt wrote them.

Each case is one CLI call checked by the shared contract (:mod:`hostile.harness`): exit 2,
one ``edgeopt: error:`` line, inputs untouched, nothing left behind. The search cases use
the harness's tiny model and ``--budget 5s``, so a storage accepted by mistake ends soon.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path

from hostile.harness import Case, Sandbox, check, params

BROKEN = "broken storage"
FOREIGN = "foreign database"
TAMPERED = "tampered artifact"


def _search(sb: Sandbox, *extra: str) -> list[str]:
    """``optimize --search`` on the tiny model and 4 images, short budget, plus ``extra``."""
    return ["optimize", sb.model(), "--images", sb.images(4), "--search", "--backends", "ort",
            "--budget", "5s", "--prune-targets", "", "--seconds", "0.05", "--out", sb.out, *extra]


def _garbage(path: Path, n: int = 4096) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(n))
    return path


def _study_db_in_out(sb: Sandbox) -> Path:
    """A garbage ``study.db`` where the search keeps its study (an input: never replaced)."""
    return _garbage(sb.out / "study.db")


def _sqlite_file(path: Path, *statements: str) -> Path:
    """Someone else's SQLite file at ``path``, made by ``statements``."""
    with sqlite3.connect(path) as con:
        for sql in statements:
            con.execute(sql)
    con.close()
    return path


def _foreign_sqlite(path: Path) -> Path:
    """One table of their own, with a row."""
    return _sqlite_file(path, "CREATE TABLE notes (id INTEGER PRIMARY KEY, text TEXT)",
                        "INSERT INTO notes (text) VALUES ('mine')")


def _foreign_runs_table(path: Path) -> Path:
    """A table named like edgeopt's, of another shape."""
    return _sqlite_file(path, "CREATE TABLE runs (day TEXT, km REAL)", "INSERT INTO runs VALUES ('monday', 5.2)")


def _history_files(sb: Sandbox) -> dict[str, Path]:
    """The files that are not an edgeopt history, by case name."""
    foreign = _foreign_sqlite(sb.inputs / "notes.db")
    folder = sb.inputs / "folder.db"
    folder.mkdir()
    empty = sb.inputs / "empty.db"
    empty.write_bytes(b"")
    text = sb.inputs / "notes.txt"
    text.write_text("my notes, not a database\n" * 20)
    return {"foreign-sqlite": foreign, "empty-file": empty, "text-file": text,
            "garbage": _garbage(sb.inputs / "garbage.db"), "onnx-model": sb.model(),
            "foreign-runs-table": _foreign_runs_table(sb.inputs / "running.db"), "folder": folder}


def _history_case(kind: str, command: str) -> Case:
    def build(sb: Sandbox) -> list[str]:
        path = str(_history_files(sb)[kind])
        if command == "history":
            return ["history", "--history", path]
        if command == "compare":
            a = sb.inputs / "a.json"
            a.write_text("{}")
            return ["compare", "history:1", str(a), "--history", path]
        # suite: the history is checked before the suite runs (nothing measured, nothing written)
        return ["suite", "seed-rpi", "--budget", "5s", "--out", str(sb.out), "--history", path]

    return Case(cls=FOREIGN, name=f"{command}-{kind}", build=build)


@contextlib.contextmanager
def _cache_of(sb: Sandbox):
    """EDGEOPT_CACHE set to the sandbox's cache while a case builds its cached artifacts."""
    old = os.environ.get("EDGEOPT_CACHE")
    os.environ["EDGEOPT_CACHE"] = str(sb.cache)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("EDGEOPT_CACHE")
        else:
            os.environ["EDGEOPT_CACHE"] = old


def _flip_a_byte(path: Path) -> None:
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def _tampered_tvm(sb: Sandbox) -> list[str]:
    """The TVM library of the model, compiled into the cache as bench would, then changed."""
    import edgeopt
    from edgeopt.backends import registry

    model = sb.model()
    with _cache_of(sb):
        (build,) = registry.get("tvm").prepare(edgeopt.load_model(str(model)), threads=1).builds
    _flip_a_byte(Path(build.path))
    return ["bench", model, "--backend", "tvm", "--threads", "1", "--budget", "30", "--out", sb.out]


def _tampered_litert(sb: Sandbox) -> list[str]:
    """A LiteRT conversion of the model in the cache, with its manifest, then changed (the
    bytes need not be a real .tflite: they must never reach the interpreter)."""
    import edgeopt
    from edgeopt._util.cache import write_artifact
    from edgeopt.backends import litert

    model = sb.model()
    with _cache_of(sb):
        path = litert.cache_path(edgeopt.load_model(str(model)), 1)
    write_artifact(path, b"TFL3" + bytes(64))
    _flip_a_byte(path)
    return ["bench", model, "--backend", "litert", "--threads", "1", "--budget", "30", "--out", sb.out]


CASES = [
    Case(cls=BROKEN, name="storage-not-a-url", build=lambda sb: _search(sb, "--storage", "notaurl")),
    Case(cls=BROKEN, name="storage-sqlite-missing-folder",
         build=lambda sb: _search(sb, "--storage", f"sqlite:///{sb.root}/no/such/folder/study.db")),
    Case(cls=BROKEN, name="storage-postgresql-no-driver",
         build=lambda sb: _search(sb, "--storage", "postgresql://user:pw@localhost:1/db")),
    Case(cls=BROKEN, name="storage-mysql-no-driver",
         build=lambda sb: _search(sb, "--storage", "mysql://user:pw@localhost:1/db")),
    Case(cls=BROKEN, name="storage-unknown-dialect",
         build=lambda sb: _search(sb, "--storage", "nosuchdb://host/db")),
    Case(cls=BROKEN, name="storage-garbage-sqlite-url",
         build=lambda sb: _search(sb, "--storage", f"sqlite:///{_garbage(sb.inputs / 'study.db')}")),
    Case(cls=BROKEN, name="study-db-garbage-in-out",
         build=lambda sb: (_study_db_in_out(sb), _search(sb))[1]),
    Case(cls=BROKEN, name="study-db-garbage-in-out-resume",
         build=lambda sb: (_study_db_in_out(sb), _search(sb, "--resume"))[1]),
    Case(cls=BROKEN, name="storage-sqlite-in-memory", build=lambda sb: _search(sb, "--storage", "sqlite://")),
    Case(cls=BROKEN, name="storage-sqlite-url-names-a-folder",
         build=lambda sb: _search(sb, "--storage", f"sqlite:///{sb.inputs}")),
    Case(cls=BROKEN, name="study-db-empty-in-out",
         build=lambda sb: (sb.out.mkdir(), (sb.out / "study.db").write_bytes(b""), _search(sb))[-1]),
    Case(cls=BROKEN, name="resume-without-a-study", build=lambda sb: _search(sb, "--resume")),
    Case(cls=BROKEN, name="storage-foreign-sqlite",
         build=lambda sb: _search(sb, "--storage", f"sqlite:///{_foreign_sqlite(sb.inputs / 'notes.db')}")),
    Case(cls=TAMPERED, name="tvm-library-changed", build=_tampered_tvm, needs=("tvm",)),
    Case(cls=TAMPERED, name="litert-conversion-changed", build=_tampered_litert,
         needs=("ai_edge_litert", "litert_torch")),
    *[_history_case(kind, command) for command in ("history", "compare", "suite")
      for kind in ("foreign-sqlite", "foreign-runs-table", "empty-file", "text-file", "garbage", "onnx-model",
                   "folder")],
]


@params(CASES)
def test_hostile(case, tmp_path):
    check(case, tmp_path)
