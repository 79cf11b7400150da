"""The study every strategy writes into: Optuna trials read back as :class:`TrialRecord`.

One trial measures one :class:`~edgeopt.optimizer.space.Point`. What was measured lives in
the trial's user attributes (so it survives a resume and is shared between worker
processes), and :func:`records` turns them back into records that the choice, the
fallback, the reports and the JSON outputs all read.

Optuna (Akiba et al., "Optuna: A Next-generation Hyperparameter Optimization Framework",
KDD 2019) supplies the storage (in memory, or any SQLAlchemy URL: a SQLite file, PostgreSQL
for several machines) and the samplers.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass, field
from typing import Any

from ..errors import EdgeoptError
from .space import Point
from .storage import display_url, open_storage

# The measurements a trial records (and a repeat of a point copies from the first trial).
MEASURED_ATTRS = ("p50_ms", "p90_ms", "latency_ms", "per_image_ms", "size_bytes", "drop", "drop_bound", "quality", "quality_reason",
                  "constraints", "latency_stats", "throughput_ips", "passes", "timing")


@dataclass
class TrialRecord:
    """One trial as stored in the study (also what candidates.json and the report list).

    Attributes:
        number: Optuna trial number.
        point: what was built and how it ran.
        state: "complete", "pruned" (stopped early: hopeless or out of budget), "failed".
        feasible: complete and within every constraint.
        reason: why pruned, failed or infeasible ("" otherwise).
        latency_ms: the objective statistic (p50 or p90) at the trial's batch, ms, or None.
        p50_ms, p90_ms: latency percentiles at the trial's batch, ms, or None.
        per_image_ms: latency / batch, ms.
        size_bytes: ONNX file size, bytes, or None.
        drop: quality drop (points, or dB below the SNR floor; see
            :class:`~edgeopt.optimizer.measure.Measurer`), or None.
        quality: the QualityReport as a dict, or None.
        origin: "hand-picked", "grid", "sampled", "fallback" or "qat" (:mod:`.qat_step`).
        seconds: wall time the trial took.
        duplicate_of: the number of the earlier trial of the same point whose
            measurement this trial reused, or None.
        attrs: the trial's raw Optuna user attributes.
    """

    number: int
    point: Point
    state: str
    feasible: bool = False
    reason: str = ""
    latency_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    per_image_ms: float | None = None
    size_bytes: int | None = None
    drop: float | None = None
    quality: dict | None = None
    origin: str = "sampled"
    seconds: float = 0.0
    duplicate_of: int | None = None
    attrs: dict = field(default_factory=dict, repr=False)

    @property
    def label(self) -> str:
        """Recipe, backend and settings, e.g. "int8-nncf@openvino t2 b1"."""
        return self.point.label

    @property
    def status(self) -> str:
        """"accepted" (feasible), "rejected" (measured or stopped, outside a budget) or
        "failed" (a pass or the backend could not build or run it)."""
        if self.state == "failed":
            return "failed"
        return "accepted" if self.feasible else "rejected"

    @property
    def measured(self) -> bool:
        """Complete and measured in this trial (not a repeat of an earlier one)."""
        return self.state == "complete" and self.duplicate_of is None

    @property
    def judged_drop(self) -> float | None:
        """The drop the quality budget was judged on: its upper confidence bound when the
        measurer gave one (:mod:`edgeopt.optimizer.confidence`), else the point estimate."""
        bound = self.attrs.get("drop_bound")
        return self.drop if bound is None else bound

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (with the label, recipe, status, passes, latency statistics, the
        conditions of the measurement, the board that measured it (``device``, None here),
        drop_bound: the drop's upper confidence bound, or None, and timing: "full", "short"
        (a few runs: the trial was already out of the quality budget) or None)."""
        d = dataclasses.asdict(self)
        d.pop("attrs")
        d["point"] = self.point.to_dict()
        d["label"] = self.label
        d["recipe"] = self.point.recipe_name
        d["status"] = self.status
        d["passes"] = self.attrs.get("passes")
        d["latency_stats"] = self.attrs.get("latency_stats")
        d["conditions"] = self.attrs.get("conditions")
        d["device"] = self.attrs.get("device")
        d["drop_bound"] = self.attrs.get("drop_bound")
        d["timing"] = self.attrs.get("timing")  # "short": over the quality budget, timed in a few runs only
        return d


