"""One progress bar for long work (Rich, on stderr, gone when done)."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator


class _Bar:
    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def describe(self, text: str) -> None:
        """Set the line shown next to the bar."""
        if self._progress is not None:
            self._progress.update(self._task, description=text)

    def advance(self, n: int = 1) -> None:
        if self._progress is not None:
            self._progress.advance(self._task, n)

    def to(self, completed: float) -> None:
        """Set the amount done (e.g. seconds of a time budget used)."""
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)


@contextlib.contextmanager
def progress_bar(title: str, total: int, *, enabled: bool = True) -> Iterator[_Bar]:
    """A transient Rich progress bar on stderr; a no-op when disabled or not a TTY.

    Yields an object with ``describe(text)`` and ``advance(n=1)``.
    """
    if not enabled or not sys.stderr.isatty():
        yield _Bar(None, None)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn(f"[bold]{title}[/bold]"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.description}"),
        console=Console(stderr=True), transient=True,
    ) as progress:
        yield _Bar(progress, progress.add_task("", total=total))
