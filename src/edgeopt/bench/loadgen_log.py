"""LoadGen's own verdict, read from the ``mlperf_log_summary.txt`` it writes.

The summary's layout (``loadgen/results.cc``, ``PerformanceSummary::LogSummary``): a
header ("Scenario : ...", "Mode : ..."), the scenario's metric line (SingleStream: "90.0th
percentile latency (ns)", MultiStream: "99.0th percentile latency (ns)", Server:
"Completed samples per second", Offline: "Samples per second"), "Result is : VALID" or
"INVALID", one "... satisfied : Yes/NO" line per constraint, "Recommendations:" bullets,
"Early Stopping Result:" bullets (with the early-stopping percentile estimates), then
"Additional Stats" ("name : value" lines, latencies in ns) and the test parameters.
Latencies are converted to ms here; rates stay in samples/s or queries/s.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import EdgeoptError

SUMMARY_FILE = "mlperf_log_summary.txt"
DETAIL_FILE = "mlperf_log_detail.txt"
_ESTIMATE = re.compile(r"Early stopping ([\d.]+)th percentile estimate: (\d+)")
_PERCENTILE = re.compile(r"^([\d.]+) ?(?:th )?percentile latency \(ns\)$")


@dataclass
class LoadGenSummary:
    """What LoadGen concluded about one test.

    Attributes:
        scenario, mode: as LoadGen ran them ("Server", "PerformanceOnly").
        result: "VALID" or "INVALID".
        metric: the scenario's metric as LoadGen names it (ns replaced by ms).
        metric_value: its value: ms for a latency, else samples/s.
        constraints: {"Min duration satisfied": True, ...} as LoadGen lists them.
        recommendations: LoadGen's advice on an INVALID run.
        early_stopping: the early-stopping lines, one per bullet.
        estimates_ms: early-stopping percentile estimates, {"p90": ms, ...}.
        latencies_ms: {"min", "mean", "max", "p50", "p90", "p95", "p97", "p99", "p99.9"} in ms
            (MultiStream: per query; Server, Offline: per sample from its issue).
        rates: the other "Additional Stats" numbers, e.g. {"QPS w/o loadgen overhead": 409.2}.
        errors: LoadGen's line about errors ("No errors encountered during test.").
        text: the summary file as LoadGen wrote it.
        detail: the detail log (``mlperf_log_detail.txt``) as LoadGen wrote it ("" when absent).
    """

    scenario: str
    mode: str
    result: str
    metric: str
    metric_value: float
    constraints: dict[str, bool] = field(default_factory=dict)
    recommendations: list[str] = field(default_factory=list)
    early_stopping: list[str] = field(default_factory=list)
    estimates_ms: dict[str, float] = field(default_factory=dict)
    latencies_ms: dict[str, float] = field(default_factory=dict)
    rates: dict[str, float] = field(default_factory=dict)
    errors: str = ""
    text: str = field(default="", repr=False)
    detail: str = field(default="", repr=False)

    @property
    def valid(self) -> bool:
        return self.result == "VALID"

    @property
    def reasons(self) -> list[str]:
        """Why the run is INVALID, in LoadGen's words ([] when VALID): each unmet
        constraint, LoadGen's recommendations and, when early stopping is unmet, its lines."""
        if self.valid:
            return []
        unmet = [f"{name}: NO" for name, ok in self.constraints.items() if not ok]
        stopping = self.early_stopping if self.constraints.get("Early stopping satisfied") is False else []
        return unmet + self.recommendations + stopping

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (without the log texts), with ``valid`` and ``reasons``."""
        d = asdict(self)
        d.pop("text"), d.pop("detail")
        return {**d, "valid": self.valid, "reasons": self.reasons}


def read_logs(folder: Path) -> LoadGenSummary:
    """The summary LoadGen wrote into ``folder``.

    Raises:
        EdgeoptError: no summary file (LoadGen stopped before writing it), or one that
            does not read as LoadGen's (:func:`parse_summary`).
    """
    path = Path(folder) / SUMMARY_FILE
    if not path.is_file():
        raise EdgeoptError(f"LoadGen wrote no {SUMMARY_FILE} in {folder}: see LoadGen's messages above")
    summary = parse_summary(path.read_text(errors="replace"))
    detail = Path(folder) / DETAIL_FILE
    summary.detail = detail.read_text(errors="replace") if detail.is_file() else ""
    return summary


def parse_summary(text: str) -> LoadGenSummary:
    """Read LoadGen's ``mlperf_log_summary.txt`` (module docstring for its layout).

    Raises:
        EdgeoptError: no "Scenario", "Result is" or metric line.
    """
    lines = text.splitlines()
    head = {k: v for k, v in map(_pair, lines) if k in ("Scenario", "Mode", "Result is")}
    try:
        mode_at = next(i for i, ln in enumerate(lines) if ln.startswith("Mode"))
        result_at = next(i for i, ln in enumerate(lines) if ln.startswith("Result is"))
        metric, value = _pair(next(ln for ln in lines[mode_at + 1:result_at] if ":" in ln))
        summary = LoadGenSummary(scenario=head["Scenario"], mode=head["Mode"], result=head["Result is"],
                                 metric=_unit_ms(metric), metric_value=_number(metric, value), text=text)
    except (StopIteration, KeyError, ValueError) as e:
        raise EdgeoptError(f"the LoadGen summary does not read as mlcommons-loadgen 6.0's ({e!r}): "
                           f"use the version pyproject.toml names") from None
    _sections(lines[result_at + 1:], summary)
    return summary


def _sections(lines: list[str], s: LoadGenSummary) -> None:
    """Constraints, recommendations, early stopping, additional stats and errors into ``s``."""
    section = ""
    for ln in lines:
        text = ln.strip()
        if text in ("Recommendations:", "Early Stopping Result:", "Additional Stats", "Test Parameters Used"):
            section = text
        elif not text or set(text) == {"="}:
            continue
        elif "errors encountered" in text.lower() or "ERROR" in text:
            s.errors = text
        elif section == "" and ":" in text:
            name, value = _pair(text)
            s.constraints[name] = value.lower() == "yes"
        elif section in ("Recommendations:", "Early Stopping Result:"):
            bullets = s.recommendations if section == "Recommendations:" else s.early_stopping
            if text.startswith("*") or not bullets:
                bullets.append(text.lstrip("* ").strip())
            else:  # LoadGen wraps a long bullet onto the next lines
                bullets[-1] += " " + text
        elif section == "Additional Stats" and ":" in text:
            _stat(*_pair(text), s)
    for line in s.early_stopping:
        for q, ns in _ESTIMATE.findall(line):
            s.estimates_ms[_pname(q)] = int(ns) / 1e6


def _stat(name: str, value: str, s: LoadGenSummary) -> None:
    m = _PERCENTILE.match(name)
    if m:
        s.latencies_ms[_pname(m.group(1))] = float(value) / 1e6
    elif name in ("Min latency (ns)", "Max latency (ns)", "Mean latency (ns)"):
        s.latencies_ms[name.split()[0].lower()] = float(value) / 1e6
    elif value:
        s.rates[name] = float(value)


def _pair(line: str) -> tuple[str, str]:
    """("name", "value") of a "name : value" line (the last colon splits)."""
    name, _, value = line.rpartition(":")
    return name.strip(), value.strip()


def _pname(q: str) -> str:
    """"90.0" -> "p90", "99.90" -> "p99.9"."""
    return "p" + (q.rstrip("0").rstrip(".") if "." in q else q)


def _unit_ms(name: str) -> str:
    return name.replace("(ns)", "(ms)")


def _number(name: str, value: str) -> float:
    """A metric's value: ns -> ms when the name says ns."""
    return float(value) / 1e6 if "(ns)" in name else float(value)
