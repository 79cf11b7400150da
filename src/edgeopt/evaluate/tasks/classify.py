"""Classification: top-1 agreement with the original (top-5 too), and top-1 accuracy when
the inputs have labels.

The drop is in percentage points: the larger of the agreement lost (100 - top-1
agreement) and, with labels, the accuracy lost against the original's; the budget
(``--max-drop``, 1 point by default) applies to it. The scores are the first output's
(``output`` option: another output by name).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..metrics import top1_accuracy
from .base import Evaluator, TaskScore, check_outputs
from .outputs import output_stats, topk_agreement


class ClassifyEvaluator(Evaluator):
    """Top-1/top-5 agreement and accuracy of one score output.

    Options:
        output: name of the score output (default: the first).
    """

    task = "classify"
    default_tolerance = 1.0
    summary = "top-1/top-5 agreement with the original; top-1 accuracy with labels"

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        i = self.output_index()
        r, c = ref[i].reshape(ref[i].shape[0], -1), cand[i].reshape(cand[i].shape[0], -1)
        agreement = topk_agreement(r, c, 1)
        details = {"top1_agreement": agreement, "top5_agreement": topk_agreement(r, c, 5),
                   "outputs": output_stats(self.model.output_names, ref, cand)}
        losses = {"agreement": 100.0 - agreement}
        original = None
        if labels is not None:
            y = np.asarray(labels)
            original, accuracy = top1_accuracy(r, y), top1_accuracy(c, y)
            details.update(accuracy_ref=original, accuracy=accuracy)
            losses["accuracy"] = original - accuracy
        worst = max(losses, key=losses.get)
        metric = "top-1 agreement" if labels is None else "top-1 agreement and accuracy"
        return TaskScore(task=self.task, metric=metric, unit="%", value=agreement,
                         drop=max(0.0, losses[worst]), drop_unit="points", original=original,
                         details={**details, "decided_by": worst})

    def explain(self, score: TaskScore, tolerance: float) -> str:
        """Today's wording: which of agreement and accuracy broke the --max-drop budget."""
        parts = []
        if 100.0 - score.details["top1_agreement"] > tolerance:
            parts.append(f"top-1 agreement {score.details['top1_agreement']:.1f}% < {100 - tolerance:.1f}% "
                         f"(--max-drop {tolerance:g})")
        if score.original is not None and score.original - score.details["accuracy"] > tolerance:
            acc, lost = score.details["accuracy"], score.original - score.details["accuracy"]
            parts.append(f"accuracy {acc:.1f}% is {lost:.1f} points below the original's {score.original:.1f}% "
                         f"(--max-drop {tolerance:g})")
        return "; ".join(parts)

    def hopeless(self, reference: Sequence[np.ndarray], quick: Sequence[np.ndarray], quick_index: np.ndarray,
                 labels: Any, tolerance: float) -> str:
        """Wrong answers on the subset are wrong on the whole set too: when the subset's
        disagreements (or its errors beyond what the original gets wrong on the whole
        set) already exceed the allowed count, no other image can save the candidate."""
        i = self.output_index()
        ref = np.asarray(reference[i]).reshape(len(reference[i]), -1)
        cand = np.asarray(quick[i]).reshape(len(quick[i]), -1).argmax(1)
        n_all, n = ref.shape[0], cand.shape[0]
        excess = int((cand != ref[quick_index].argmax(1)).sum())
        if labels is not None:
            y = np.asarray(labels)
            excess = max(excess, int((cand != y[quick_index]).sum()) - int((ref.argmax(1) != y).sum()))
        if 100.0 * excess / n_all > tolerance:
            return (f"hopeless: {excess} more wrong answers on {n} of the {n_all} held-out samples "
                    f"already make a drop of {100.0 * excess / n_all:.1f} points > {tolerance:g}")
        return ""
