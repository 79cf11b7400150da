"""The record of one benchmark cell (:class:`BenchResult`): what was timed, how, the
latencies and what they derive to, the conditions and the memory the cell used."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .session_stats import session_p50_interval
from .stats import LatencyStats


@dataclass
class BenchResult:
    """One benchmark cell: a model on a backend at a batch size and thread count.

    Attributes:
        backend: registry name ("ort", "openvino", ...).
        backend_version: version of the runtime library ("" when unknown).
        model: the model's display name (``Model.name``).
        model_sha256: sha256 of the serialized ONNX graph that was timed.
        batch: images per inference.
        threads: intra-op threads the session was prepared with.
        prepare_ms: load/compile time of the session in ms (None if not reached).
        first_ms: latency of the first (cold) inference in ms, not in ``latencies_ms``.
        warmup_runs: untimed inferences run after the first one.
        latencies_ms: per-run latency of each steady-state inference, in ms, in order.
        stats: min/mean/std/p50/p90/p99/max, CV and the p50's 95% interval of
            ``latencies_ms`` (:class:`~edgeopt.bench.stats.LatencyStats`; None without runs).
        ms_per_image: p50 latency / batch, ms (None without runs): the headline number.
        throughput: images per second at the p50 latency = batch * 1000 / p50 (None
            without runs), so it agrees with ``ms_per_image``.
        stop_reason: "target" (min_runs and min_time reached), "max_time" (the cell's
            cap stopped it) or "" (no runs).
        machine: the environment record (:func:`~edgeopt.bench.environment.machine_info`).
        conditions: what the machine was doing during the timed runs (load, other
            processes' CPU share, steal, frequency, temperature, throttling, pinning,
            cooldown: :mod:`edgeopt.bench.conditions`); {} when the cell did not run or
            the result predates it.
        error: why the backend could not run the model, else None.
        settings: the runtime settings the timed session ran with
            (:meth:`~edgeopt.backends.base.Session.settings`; {} when not prepared).
        session_runs: timed runs of each fresh session, in order, when the cell was timed
            in several (``latencies_ms`` holds them session after session); [] for one.
        inputs: what the runs were fed: {} for random inputs of the model's InputSpecs (the
            default), else real inputs' {"kind", "source", "samples": N, "batches": feeds
            cycled} (:meth:`~edgeopt.bench.real_inputs.RealInputs.record`).
        baseline_rss_bytes: resident memory of the timing process before the session was
            prepared, bytes (None: not measured, :mod:`edgeopt.bench.rss`).
        peak_rss_bytes: its peak resident memory from then to the end of the timed runs,
            bytes; with several sessions, the session with the highest peak (and its baseline).
        rss_scope: "cell" (the peak was reset before the cell) or "process" (the peak is
            the process's since it started); "" when not measured.
        layers: per-layer times of a profiled run of the cell (``bench --profile``):
            :meth:`~edgeopt.bench.machine.layer_times.LayerTimes.to_dict`, or {"error": why};
            None when not profiled.

    ``stats``, ``ms_per_image`` and ``throughput`` are derived from ``latencies_ms``
    when the result is built, so they always agree with it.
    """

    backend: str
    backend_version: str
    model: str
    model_sha256: str
    batch: int
    threads: int
    prepare_ms: float | None = None
    first_ms: float | None = None
    warmup_runs: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    stats: LatencyStats | None = field(default=None, init=False)
    ms_per_image: float | None = field(default=None, init=False)
    throughput: float | None = field(default=None, init=False)
    stop_reason: str = ""
    machine: dict[str, Any] = field(default_factory=dict, repr=False)
    conditions: dict[str, Any] = field(default_factory=dict, repr=False)
    error: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    session_runs: list[int] = field(default_factory=list)
    inputs: dict[str, Any] = field(default_factory=dict)
    baseline_rss_bytes: int | None = None
    peak_rss_bytes: int | None = None
    rss_scope: str = ""
    layers: dict[str, Any] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self._derive()

    def _derive(self) -> None:
        if not self.latencies_ms:
            self.stats = self.ms_per_image = self.throughput = None
            return
        # With sessions, the interval is over sessions, not runs (session_stats' docstring).
        interval = session_p50_interval(self.latencies_ms, self.session_runs) if len(self.session_runs) >= 2 else None
        self.stats = LatencyStats.from_latencies(self.latencies_ms, interval=interval)
        self.ms_per_image = self.stats.p50 / self.batch
        self.throughput = self.batch * 1000.0 / self.stats.p50

    @property
    def model_rss_bytes(self) -> int | None:
        """What preparing and running the model added to the resident memory: peak - baseline,
        bytes (None when either is unknown)."""
        if self.peak_rss_bytes is None or self.baseline_rss_bytes is None:
            return None
        return self.peak_rss_bytes - self.baseline_rss_bytes

    @property
    def ok(self) -> bool:
        """True when the cell ran and has at least one timed run."""
        return self.error is None and bool(self.latencies_ms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field (``stats`` as a nested dict or None)."""
        d = asdict(self)
        d["stats"] = None if self.stats is None else self.stats.to_dict()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "BenchResult":
        """Inverse of :meth:`to_dict`; derived fields are recomputed from the latencies."""
        derived = {"stats", "ms_per_image", "throughput"}
        kwargs = {k: d[k] for k in cls.__dataclass_fields__ if k in d and k not in derived}
        kwargs["latencies_ms"] = [float(x) for x in kwargs.get("latencies_ms") or []]
        return cls(**kwargs)
