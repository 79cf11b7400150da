"""Where a search keeps its study: checked before any work, opened with a heartbeat.

A storage is a SQLAlchemy URL (Optuna's RDBStorage): a SQLite file (the default,
``study.db`` in the output folder), or a server (PostgreSQL, MySQL) that several machines
share. :func:`check_storage` refuses, in one line and before a model is loaded or
measured, what would otherwise end in a SQLAlchemy or ImportError traceback: text that is
no URL, an unknown dialect, a missing driver, a SQLite file in a missing folder, an empty
or garbage file, another program's database, an in-memory SQLite database (no resume, no
second process). It only reads: a file that is not a study is never opened for writing.

:func:`open_storage` opens the RDBStorage with Optuna's heartbeat (every
:data:`HEARTBEAT_S` seconds; a trial silent for :data:`GRACE_S` is stale), which lets a
resumed search fail the trials a killed process left running
(:mod:`edgeopt.optimizer.stale`).
"""

from __future__ import annotations

import sqlite3
import warnings
from pathlib import Path
from typing import Any

from .._util.errorline import error_line
from .._util.sqlite_file import sqlite_file_problem
from ..errors import EdgeoptError

HEARTBEAT_S = 10  # seconds between a running trial's heartbeats (Optuna takes an int)
GRACE_S = 60  # seconds without a heartbeat after which a running trial is stale

# Tables every Optuna RDB storage has (since Optuna 1.x); another database lacks them.
_OPTUNA_TABLES = {"studies", "trials", "version_info"}
# pip packages of the DB-API drivers SQLAlchemy names (its default per dialect included).
_DRIVERS = {
    "psycopg2": "pip install psycopg2-binary",
    "psycopg": "pip install 'psycopg[binary]', or write postgresql+psycopg2://... and pip install psycopg2-binary",
    "pg8000": "pip install pg8000",
    "asyncpg": "pip install asyncpg",
    "mysqldb": "pip install mysqlclient, or write mysql+pymysql://... and pip install pymysql",
    "pymysql": "pip install pymysql",
    "mysqlconnector": "pip install mysql-connector-python",
    "oracledb": "pip install oracledb",
    "pyodbc": "pip install pyodbc",
    "pymssql": "pip install pymssql",
}


def default_storage(out_dir: str | Path) -> str:
    """The SQLite URL of the study kept in ``out_dir`` (``study.db``, absolute path)."""
    return f"sqlite:///{(Path(out_dir) / 'study.db').resolve()}"


def display_url(url: str) -> str:
    """``url`` with its password masked, for messages and reports."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL at all: nothing to hide
        return url


def check_storage(url: str, *, resume: bool = False, default: bool = False) -> None:
    """Refuse a storage the search cannot use, before any work; reads only, creates nothing.

    Args:
        url: the SQLAlchemy URL.
        resume: the search continues a study, so a SQLite file must exist.
        default: ``url`` is :func:`default_storage` of an output folder the run creates
            (its folder may be missing).

    Raises:
        EdgeoptError: not a URL, unknown dialect, driver not installed, in-memory SQLite,
            missing folder, or a file that is not an Optuna study database (one line
            naming the URL or file and the fix).
    """
    from sqlalchemy import exc
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except exc.ArgumentError:
        raise EdgeoptError(f"--storage {url!r} is not a storage URL: write e.g. sqlite:///study.db or "
                           f"postgresql://user@host/db") from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        dialect = parsed.get_dialect()
    except exc.NoSuchModuleError:
        raise EdgeoptError(f"--storage {shown}: SQLAlchemy has no database dialect {parsed.get_backend_name()!r}: "
                           f"use sqlite:///FILE, postgresql://... or mysql+pymysql://...") from None
    try:
        dialect.import_dbapi()
    except ImportError:
        driver = parsed.get_driver_name()
        fix = _DRIVERS.get(driver, f"install the Python driver {driver!r} of SQLAlchemy's "
                                   f"{parsed.get_backend_name()} dialect")
        raise EdgeoptError(f"--storage {shown} needs the database driver {driver}, which is not installed: "
                           f"{fix}") from None
    if parsed.get_backend_name() == "sqlite":
        _check_sqlite_file(parsed.database, shown, resume=resume, default=default)


def _check_sqlite_file(database: str | None, shown: str, *, resume: bool, default: bool) -> None:
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        raise EdgeoptError(f"--storage {shown} keeps the study in memory, where neither --resume nor another "
                           f"worker finds it: name a file, e.g. sqlite:///study.db, or leave out --storage")
    path = Path(database)
    problem = sqlite_file_problem(path)
    if problem == "absent":
        if resume:
            raise EdgeoptError(f"no search to resume: {path} does not exist: drop --resume, or pass the --out "
                               f"(or --storage) of the search to continue")
        if not default and not path.parent.is_dir():
            raise EdgeoptError(f"--storage {shown}: the folder {path.parent} does not exist: create it, or pass "
                               f"another --storage")
        return
    fix = "move it away, or pass another --storage or --out"
    if problem is not None:
        raise EdgeoptError(f"the study database {path} is {problem}: {fix}")
    try:
        con = sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)
        try:
            tables = {n for (n,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise EdgeoptError(f"the study database {path} cannot be read as SQLite ({e}): {fix}") from None
    if not _OPTUNA_TABLES <= tables:
        named = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_"))) or "none"
        raise EdgeoptError(f"{path} is another program's SQLite database (tables: {named}), not an Optuna "
                           f"study: {fix}")


def open_storage(url: str) -> Any:
    """Optuna's RDBStorage at ``url`` (checked by :func:`check_storage` first), with the
    heartbeat on.

    Raises:
        EdgeoptError: see :func:`check_storage`; or the database cannot be reached or was
            made by an Optuna this one cannot read.
    """
    import optuna
    from sqlalchemy import exc

    check_storage(url)
    shown = display_url(url)
    try:
        with warnings.catch_warnings():  # heartbeat_interval is marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    except (exc.SQLAlchemyError, ImportError, RuntimeError, ValueError) as e:
        # RuntimeError: Optuna's schema check ("no longer compatible with the table schema").
        raise EdgeoptError(f"cannot open the study storage {shown} ({error_line(e)}): check the URL and that "
                           f"the database is reachable, or pass another --storage") from None
