"""The one choice and the one confirmation, for every strategy.

Among the measured trials within every constraint, the fastest per image is the
candidate. It is then re-timed in alternating rounds against the best hand-picked choice
and the baseline (the original fp32 model on ONNX Runtime at the user's threads and
batch), so the speedups reported are ratios measured in one run, not two numbers taken
minutes apart. When the re-timing disagrees with the trials' own timings (the candidate
is slower than the best hand-picked choice, or than the baseline), the simpler choice is
kept and a note says why.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import EdgeoptError
from .builder import ModelBuilder
from .measure import Measurer
from .space import Point
from .study import TrialRecord

if TYPE_CHECKING:
    from ..model import Model

ROLES = ("winner", "hand_picked", "baseline")


@dataclass
class Choice:
    """The chosen trial and the two it was re-timed against.

    Attributes:
        winner, hand_picked_best, baseline: the trials.
        winner_model: the chosen trial's model.
        confirm_ms: p50 ms per image of the alternating re-timing, by role.
        speedup_vs_hand_picked, speedup_vs_baseline: ratios of those p50s.
        notes: what the choice decided and why.
    """

    winner: TrialRecord
    hand_picked_best: TrialRecord
    baseline: TrialRecord
    winner_model: "Model"
    confirm_ms: dict[str, float]
    speedup_vs_hand_picked: float
    speedup_vs_baseline: float
    notes: list[str] = field(default_factory=list)


def choose(recs: list[TrialRecord], base_point: Point, builder: ModelBuilder, measurer: Measurer, *,
           budget_note: str = "") -> Choice:
    """Choose among ``recs`` and confirm the choice (see the module docstring).

    Args:
        base_point: the baseline's point (fp32 on ONNX Runtime at the user's settings).
        budget_note: appended to the error when the baseline did not finish.

    Raises:
        EdgeoptError: the baseline has no complete trial (it could not run, or the budget
            ended first).
    """
    baseline = next((r for r in recs if r.state == "complete" and r.point == base_point), None)
    if baseline is None:
        failed = next((r for r in recs if r.point == base_point), None)
        why = f": {failed.reason}" if failed is not None and failed.reason else budget_note
        raise EdgeoptError(f"the fp32 baseline {base_point.label} did not finish{why}")
    notes: list[str] = []
    feasible = [r for r in recs if r.feasible and r.duplicate_of is None]
    picked = [r for r in feasible if r.origin == "hand-picked"]
    hand = min(picked, key=lambda r: r.per_image_ms) if picked else baseline
    winner = min(feasible, key=lambda r: r.per_image_ms) if feasible else baseline
    if not feasible:
        notes.append("no trial met every constraint: keeping the original fp32 model on ONNX Runtime")
    roles = {"winner": winner, "hand_picked": hand, "baseline": baseline}
    confirm = _confirm(roles, builder, measurer)
    ratio = lambda a, b: confirm[a] / confirm[b] if confirm[b] and not math.isnan(confirm[b]) else 1.0  # noqa: E731
    if winner is not hand and ratio("hand_picked", "winner") < 1.0:
        notes.append(f"{winner.label} looked fastest but the alternating re-timing gave "
                     f"{ratio('hand_picked', 'winner'):.2f}x against {hand.label}: choosing {hand.label}")
        winner = hand
        confirm["winner"] = confirm["hand_picked"]
    if winner is not baseline and ratio("baseline", "winner") < 1.0:
        notes.append(f"{winner.label} looked faster in its trial but the alternating re-timing gave "
                     f"{ratio('baseline', 'winner'):.2f}x against the original: keeping the original")
        winner = baseline
        confirm["winner"] = confirm["baseline"]
    if winner is baseline and feasible:
        notes.append("no candidate beats the original fp32 model on ONNX Runtime: keeping the original")
    return Choice(winner=winner, hand_picked_best=hand, baseline=baseline,
                  winner_model=builder.build(winner.point.recipe), confirm_ms=confirm,
                  speedup_vs_hand_picked=ratio("hand_picked", "winner"),
                  speedup_vs_baseline=ratio("baseline", "winner"), notes=notes)


def _confirm(roles: dict[str, TrialRecord], builder: ModelBuilder, measurer: Measurer) -> dict[str, float]:
    """p50 ms per image of each role from one alternating re-timing; a trial that holds
    two roles (the winner may be the best hand-picked choice) is timed once, so its ratio
    to itself is exactly 1."""
    distinct = list(dict.fromkeys(r.number for r in roles.values()))
    by_number = {r.number: r for r in roles.values()}
    entries = [(builder.build(by_number[n].point.recipe), by_number[n].point) for n in distinct]
    per_number = dict(zip(distinct, measurer.confirm(entries)))
    return {role: per_number[r.number] for role, r in roles.items()}
