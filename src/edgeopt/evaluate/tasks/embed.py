"""Embeddings: cosine similarity to the original's vectors and nearest-neighbour agreement.

Nearest-neighbour agreement is the % of samples whose nearest other sample (by cosine, in
the held-out set) is the same under the candidate's embeddings as under the original's:
what retrieval and face verification depend on. The drop is 100 - that agreement in points
(budget 1 point by default); the mean cosine is reported beside it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .base import Evaluator, TaskScore, check_outputs


def _unit_rows(a: np.ndarray) -> np.ndarray:
    a = a.reshape(a.shape[0], -1)
    n = np.linalg.norm(a, axis=1, keepdims=True)
    return a / np.where(n == 0, 1.0, n)


def nearest_neighbours(emb: np.ndarray) -> np.ndarray:
    """Index of each row's nearest other row by cosine similarity."""
    u = _unit_rows(emb)
    sim = u @ u.T
    np.fill_diagonal(sim, -np.inf)
    return sim.argmax(1)


class EmbedEvaluator(Evaluator):
    """Cosine to the original's vectors and nearest-neighbour agreement.

    Options:
        output: name of the embedding output (default: the first).
    """

    task = "embed"
    default_tolerance = 1.0
    summary = "cosine to the original's embeddings and nearest-neighbour agreement"

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        i = self.output_index()
        name = self.model.output_names[i]
        r, c = _unit_rows(ref[i]), _unit_rows(cand[i])
        cosine = float(np.mean(np.sum(r * c, axis=1)))
        agree = float(100.0 * np.mean(nearest_neighbours(ref[i]) == nearest_neighbours(cand[i]))) \
            if len(r) > 2 else 100.0
        return TaskScore(task=self.task, metric="nearest-neighbour agreement", unit="%", value=agree,
                         drop=100.0 - agree, drop_unit="points", details={"cosine": cosine, "output": name})
