"""What a suite run measured: its cells, in grid order, and the run's record (:func:`~edgeopt.
suites.run.run_suite` fills them; the report and the results history read them)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..bench.control import CellControl
from ..bench.harness import BenchResult
from ..errors import EdgeoptError
from .catalog import SuiteSpec, Variant, recipe_of
from .models import ScaledEstimates
from .plan import Group


@dataclass
class SuiteCell:
    """One cell of a suite run.

    Attributes:
        ref: zoo reference of the model; variant: its precision.
        result: the measurement; for a skipped or failed cell, ``error`` says why and
            there are no runs.
        skipped: True when the budget, not the backend, kept the cell from running.
    """

    ref: str
    variant: str
    result: BenchResult
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        """The BenchResult's dict with a ``cell`` entry (ref, variant, skipped)."""
        return {**self.result.to_dict(), "cell": {"ref": self.ref, "variant": self.variant,
                                                  "skipped": self.skipped}}


@dataclass
class SuiteRun:
    """What :func:`~edgeopt.suites.run.run_suite` measured.

    Attributes:
        spec: the suite; budget_s: its budget; elapsed_s: wall time it took.
        cells: in grid order.
        unavailable: {backend: why it is not usable where the cells run}.
        sessions: one record per prepared session: ref, variant, backend, threads,
            prepare_ms and the :data:`~edgeopt.suites.cells.SESSION_FACTS` the backend
            exposes (on a board, one per cell, with its batch and the board's name).
        machine: where the cells ran: :func:`~edgeopt.bench.environment.machine_info`
            here, or a board's record (:meth:`~edgeopt.device.target.DeviceTarget.machine`,
            with ``device`` and ``runtimes``) for a ``--device`` run.
        control: pinning and cooldown around each cell (``suite --pin --cooldown``).
    """

    spec: SuiteSpec
    budget_s: float
    elapsed_s: float = 0.0
    cells: list[SuiteCell] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)
    sessions: list[dict[str, Any]] = field(default_factory=list)
    machine: dict[str, Any] = field(default_factory=dict)
    control: CellControl = field(default_factory=CellControl)
    estimates: ScaledEstimates = field(default_factory=ScaledEstimates, repr=False)

    def prepare_estimate(self, backend: str, size_bytes: int) -> float | None:
        """Seconds preparing a model of ``size_bytes`` on ``backend`` should take, from the
        prepares measured so far in this run (:class:`~edgeopt.suites.models.ScaledEstimates`);
        None before the first. Compiling runtimes (TVM, LiteRT's converter, OpenVINO)
        spend seconds there that no cell's share accounts for."""
        return self.estimates.estimate(f"prepare {backend}", size_bytes)

    def record_session(self, g: Group, variant: str, size_bytes: int, prepare_ms: float, **facts: Any) -> None:
        """A session prepared for group ``g`` of ``variant`` (a model of ``size_bytes``) in
        ``prepare_ms``: its record in ``sessions`` (with ``facts``) and its prepare time
        for :meth:`prepare_estimate`."""
        self.estimates.record(f"prepare {g.backend}", size_bytes, prepare_ms / 1e3)
        self.sessions.append({"ref": g.ref, "variant": variant, "backend": g.backend, "threads": g.threads,
                              "prepare_ms": prepare_ms, **facts})

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "SuiteRun":
        """Rebuild a run from the ``suite.json`` that :func:`~edgeopt.report.suite_report.
        write_suite_outputs` wrote (to re-render its report).

        Raises:
            EdgeoptError: not a suite.json file.
        """
        try:
            meta = doc["meta"]
            spec_d = dict(meta["suite"])
            spec_d["variants"] = tuple(Variant(v["name"], recipe_of(v),
                                               None if v["backends"] is None else tuple(v["backends"]))
                                       for v in spec_d["variants"])
            for key in ("models", "threads", "batches"):
                spec_d[key] = tuple(spec_d[key])
            spec_d["backends"] = None if spec_d["backends"] is None else tuple(spec_d["backends"])
            cells = []
            for d in doc["results"]:
                d = dict(d)
                cell = d.pop("cell")
                cells.append(SuiteCell(cell["ref"], cell["variant"], BenchResult.from_dict(d), cell["skipped"]))
            return cls(spec=SuiteSpec(**spec_d), budget_s=meta["budget_s"], elapsed_s=meta["elapsed_s"],
                       cells=cells, unavailable=meta["unavailable"], sessions=meta["sessions"],
                       machine=meta["machine"], control=CellControl(**meta.get("control", {})))
        except (KeyError, TypeError) as e:
            raise EdgeoptError(f"not an edgeopt suite.json (missing {e}): pass the file `edgeopt suite` wrote") from e

    def meta(self) -> dict[str, Any]:
        """JSON-ready description of the run (no cells)."""
        return {"suite": asdict(self.spec), "budget_s": self.budget_s, "elapsed_s": self.elapsed_s,
                "unavailable": self.unavailable, "sessions": self.sessions, "machine": self.machine,
                "control": asdict(self.control)}
