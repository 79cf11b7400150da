"""What a path given as an SQLite database is, read without writing: absent, an SQLite
file, or something else (the reason), so that neither the results history nor an Optuna
study ever opens, and so changes, a file that is not a database."""

from __future__ import annotations

import stat
from pathlib import Path

# The 16-byte header every SQLite 3 database file starts with (https://www.sqlite.org/fileformat.html).
SQLITE_MAGIC = b"SQLite format 3\x00"


def sqlite_file_problem(path: Path) -> str | None:
    """Why ``path`` cannot be opened as an existing SQLite database, read-only.

    Returns:
        None when it is a regular file that starts with the SQLite header; "absent" when
        nothing is there; otherwise the reason, e.g. "not a regular file", "an empty
        file", "not an SQLite database", "unreadable (Permission denied)".
    """
    try:
        st = path.stat()
    except FileNotFoundError:
        return "absent"
    except OSError as e:
        return f"unreadable ({e.strerror})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size == 0:
        return "an empty file"
    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_MAGIC))
    except OSError as e:
        return f"unreadable ({e.strerror})"
    return None if header == SQLITE_MAGIC else "not an SQLite database"
