"""Where a figure was measured, said plainly: here, on which board(s), and whether emulated."""

from __future__ import annotations

from typing import Any, Iterable


def where_measured(machines: Iterable[dict[str, Any]]) -> str:
    """"measured here", or "measured on board NAME (kind KIND)" (several names when several
    boards of a ``--device`` run shared the work), with ", emulated (HOW): timings are the
    emulator's, not the board's" when the CPU that measured was emulated.

    Args:
        machines: the machine records (:func:`~edgeopt.bench.environment.machine_info`,
            with ``device`` on a board) of the measurements.
    """
    machines = list(machines)
    boards = sorted({(d.get("name", "?"), d.get("kind", "?")) for m in machines if (d := m.get("device"))})
    if boards:
        kinds = ", ".join(sorted({kind for _, kind in boards}))
        where = f"measured on board{'s' * (len(boards) > 1)} {', '.join(n for n, _ in boards)} (kind {kinds})"
    else:
        where = "measured here"
    emulated = sorted({e for m in machines if (e := m.get("emulated"))})
    if emulated:
        where += f", emulated ({'; '.join(emulated)}): timings are the emulator's, not the board's"
    return where
