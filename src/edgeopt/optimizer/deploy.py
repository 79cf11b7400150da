"""Write the optimize outputs: chosen model, deploy.json, candidates.json, reports, plot.

Everything is written into a temporary folder beside ``out`` and then moved into place
file by file with ``os.replace``, so an error half way leaves no half-written output.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..bench.machine import machine_info
from ..report.optimize_report import render_html, render_markdown
from ..report.plots import plot_tradeoff
from .select import OptimizeResult, result_summary

DEPLOY_SCHEMA = 1


def deploy_record(result: OptimizeResult, model_file: str) -> dict:
    """The deploy.json content: how to run the chosen model and what it measured.

    Keys: schema, model_file, source, backend, precision, recipe, passes, threads,
    batch, inputs (name, shape at batch 1, dtype), outputs, preprocess, labels,
    latency_ms (min/mean/p50/p90/p99/max at the batch), throughput_ips,
    speedup_vs_original, quality (vs the original fp32), machine.
    """
    w = result.winner
    stats = w.bench.stats
    return {
        "schema": DEPLOY_SCHEMA,
        "model_file": model_file,
        "source": result.model.source,
        "source_sha256": result.model.source_sha256,
        "model_sha256": w.model.sha256,
        "backend": w.backend,
        "precision": w.recipe.precision,
        "recipe": w.recipe.name,
        "passes": list(w.model.passes),
        "threads": result.config.threads,
        "batch": result.config.batch,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype, "layout": s.layout}
                   for s in w.model.inputs],
        "outputs": w.model.output_names,
        "preprocess": None if w.model.preprocess is None else w.model.preprocess.to_dict(),
        "labels": w.model.labels,
        "latency_ms": stats.to_dict(),
        "throughput_ips": w.bench.throughput,
        "speedup_vs_original": result.confirmed_speedup,
        "quality": w.quality.to_dict() if w.quality is not None else None,
        "machine": machine_info(),
    }


def write_outputs(result: OptimizeResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write model.onnx, deploy.json, candidates.json, report.md, report.html and
    latency_vs_quality.png into ``out`` (created if missing).

    Returns:
        {kind: path} of the files written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summary = result_summary(result)
    summary["machine"] = machine_info()
    staging = Path(tempfile.mkdtemp(dir=out, prefix=".staging-"))
    try:
        files = {
            "model": staging / "model.onnx",
            "deploy": staging / "deploy.json",
            "candidates": staging / "candidates.json",
            "report_md": staging / "report.md",
            "report_html": staging / "report.html",
        }
        result.winner.model.save(files["model"])
        files["deploy"].write_text(json.dumps(deploy_record(result, "model.onnx"), indent=2))
        files["candidates"].write_text(json.dumps(summary, indent=2, default=str))
        plot = plot_tradeoff(summary, staging / "latency_vs_quality.png")
        if plot is not None:
            files["plot"] = plot
        plot_name = plot.name if plot is not None else None
        files["report_md"].write_text(render_markdown(summary, plot_name))
        files["report_html"].write_text(render_html(summary, plot_name))
        final = {}
        for kind, path in files.items():
            target = out / path.name
            os.replace(path, target)
            final[kind] = target
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)
