"""The one choice and the one confirmation, for every strategy.

Among the measured trials within every constraint, the fastest per image are the
finalists: the ``FINALISTS`` fastest within ``WITHIN`` times the fastest one's trial
latency. They are re-timed in alternating rounds together with the best hand-picked
choice and the baseline (the original fp32 model on ONNX Runtime at the user's threads and
batch), so every ratio reported is measured in one run, not two numbers taken minutes
apart. The fastest of the re-timing (the leader) is named the winner only when the 95%
interval of its speed ratio against each other contender excludes 1
(:func:`edgeopt.optimizer.confidence.round_ratio_interval`) and the ratio is at least
``MIN_EFFECT`` (5%, what ``edgeopt compare`` calls a real difference) from 1: a 2% gain
that a long re-timing can resolve is not worth a change of runtime or precision, and
naming it would flip with the load. The contenders not beaten that way are tied with it, and the user's tie-breaker chooses among them
(:func:`edgeopt.optimizer.confidence.tie_key`: by default fewer passes, then the smaller
model; the original has no passes, so a candidate not shown faster than it loses to it).

Five rounds give a wide interval (about the smallest to the largest round's ratio) on a
noisy machine: when the leader is tied with another contender, up to ``EXTRA_BATCHES``
more batches of the same rounds re-time every contender, while the caller's
``may_extend`` says the time of one more batch (measured on the first) is left. Each
batch is a fixed size decided before it runs and at most three looks are taken, so the
stopping rule does not chase noise (a group-sequential design, Pocock 1977). A tie whose
every interval already lies under ``1 + MIN_EFFECT`` is settled (stopping for futility,
as group-sequential designs do): more rounds narrow each interval around a ratio that is,
at 95% confidence, under 5%, so none could become a winner.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..bench.compare import MIN_EFFECT
from ..errors import EdgeoptError
from .builder import ModelBuilder
from .confidence import round_ratio_interval, tie_key
from .measure import Measurer
from .space import Point
from .study import TrialRecord

if TYPE_CHECKING:
    from ..model import Model

FINALISTS = 3
"""Feasible trials re-timed besides the best hand-picked choice and the baseline."""
WITHIN = 1.5
"""A finalist's trial latency is at most this many times the fastest trial's: slower ones
could not overtake it in the re-timing (trial timings moved by ~30% under load)."""
EXTRA_BATCHES = 2
"""Further batches of ``confirm_rounds`` rounds while the leader is tied (so at most 3x)."""
TIE_WORDS = {"passes": "fewer passes, then the smaller model", "size": "the smaller model, then fewer passes"}


@dataclass
class Choice:
    """The chosen trial, the contenders it was re-timed against, and the decision.

    Attributes:
        winner, hand_picked_best, baseline: the trials.
        winner_model: the chosen trial's model.
        confirm_ms: median over rounds of the per-round p50 ms per image of the
            alternating re-timing, by role ("winner", "hand_picked", "baseline").
        speedup_vs_hand_picked, speedup_vs_baseline: median per-round ratios of those.
        speedup_interval: 95% interval of speedup_vs_baseline, (low, high).
        finalists: per contender: label, confirm_ms, ratio (its time over the leader's,
            median per round), low, high (95% interval), tied (interval includes 1).
        tie: labels of the tied set (empty when the leader is a clear winner).
        tie_breaker: the tie-breaker in force.
        decision: one line saying how the winner was named.
        notes: what the choice decided and why.
    """

    winner: TrialRecord
    hand_picked_best: TrialRecord
    baseline: TrialRecord
    winner_model: "Model"
    confirm_ms: dict[str, float]
    speedup_vs_hand_picked: float
    speedup_vs_baseline: float
    speedup_interval: tuple[float, float] = (math.nan, math.nan)
    finalists: list[dict[str, Any]] = field(default_factory=list)
    tie: list[str] = field(default_factory=list)
    tie_breaker: str = "passes"
    decision: str = ""
    notes: list[str] = field(default_factory=list)


def choose(recs: list[TrialRecord], base_point: Point, builder: ModelBuilder, measurer: Measurer, *,
           budget_note: str = "", tie_breaker: str = "passes",
           may_extend: Callable[[float], bool] | None = None,
           time_left: Callable[[], float | None] = lambda: None,
           clock: Callable[[], float] = time.monotonic) -> Choice:
    """Choose among ``recs`` and confirm the choice (see the module docstring).

    Args:
        base_point: the baseline's point (fp32 on ONNX Runtime at the user's settings).
        budget_note: appended to the error when the baseline did not finish.
        tie_breaker: "passes", "size" or "runtime:NAME" (:func:`~edgeopt.optimizer.confidence.tie_key`).
        may_extend: called with the seconds one more batch of rounds takes (measured on
            ``clock``); True lets a tied re-timing go on. None: five rounds only.
        time_left: seconds the first re-timing may take (None: no limit; its rounds are
            shortened to fit, :meth:`~edgeopt.optimizer.measure.Measurer.confirm`).
        clock: monotonic clock in seconds (tests inject one).

    Raises:
        EdgeoptError: the baseline has no complete trial (it could not run, or the budget
            ended first), or an unknown tie-breaker.
    """
    key = tie_key(tie_breaker)
    baseline = next((r for r in recs if r.state == "complete" and r.point == base_point), None)
    if baseline is None:
        failed = next((r for r in recs if r.point == base_point), None)
        why = f": {failed.reason}" if failed is not None and failed.reason else budget_note
        raise EdgeoptError(f"the fp32 baseline {base_point.label} did not finish{why}")
    notes: list[str] = []
    feasible = sorted((r for r in recs if r.feasible and r.duplicate_of is None), key=lambda r: r.per_image_ms)
    picked = [r for r in feasible if r.origin == "hand-picked"]
    hand = picked[0] if picked else baseline
    if not feasible:
        notes.append("no trial met every constraint: keeping the original fp32 model on ONNX Runtime")
    top = [r for r in feasible[:FINALISTS] if r.per_image_ms <= WITHIN * feasible[0].per_image_ms]
    contenders = list({r.number: r for r in [*top, hand, baseline]}.values())
    t0 = clock()
    rounds = _confirm(contenders, builder, measurer, time_left())
    batch_s = clock() - t0
    for _ in range(EXTRA_BATCHES):
        p50, timed, leader, finalists = _standings(contenders, rounds, baseline)
        if sum(f["tied"] for f in finalists) < 2 or _settled(finalists) or may_extend is None \
                or not may_extend(batch_s):
            break
        more = _confirm(contenders, builder, measurer)
        if any(rounds[n] and not more[n] for n in rounds):
            break  # rounds pair by index: a batch where a timed contender failed is dropped
        rounds = {n: v + more[n] if v else v for n, v in rounds.items()}
    p50, timed, leader, finalists = _standings(contenders, rounds, baseline)
    tie = [r for r in timed if next(f for f in finalists if f["label"] == r.label)["tied"]]
    # Equal under the tie-breaker (fp32 on OpenVINO has no passes and the original's size):
    # the original stays, then the hand-picked choice; a change must earn its place.
    winner = min(tie, key=lambda r: (*key(len(r.attrs.get("passes") or []), r.size_bytes or 0, r.point.backend),
                                     r is not baseline, r is not hand))
    decision = _decision(winner, leader, tie, finalists, tie_breaker)
    if winner is baseline and any(r is not baseline for r in feasible):
        notes.append("no candidate is confirmed faster than the original fp32 model on ONNX Runtime: "
                     "keeping the original")
    ratio = lambda a, b: round_ratio_interval(rounds[a.number], rounds[b.number])  # noqa: E731
    vs_base = ratio(baseline, winner) if winner is not baseline else (1.0, 1.0, 1.0)
    vs_hand = ratio(hand, winner) if winner is not hand else (1.0, 1.0, 1.0)
    return Choice(winner=winner, hand_picked_best=hand, baseline=baseline,
                  winner_model=builder.build(winner.point.recipe),
                  confirm_ms={"winner": p50.get(winner.number, math.nan), "hand_picked": p50[hand.number],
                              "baseline": p50[baseline.number]},
                  speedup_vs_hand_picked=_or_one(vs_hand[0]), speedup_vs_baseline=_or_one(vs_base[0]),
                  speedup_interval=(vs_base[1], vs_base[2]), finalists=finalists,
                  tie=[r.label for r in tie] if len(tie) > 1 else [], tie_breaker=tie_breaker,
                  decision=decision, notes=[*notes, decision])


def _standings(contenders: list[TrialRecord], rounds: dict[int, list[float]], baseline: TrialRecord):
    """(p50 by trial number, the timed contenders, the leader, the finalists' rows: label,
    confirm_ms, ratio over the leader with its 95% interval, tied) of the rounds so far."""
    p50 = {n: float(np.median(v)) if v else math.nan for n, v in rounds.items()}
    timed = [r for r in contenders if not math.isnan(p50[r.number])] or [baseline]
    leader = min(timed, key=lambda r: p50[r.number])
    finalists = []
    for r in sorted(timed, key=lambda r: p50[r.number]):
        ratio, low, high = round_ratio_interval(rounds[r.number], rounds[leader.number])
        beaten = low > 1.0 and ratio >= 1.0 + MIN_EFFECT
        finalists.append({"label": r.label, "confirm_ms": p50[r.number], "ratio": ratio, "low": low,
                          "high": high, "tied": r is leader or not beaten})
    return p50, timed, leader, finalists


def _settled(finalists: list[dict]) -> bool:
    """A tie no more rounds can break: every tied contender's 95% interval of its time
    over the leader's ends under ``1 + MIN_EFFECT`` (the leader's own is 1)."""
    return all(f["high"] < 1.0 + MIN_EFFECT for f in finalists if f["tied"])


def _or_one(x: float) -> float:
    return 1.0 if math.isnan(x) else x


def _decision(winner: TrialRecord, leader: TrialRecord, tie: list[TrialRecord], finalists: list[dict],
              tie_breaker: str) -> str:
    """The verdict line: a clear winner with its margin over the runner-up, or the tie,
    its reason and the tie-breaker that chose."""
    if len(finalists) < 2:
        return f"{winner.label} was the only contender re-timed"
    if len(tie) == 1:
        runner = finalists[1]
        return (f"{winner.label} is the winner: the runner-up {runner['label']} takes {runner['ratio']:.2f}x "
                f"its time [{runner['low']:.2f}..{runner['high']:.2f}], 95% interval over alternating rounds")
    words = TIE_WORDS.get(tie_breaker, f"the runtime {tie_breaker.split(':', 1)[-1]} first")
    others = [f for f in finalists if f["tied"] and f["label"] != leader.label]
    spans = ", ".join(f"{f['label']} {f['ratio']:.2f}x [{f['low']:.2f}..{f['high']:.2f}]" for f in others)
    return (f"tie: {', '.join(r.label for r in tie)} are not told apart (their time over the fastest, "
            f"{leader.label}: {spans}; 95% intervals include 1 or the gain is under {MIN_EFFECT:.0%}): chose {winner.label} by the tie-breaker "
            f"{tie_breaker} ({words})")


def _confirm(contenders: list[TrialRecord], builder: ModelBuilder, measurer: Measurer,
             budget_s: float | None = None) -> dict[int, list[float]]:
    """Per-round p50 ms per image of each contender, by trial number, from one
    alternating re-timing (empty for a contender that failed) within ``budget_s``."""
    entries = [(builder.build(r.point.recipe), r.point) for r in contenders]
    return {r.number: list(v) for r, v in zip(contenders, measurer.confirm(entries, budget_s))}