def open_study(storage: str | None, name: str, *, sampler: Any, n_objectives: int, resume: bool) -> Any:
    """Create (or, with ``resume``, load) the Optuna study ``name`` in ``storage``.

    Args:
        storage: a SQLAlchemy URL (opened by :func:`edgeopt.optimizer.storage.open_storage`,
            heartbeat on), or None for memory.
        sampler: the strategy's Optuna sampler.
        n_objectives: 2 (latency, drop) or 3 (and size); all minimised.

    Raises:
        EdgeoptError: the storage cannot be used (see
            :func:`~edgeopt.optimizer.storage.check_storage`), the study exists and
            ``resume`` is off, does not exist and ``resume`` is on, or has other objectives.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    # multivariate/group TPE and constraints are marked experimental in Optuna.
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    rdb = None if storage is None else open_storage(storage)
    shown = "memory" if storage is None else display_url(storage)
    exists = rdb is not None and name in {s.study_name for s in rdb.get_all_studies()}
    if exists and not resume:
        raise EdgeoptError(f"a search named {name!r} already exists in {shown}: pass --resume to "
                           f"continue it, or another --out or --study-name")
    if resume and not exists:
        raise EdgeoptError(f"no search named {name!r} in {shown} to resume: drop --resume")
    try:
        study = optuna.create_study(storage=rdb, study_name=name, sampler=sampler,
                                    directions=["minimize"] * n_objectives, load_if_exists=resume)
    except ValueError as e:
        raise EdgeoptError(f"cannot continue search {name!r}: {e} (same objectives needed)") from None
    if len(study.directions) != n_objectives:
        raise EdgeoptError(f"search {name!r} has {len(study.directions)} objectives, this run asks for "
                           f"{n_objectives}: resume with the same --size-objective setting")
    return study


def records(study: Any) -> list[TrialRecord]:
    """TrialRecords of every finished trial, by number (running ones are skipped)."""
    import optuna

    states = {optuna.trial.TrialState.COMPLETE: "complete", optuna.trial.TrialState.PRUNED: "pruned",
              optuna.trial.TrialState.FAIL: "failed"}
    out = []
    for t in study.get_trials(deepcopy=False):
        if t.state not in states or "point" not in t.user_attrs:
            continue
        a = t.user_attrs
        state = "failed" if a.get("failed") else states[t.state]
        constraints = a.get("constraints")
        feasible = state == "complete" and constraints is not None and all(c <= 0 for c in constraints)
        reason = a.get("reason", "")
        if t.state == optuna.trial.TrialState.FAIL and not reason:
            reason = "the run stopped before this trial finished (killed?)"
        if state == "complete" and not feasible:
            reason = infeasible_reason(a)
        out.append(TrialRecord(
            number=t.number, point=Point(**a["point"]), state=state, feasible=feasible, reason=reason,
            latency_ms=a.get("latency_ms"), p50_ms=a.get("p50_ms"), p90_ms=a.get("p90_ms"),
            per_image_ms=a.get("per_image_ms"), size_bytes=a.get("size_bytes"), drop=a.get("drop"),
            quality=a.get("quality"), origin=a.get("origin", "sampled"), seconds=a.get("seconds", 0.0),
            duplicate_of=a.get("duplicate_of"), attrs=dict(a),
        ))
    return out


def infeasible_reason(attrs: dict) -> str:
    """Why a complete trial is outside the constraints, from its recorded attributes."""
    c = attrs.get("constraints", [])
    parts = []
    if c and c[0] > 0:
        parts.append(attrs.get("quality_reason") or
                     f"quality drop {attrs.get('drop', float('nan')):.2f} points > budget by {c[0]:.2f}")
    if len(c) > 1 and c[1] > 0:
        parts.append(f"latency {attrs.get('latency_ms', float('nan')):.2f} ms over --max-latency by {c[1]:.2f} ms")
    if len(c) > 2 and c[2] > 0:
        parts.append(f"size {attrs.get('size_bytes')} bytes over --max-size by {c[2]:.0f}")
    return "; ".join(parts) or "outside the constraints"


def float_versions(recs: list[TrialRecord], point: Point) -> list[TrialRecord]:
    """The measured fp32 trials of ``point``'s model before its precision change (same
    pruning), on any backend."""
    return [r for r in recs if r.measured and r.point.precision == "fp32"
            and (r.point.prune, r.point.prune_scope) == (point.prune, point.prune_scope)]


def best(recs: list[TrialRecord]) -> TrialRecord | None:
    """The fastest feasible measured trial (per image), or None."""
    feasible = [r for r in recs if r.feasible and r.duplicate_of is None]
    return min(feasible, key=lambda r: r.per_image_ms) if feasible else None
