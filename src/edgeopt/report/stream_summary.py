"""The text ``edgeopt stream`` prints after a run: fps, drops, latency, stage times."""

from __future__ import annotations

from ..stream.metrics import StreamReport


def stream_summary(report: StreamReport) -> str:
    """The report's summary line (processed fps, dropped frames, glass-to-glass latency
    p50/p90/p99 in ms), the mean ms per frame of each stage, and a line when the run was
    stopped early (Ctrl-C or a closed window)."""
    lines = [report.summary(),
             "stages (mean ms/frame): " + ", ".join(f"{k} {v:.1f}" for k, v in report.stage_ms.items())]
    if report.interrupted:
        lines.append("stopped (Ctrl-C or window closed): output kept up to the last processed frame")
    return "\n".join(lines)
