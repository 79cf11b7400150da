"""What a pass promises about its result: the output tolerance a registered pass states
(exact, relative, agreement or structural), checked by the pass conformance template.
"""

from __future__ import annotations

from dataclasses import dataclass


EXACT = "exact"
RELATIVE = "relative"
AGREEMENT = "agreement"
STRUCTURAL = "structural"
TOLERANCE_KINDS = (EXACT, RELATIVE, AGREEMENT, STRUCTURAL)


@dataclass(frozen=True)
class Tolerance:
    """What a pass promises about its result's outputs, compared with the outputs of the
    Model it was given, on the same inputs (both graphs evaluated exactly, e.g. by the
    ``reference`` backend). tests/test_pass_conformance.py checks every registered pass
    against it.

    Kinds and the check each one means, per graph output ``y`` of the input Model and
    ``y'`` of the result (float arrays of the same shape, (N, ...)):

    - ``"exact"``: equal up to float32 rounding (the pass only reorders or fuses
      arithmetic): ``max |y' - y| <= rtol * (max(y) - min(y)) + atol``.
    - ``"relative"``: the same bound, for a pass that lowers precision on purpose; ``rtol``
      states the precision kept (fp16: 11 significant bits per op).
    - ``"agreement"``: each sample's output, flattened, has cosine similarity >= ``cosine``
      with the original's; for class scores (2-D, (N, K) with K >= 2) the fraction of
      samples with the same top-1 class is >= ``top1``; and, when ``rtol`` is given,
      ``max |y' - y| <= rtol * (max(y) - min(y)) + atol`` bounds the largest move (cosine
      and top-1 cannot see an output scaled by a wrong factor). For passes that round
      values (int8), where single elements may move by a quantization step.
    - ``"structural"``: no numeric promise: the pass changes outputs by design, or keeps
      them only on trained weights; ``why`` says which. Names, order, symbolic batch
      dimension and a valid graph are promised by every pass whatever the kind.

    Attributes:
        kind: one of :data:`TOLERANCE_KINDS`.
        rtol: bound on the largest error relative to the output's range (dimensionless):
            required by "exact"/"relative", optional for "agreement" (0: no bound).
        atol: absolute slack of that bound in output units, for outputs whose range is ~0.
        cosine: "agreement": lowest cosine similarity per sample, in [-1, 1].
        top1: "agreement": lowest top-1 agreement, a fraction in [0, 1].
        why: one line on what the numbers rest on (measured where, on what), or why
            there are none.

    Raises:
        ValueError: unknown kind, values outside their range, numbers given to a kind
            that does not use them, or a "structural" tolerance without ``why``.
    """

    kind: str
    rtol: float = 0.0
    atol: float = 0.0
    cosine: float = -1.0
    top1: float = 0.0
    why: str = ""

    def __post_init__(self) -> None:
        if self.kind not in TOLERANCE_KINDS:
            raise ValueError(f"tolerance kind {self.kind!r} is unknown: choose from "
                             f"{', '.join(TOLERANCE_KINDS)}")
        if self.rtol < 0 or self.atol < 0 or (self.kind == STRUCTURAL and (self.rtol or self.atol)) or (
                self.kind in (EXACT, RELATIVE) and not self.rtol):
            raise ValueError(f"rtol/atol >= 0: rtol > 0 for the kinds {EXACT} and {RELATIVE}, "
                             f"none for {STRUCTURAL}")
        if not -1.0 <= self.cosine <= 1.0 or not 0.0 <= self.top1 <= 1.0 or (
                self.kind != AGREEMENT and (self.cosine != -1.0 or self.top1)):
            raise ValueError(f"cosine in [-1, 1] and top1 in [0, 1], only for the kind {AGREEMENT}")
        if self.kind == STRUCTURAL and not self.why:
            raise ValueError("a structural tolerance says why there is no numeric promise")

    def __str__(self) -> str:
        """One line for listings, e.g. "exact: max err <= 1e-05 x range + 1e-06"."""
        bound = f"max err <= {self.rtol:g} x range" + (f" + {self.atol:g}" if self.atol else "")
        if self.kind in (EXACT, RELATIVE):
            return f"{self.kind}: {bound}"
        if self.kind == AGREEMENT:
            text = f"{self.kind}: cosine >= {self.cosine:g} per sample, top-1 >= {self.top1:.0%}"
            return text + (f", {bound}" if self.rtol else "")
        return f"{self.kind}: {self.why}"
