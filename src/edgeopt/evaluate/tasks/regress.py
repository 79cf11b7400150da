"""Regression, landmarks and keypoints: the error in the output's own units.

Per output: the absolute error |candidate - original| of every value (for landmarks and
keypoints given as (x, y) pairs with ``pairs``: the Euclidean distance of each point),
its mean and its p99, in the output's units (pixels for coordinates in pixels; the
``scale`` option converts normalised coordinates, e.g. 48 for a 48 px crop). The drop is the
worst output's mean error against the original (the budget is that error: 1.0 unit by
default); with labels (an (N, ...) array for the first output) the error to the ground
truth is reported for both models.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ...errors import DataError
from .base import Evaluator, TaskScore, check_outputs


LAYOUTS = ("interleaved", "planar")


def point_errors(ref: np.ndarray, cand: np.ndarray, *, pairs: bool, layout: str = "interleaved") -> np.ndarray:
    """Per value |cand - ref|, or with ``pairs`` the distance of each (x, y) point, the
    flattened values read as x0, y0, x1, y1, ... ("interleaved") or x0, x1, ..., y0, y1, ...
    ("planar", MTCNN's landmark layout).

    Raises:
        DataError: an odd number of values with ``pairs``, or an unknown layout.
    """
    d = (cand - ref).reshape(ref.shape[0], -1)
    if not pairs:
        return np.abs(d).reshape(-1)
    if d.shape[1] % 2:
        raise DataError(f"an output of {d.shape[1]} values per sample is not (x, y) pairs: drop the pairs option")
    if layout not in LAYOUTS:
        raise DataError(f"unknown point layout {layout!r}: choose {' or '.join(LAYOUTS)}")
    half = d.shape[1] // 2
    dx, dy = (d[:, 0::2], d[:, 1::2]) if layout == "interleaved" else (d[:, :half], d[:, half:])
    return np.hypot(dx, dy).reshape(-1)


class RegressEvaluator(Evaluator):
    """Mean and p99 error of each output, in its units.

    Options:
        outputs: names of the outputs to judge (default: all).
        pairs: read values as (x, y) points and measure distances (landmarks, keypoints).
        layout: "interleaved" (x0, y0, x1, y1, ...) or "planar" (all x, then all y).
        scale: multiply errors by this (normalised coordinates -> pixels), default 1.
        unit: the name of the output's unit in reports (default "px" with pairs, else "units").
    """

    task = "regress"
    default_tolerance = 1.0
    summary = "error in the outputs' own units (px for landmarks): mean and p99 vs the original"

    def _selected(self) -> list[int]:
        names = self.options.get("outputs")
        if not names:
            return list(range(len(self.model.output_names)))
        missing = [n for n in names if n not in self.model.output_names]
        if missing:
            raise DataError(f"regress outputs {missing} are not outputs of {self.model.name}: choose from "
                            f"{', '.join(self.model.output_names)}")
        return [self.model.output_names.index(n) for n in names]

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        pairs, scale = bool(self.options.get("pairs", False)), float(self.options.get("scale", 1.0))
        layout = str(self.options.get("layout", "interleaved"))
        unit = self.options.get("unit", "px" if pairs else "units")
        rows, per_sample = [], {}
        for i in self._selected():
            e = point_errors(ref[i], cand[i], pairs=pairs, layout=layout) * scale
            name = self.model.output_names[i]
            rows.append({"output": name, "mean_error": float(e.mean()),
                         "p99_error": float(np.percentile(e, 99)), "max_error": float(e.max())})
            per_sample[name] = e.reshape(ref[i].shape[0], -1).mean(1)  # equal points per sample: mean of means
        worst = max(rows, key=lambda r: r["mean_error"])
        details: dict[str, Any] = {"outputs": rows, "worst_output": worst["output"], "p99_error": worst["p99_error"]}
        original = None
        if labels is not None:
            y = np.asarray(labels, dtype=np.float64).reshape(ref[0].shape)
            original = float(point_errors(y, ref[0], pairs=pairs, layout=layout).mean() * scale)
            details["candidate_error_to_labels"] = float(point_errors(y, cand[0], pairs=pairs,
                                                                      layout=layout).mean() * scale)
        return TaskScore(task=self.task, metric="mean error vs the original", unit=unit,
                         value=worst["mean_error"], drop=worst["mean_error"], drop_unit=unit, original=original,
                         details=details, per_sample=per_sample[worst["output"]])
