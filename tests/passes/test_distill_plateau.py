"""The plateau rule (passes/distill/plateau.py): a distillation gives up when its held-out
agreement has stopped rising far below what the quality budget needs, and only then.

The sequences are injected (no training): what matters is which curves stop and when.
Numbers: with 22 held-out images (the fifth of the demonstration's 112 calibration images
held out), 9 agreeing (40.9%) has a one-sided 95% exact upper bound of 60.5%, 21 agreeing
(95.5%) 99.8%; with 100 images, 90 agreeing 94.5%, 98 agreeing 99.6%.
"""

from __future__ import annotations

import pytest

from edgeopt.errors import PassError
from edgeopt.passes.distill.plateau import Plateau, agreement_upper


def _first_stop(curve: list[float], n: int, **kw) -> int | None:
    """Index of the evaluation at which the rule stops ``curve`` (None: never)."""
    rule = Plateau(**kw)
    return next((i for i, a in enumerate(curve) if rule.update(a, n)), None)


def test_the_upper_bound_is_the_exact_binomial_one():
    assert agreement_upper(9, 22, 0.95) == pytest.approx(60.5, abs=0.1)
    # k = n - 1: P(X <= n - 1 | p) = 1 - p^n = 0.05 gives p = 0.95^(1/n).
    assert agreement_upper(21, 22, 0.95) == pytest.approx(100 * 0.95 ** (1 / 22), abs=1e-6)
    assert agreement_upper(22, 22, 0.95) == 100.0
    assert agreement_upper(0, 22, 0.95) > 0.0  # zero agreeing is not proof of zero
    with pytest.raises(PassError, match="0 <= k <= n"):
        agreement_upper(23, 22, 0.95)


def test_a_plateau_far_below_the_budget_stops_after_patience_checks():
    flat = [100 * 9 / 22] * 10  # the pruned start is the best it gets
    assert _first_stop(flat, 22, need=99.0, patience=4) == 4
    # Wandering below its first best is a plateau too (restore_best keeps that best).
    wander = [100 * k / 22 for k in (9, 7, 8, 6, 9, 8, 7, 9)]
    assert _first_stop(wander, 22, need=99.0, patience=4) == 4
    rule = Plateau(need=99.0, patience=4)
    for a in flat[:5]:
        stop = rule.update(a, 22)
    assert stop and rule.best == pytest.approx(40.9, abs=0.1) and rule.upper == pytest.approx(60.5, abs=0.1)
    assert rule.note(40.2) == ("stopped at 40 s: held-out agreement 41% plateaued (95% upper bound 60%), "
                               "the budget needs >= 99%")


def test_a_rising_curve_does_not_stop():
    rising = [100 * k / 22 for k in range(5, 23)]  # one more image agrees at every check
    assert _first_stop(rising, 22, need=99.0, patience=4) is None
    # A slow rise: one image every 3 checks is still more than epsilon per 4 checks.
    slow = [100 * (9 + i // 3) / 22 for i in range(30)]
    assert _first_stop(slow, 22, need=99.0, patience=4) is None
    # A rise that stops is a plateau from where it stopped.
    rise_then_flat = [40.0, 50.0, 60.0, 70.0, 70.0, 70.0, 70.0, 70.0, 70.0]
    assert _first_stop(rise_then_flat, 100, need=99.0, patience=4) == 7


def test_a_plateau_near_the_budget_does_not_stop():
    # 21 of 22 could still be 99%: the rule does not give up on it.
    assert _first_stop([100 * 21 / 22] * 20, 22, need=99.0, patience=4) is None
    assert _first_stop([98.0] * 20, 100, need=99.0, patience=4) is None
    # Far below at 100 images (upper bound 94.5%): stops.
    assert _first_stop([90.0] * 20, 100, need=99.0, patience=4) == 4
    # ... unless the budget is looser.
    assert _first_stop([90.0] * 20, 100, need=90.0, patience=4) is None


def test_epsilon_decides_what_counts_as_progress():
    creeping = [40.0 + 0.5 * i for i in range(12)]  # +2 points per 4 checks
    assert _first_stop(creeping, 1000, need=99.0, patience=4, epsilon=1.0) is None
    assert _first_stop(creeping, 1000, need=99.0, patience=4, epsilon=2.0) == 4


def test_bad_settings_raise():
    with pytest.raises(PassError, match="patience >= 1"):
        Plateau(need=99.0, patience=0)
    with pytest.raises(PassError, match="need in"):
        Plateau(need=0.0)
