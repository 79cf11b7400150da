"""The optimize report: one candidate table rendered as Markdown and as HTML.

Both renderers take the same rows (from :func:`candidate_rows`), so the two reports can
never disagree.
"""

from __future__ import annotations

import html
from typing import Any

COLUMNS = ("candidate", "precision", "size MB", "p50 ms", "p90 ms", "speedup",
           "agreement %", "cosine", "SNR dB", "accuracy %", "status")


def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if v == float("inf"):
            return "inf"
        return f"{v:.{digits}f}"
    return str(v)


def candidate_rows(summary: dict) -> list[list[str]]:
    """Table rows (strings) for every candidate in an optimize summary."""
    rows = []
    for c in summary["candidates"]:
        lat, q = c["latency_ms"] or {}, c["quality"] or {}
        label = f"{c['recipe']}@{c['backend']}"
        status = c["status"] if not c["reason"] else f"{c['status']}: {c['reason']}"
        if label == summary["winner"]:
            status = "**chosen**"
        rows.append([
            label, c["precision"],
            _fmt(None if c["size_bytes"] is None else c["size_bytes"] / 1e6),
            _fmt(lat.get("p50")), _fmt(lat.get("p90")),
            _fmt(c["speedup_vs_baseline"]) + ("x" if c["speedup_vs_baseline"] else ""),
            _fmt(q.get("top1_agreement"), 1), _fmt(q.get("cosine"), 5),
            _fmt(q.get("snr_db"), 1), _fmt(q.get("accuracy"), 1), status,
        ])
    return rows


def _header_lines(summary: dict) -> list[str]:
    acc = summary["original_accuracy"]
    lines = [
        f"Model: `{summary['model']}` (sha256 {summary['model_sha256'][:12]}), batch "
        f"{summary['batch']}, {summary['threads']} threads, quality budget: top-1 agreement >= "
        f"{100 - summary['max_drop']:g}%.",
        f"Quality measured on {summary['n_eval']} held-out real images against the original fp32 "
        f"model on ONNX Runtime; {summary['n_calibration']} images used for calibration."
        + (f" Original top-1 accuracy: {acc:.1f}%." if acc is not None else ""),
        f"Chosen: **{summary['winner']}**. Re-timed in alternating rounds against the baseline "
        f"{summary['baseline']}: p50 {summary['confirm_p50_ms']['winner']:.3f} ms vs "
        f"{summary['confirm_p50_ms']['baseline']:.3f} ms = **{summary['confirmed_speedup']:.2f}x**.",
    ]
    lines += summary["notes"]
    return lines


def render_markdown(summary: dict, plot_name: str | None) -> str:
    """The report as Markdown."""
    out = ["# edgeopt optimize report", ""]
    out += [line + "  " for line in _header_lines(summary)]
    out += ["", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    out += ["| " + " | ".join(r) + " |" for r in candidate_rows(summary)]
    if plot_name:
        out += ["", f"![latency vs quality]({plot_name})"]
    m = summary.get("machine") or {}
    if m:
        out += ["", f"Machine: {m.get('cpu_model', '?')}; ISA flags: {', '.join(m.get('flags', []))}."]
    return "\n".join(out) + "\n"


def render_html(summary: dict, plot_name: str | None) -> str:
    """The report as a standalone HTML page."""
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{esc(cell).replace('**', '')}</td>" for cell in r) + "</tr>"
        for r in candidate_rows(summary)
    )
    paras = "".join(f"<p>{esc(line).replace('**', '')}</p>" for line in _header_lines(summary))
    img = f'<img src="{esc(plot_name)}" alt="latency vs quality" width="720">' if plot_name else ""
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>edgeopt optimize report</title>"
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
        "td:first-child,td:last-child{text-align:left}</style></head><body>"
        f"<h1>edgeopt optimize report</h1>{paras}<table><tr>{head}</tr>{body}</table>{img}"
        "</body></html>\n"
    )
