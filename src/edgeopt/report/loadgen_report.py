"""What ``edgeopt loadgen`` prints and writes: LoadGen's own verdict on the run (VALID or
INVALID with its reasons), the scenario's metric, the early-stopping estimates and the
latency percentiles, in ms; its summary and detail logs kept as LoadGen wrote them."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from .._util.atomic import write_staged
from ..bench.loadgen import PROBE_MARGIN, LoadGenRun
from ..bench.loadgen_log import DETAIL_FILE, SUMMARY_FILE
from .bench_table import ms

LOADGEN_FILES = ("loadgen.json", SUMMARY_FILE, DETAIL_FILE)
_PERCENTILES = ("p50", "p90", "p99", "p99.9")


def summary_lines(run: LoadGenRun) -> list[str]:
    """The summary as plain lines (no markup); LoadGen's own sentences are quoted whole,
    everything else fits 80 columns."""
    s, c = run.summary, run.config
    asked = [f"min duration {c.duration_s:g} s", f"min queries {c.min_queries}"]
    if c.target_qps is not None:
        probe = f" ({PROBE_MARGIN:g}x the {run.probed_qps:.4g}/s a probe measured)" if run.probed_qps else ""
        asked.insert(0, f"target {c.target_qps:.4g} QPS{probe}")
    if c.latency_bound_ms is not None:
        asked.insert(1, f"latency bound {ms(c.latency_bound_ms)} ms")
    lines = [f"LoadGen {s.scenario} ({s.mode}): {run.model} on {run.backend}",
             f"  SUT: {run.threads} threads, {run.streams} stream{'s' if run.streams > 1 else ''}, "
             + (f"{run.samples} random samples" if run.inputs == "random" else f"{run.samples} samples from {run.inputs}"),
             "  asked: " + ", ".join(asked),
             f"Result is {s.result}",
             f"  {s.metric}: {ms(s.metric_value) if '(ms)' in s.metric else f'{s.metric_value:.4g}'}"]
    lat = s.latencies_ms
    per = "per query" if s.scenario == "MultiStream" else "per sample"
    lines.append(f"  latency {per} (ms): " + "  ".join(f"{k} {ms(lat[k])}" for k in _PERCENTILES if k in lat))
    lines.extend(f"  {name}: {value:.4g}" for name, value in s.rates.items())
    if s.estimates_ms:
        lines.append("  early-stopping estimates (ms): "
                     + "  ".join(f"{k} {ms(v)}" for k, v in s.estimates_ms.items()))
    if s.early_stopping:
        lines.append("Early stopping (LoadGen):")
        lines.extend(f"  * {line}" for line in s.early_stopping)
    # the early-stopping lines are among the reasons too (for the JSON): printed once, above
    told = set(s.early_stopping)
    reasons = [r for r in s.reasons if r not in told]
    if reasons:
        lines.append("INVALID because (LoadGen):")
        lines.extend(f"  - {r}" for r in reasons)
    if s.errors and not s.errors.startswith("No errors"):
        lines.append(f"  {s.errors}")
    return lines


def print_loadgen(run: LoadGenRun, console: Console) -> None:
    """:func:`summary_lines`, the result in green (VALID) or red (INVALID)."""
    colour = "green" if run.summary.valid else "red"
    for line in summary_lines(run):
        text = escape(line)
        console.print(f"[bold {colour}]{text}[/bold {colour}]" if line.startswith("Result is") else text)


def write_loadgen_outputs(run: LoadGenRun, out_dir: Path) -> list[Path]:
    """Write ``loadgen.json`` (:meth:`LoadGenRun.to_dict`), and LoadGen's own
    ``mlperf_log_summary.txt`` and ``mlperf_log_detail.txt`` (when it wrote one) into
    ``out_dir``, all or none.

    Returns:
        the paths written.

    Raises:
        OutputError: ``out_dir`` cannot take them.
    """
    def write(staging: Path) -> dict[str, Path]:
        files = {"json": staging / "loadgen.json", "summary": staging / SUMMARY_FILE}
        files["json"].write_text(json.dumps(run.to_dict(), indent=2))
        files["summary"].write_text(run.summary.text)
        if run.summary.detail:
            files["detail"] = staging / DETAIL_FILE
            files["detail"].write_text(run.summary.detail)
        return files

    return list(write_staged(out_dir, write).values())
