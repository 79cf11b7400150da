"""A suite run's cells grouped and read the way its report and its plots both show them:
one group per model, one line per runtime x threads (x precision), the suite's metric
per cell."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from .plots import per_image_interval, throughput_interval

if TYPE_CHECKING:
    from ..suites.run import SuiteCell, SuiteRun

UNITS = {"ms_per_image": "ms per image (p50 latency / batch)", "images_per_s": "images/s (at the p50 latency)"}


def value(cell: "SuiteCell", metric: str) -> float | None:
    """The suite's number for one cell: ms per image or images/s, both at the p50 (None
    without runs)."""
    r = cell.result
    if not r.ok:
        return None
    return r.ms_per_image if metric == "ms_per_image" else r.throughput


def bounds(cell: "SuiteCell", metric: str) -> tuple[float, float] | None:
    """The 95% interval of :func:`value` (from the p50's bootstrap interval), low first;
    None without runs."""
    if not cell.result.ok:
        return None
    _, low, high = (per_image_interval if metric == "ms_per_image" else throughput_interval)(cell.result)
    return low, high


def line_label(cell: "SuiteCell", variants: int) -> str:
    """"backend t2" (plus " int8" when the suite has several precisions)."""
    label = f"{cell.result.backend} t{cell.result.threads}"
    return f"{label} {cell.variant}" if variants > 1 else label


def by_model(run: "SuiteRun") -> dict[str, dict[str, list["SuiteCell"]]]:
    """{model ref: {line label: cells in batch order}} in grid order."""
    out: dict[str, dict[str, list[SuiteCell]]] = defaultdict(lambda: defaultdict(list))
    for c in run.cells:
        out[c.ref][line_label(c, len(run.spec.variants))].append(c)
    return out
