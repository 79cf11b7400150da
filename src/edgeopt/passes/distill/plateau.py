"""When to give up on a distillation: its agreement has plateaued far below what is needed.

A caller that judges the result against a quality budget (optimize: a candidate passes
only when its top-1 agreement with the original is at least ``100 - max_drop`` %) knows
the agreement it needs. A recovery whose held-out agreement stopped rising far below it
will not pass, and every further second spent on it is wasted (the demonstration spent
about 4 of its 6.5 minutes training pruned candidates that ended at 28-52%).

The rule, checked at every evaluation of the held-out images (``k`` of ``n`` agree):

1. **plateau**: the best agreement so far has not risen by more than ``epsilon`` points
   over the last ``patience`` evaluations (the one before training counts);
2. **far below**: the one-sided 95% upper confidence bound of that best agreement is
   below the agreement needed. The bound is the exact (Clopper-Pearson) one, not the
   Wilson bound the optimizer passes candidates with: near 100% on few images Wilson's
   upper end is too low (21 of 22 images: Wilson 99.0%, exact 99.8%, and a model that
   truly agrees 99% scores 21 of 22 or worse one time in five), and giving up on a
   candidate that can still win is the error to avoid.

Both must hold: a curve still rising is left to rise; a flat curve whose best could, at
this sample size, still be as good as needed is left to go on too (with 22 held-out
images: 21 agreeing has an upper bound of 99.8%, 20 agreeing 98.4%, 9 agreeing 60.5%). The returned weights
are the best ones seen either way (``restore_best``), so stopping loses nothing already
won. The held-out images come from the training data, not the evaluation set: the bound
says the recovery falls short on the data it learns from, where it does best.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..._util.binomial import rate_bound
from ...errors import PassError


def agreement_upper(k: int, n: int, confidence: float) -> float:
    """One-sided upper confidence bound (%) of an agreement of ``k`` of ``n`` images: the
    exact binomial (Clopper-Pearson 1934, Biometrika 26) bound, the upper end of the
    two-sided ``2 * confidence - 1`` interval (``scipy.stats.binomtest``).

    Raises:
        PassError: n < 1 or k outside 0..n.
    """
    return 100.0 * rate_bound(k, n, confidence, upper=True, method="exact", error=PassError)


@dataclass
class Plateau:
    """The give-up rule of the module docstring, fed one evaluation at a time.

    Args:
        need: top-1 agreement (%) the caller's budget needs, in (0, 100].
        patience: evaluations the best agreement must go without rising (>= 1).
        epsilon: rise (points) that counts as progress (>= 0).
        confidence: one-sided confidence of the upper bound, in (0.5, 1).

    Attributes:
        best: best agreement (%) seen; upper: its upper bound (%), after :meth:`update`.
    """

    need: float
    patience: int = 3
    epsilon: float = 1.0
    confidence: float = 0.95
    best: float = field(default=-1.0, init=False)
    upper: float = field(default=100.0, init=False)
    _bests: list[float] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (0 < self.need <= 100 and self.patience >= 1 and self.epsilon >= 0 and 0.5 < self.confidence < 1):
            raise PassError("bad plateau rule: need in (0, 100], patience >= 1, epsilon >= 0, "
                            "confidence in (0.5, 1)")

    def update(self, agreement: float, n: int) -> bool:
        """Take one evaluation (``agreement`` % of ``n`` held-out images); True when the
        distillation should stop (plateaued and far below :attr:`need`)."""
        if agreement > self.best:
            self.best = agreement
            self.upper = agreement_upper(round(agreement * n / 100.0), n, self.confidence)
        self._bests.append(self.best)
        if len(self._bests) <= self.patience:
            return False
        risen = self.best - self._bests[-1 - self.patience]
        return risen <= self.epsilon and self.upper < self.need

    def note(self, seconds: float) -> str:
        """Why training stopped, in words: "stopped at 40 s: held-out agreement 41% plateaued
        (95% upper bound 60%), the budget needs >= 99%"."""
        return (f"stopped at {seconds:.0f} s: held-out agreement {self.best:.0f}% plateaued "
                f"({100 * self.confidence:g}% upper bound {self.upper:.0f}%), the budget needs >= {self.need:g}%")
