"""Work the objective leaves out because it cannot change the choice: an int8 version of a
pruned model whose fp32 version is confidently out of the quality budget is not built
(Objective.out_of_reach), and a candidate over the budget that cannot start the fallback
gets a short timing (Objective.timing_matters). Records are injected; nothing is built."""

from __future__ import annotations

from types import SimpleNamespace

from edgeopt.optimizer.objective import Limits, Objective
from edgeopt.optimizer.space import Point
from edgeopt.optimizer.study import TrialRecord


def _objective(need: float | None, agreements: dict[Point, float], n: int = 516) -> Objective:
    measurer = SimpleNamespace(need_agreement=need, held_out=[None] * n)
    space = SimpleNamespace(float_layers=(0, 1, 2, 4))
    ev = Objective(builder=None, measurer=measurer, space=space, limits=Limits(max_drop=1.0), trials_end=None)
    ev.learn([TrialRecord(number=i, point=p, state="complete", feasible=False, per_image_ms=1.0, drop=100 - a,
                          attrs={"quality": {"top1_agreement": a}}) for i, (p, a) in enumerate(agreements.items())])
    return ev


PRUNED = Point(prune=0.3, backend="ort")
INT8 = Point(prune=0.3, precision="int8-nncf", backend="openvino")


def test_an_int8_version_of_a_float_model_far_below_the_need_is_not_built():
    ev = _objective(99.0, {PRUNED: 48.4})
    why = ev.out_of_reach(INT8)
    assert why.startswith(f"not built: its fp32 version {PRUNED.label} agrees 48.4% with the original")
    assert "< 99% needed" in why
    # Another pruning level, or the fp32 candidate itself, is built.
    assert ev.out_of_reach(Point(prune=0.5, precision="int8-nncf")) == ""
    assert ev.out_of_reach(Point(prune=0.3, backend="openvino")) == ""


def test_a_float_version_that_may_meet_the_need_lets_int8_be_tried():
    # 98.6% of 516 (509 agree) has a 95% upper bound above 99%: int8 may still pass.
    assert _objective(99.0, {PRUNED: 100 * 509 / 516}).out_of_reach(INT8) == ""
    # 97.5% of 516 cannot be 99%: not built.
    assert _objective(99.0, {PRUNED: 100 * 503 / 516}).out_of_reach(INT8) != ""
    # The best fp32 version counts (another backend's may agree more).
    best_of_two = {PRUNED: 48.4, Point(prune=0.3, backend="openvino"): 100 * 509 / 516}
    assert _objective(99.0, best_of_two).out_of_reach(INT8) == ""
    # Tasks without an agreement budget never skip.
    assert _objective(None, {PRUNED: 10.0}).out_of_reach(INT8) == ""


def test_only_candidates_that_can_change_the_outcome_are_timed_in_full():
    ev = _objective(99.0, {})
    assert ev.timing_matters(PRUNED, judged_drop=0.9)  # within the budget: may be chosen
    assert not ev.timing_matters(PRUNED, judged_drop=55.0)  # fp32 over it: no fallback
    assert not ev.timing_matters(Point(precision="int8-nncf-defaults"), judged_drop=2.7)  # no float layers
    assert ev.timing_matters(Point(precision="int8-nncf"), judged_drop=2.0)  # may start the fallback
    assert ev.timing_matters(Point(precision="int8-nncf", float_layers=2), judged_drop=2.0)
    assert not ev.timing_matters(Point(precision="int8-nncf", float_layers=4), judged_drop=2.0)  # last step
