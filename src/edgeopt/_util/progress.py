"""One progress bar for long work (Rich, on stderr, gone when done).

A bar opened while another is shown becomes a second line of the same display (Rich
allows one live display at a time), gone when its work ends: optimize's bar over the
candidates, and under it the one of a pruned candidate's training.
"""

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


_shown: list = []  # the Rich Progress on screen (at most one), for bars opened inside it


@contextlib.contextmanager
def progress_bar(title: str, total: int, *, enabled: bool = True) -> Iterator[_Bar]:
    """A transient Rich progress bar on stderr; a no-op when disabled or not a TTY.
    Inside another bar, a line of its display (removed on exit).

    Yields an object with ``describe(text)``, ``advance(n=1)`` and ``to(completed)``.
    """
    if not enabled or not sys.stderr.isatty():
        yield _Bar(None, None)
        return
    if _shown:
        progress = _shown[-1]
        task = progress.add_task("", total=total, title=title)
        try:
            yield _Bar(progress, task)
        finally:
            progress.remove_task(task)
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(
        TextColumn("[bold]{task.fields[title]}[/bold]"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TextColumn("{task.description}"),
        console=Console(stderr=True), transient=True,
    ) as progress:
        _shown.append(progress)
        try:
            yield _Bar(progress, progress.add_task("", total=total, title=title))
        finally:
            _shown.pop()
