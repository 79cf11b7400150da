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
from typing import Callable

from ..bench.environment import machine_info
from ..report.optimize_report import render_html, render_markdown
from ..report.plots import plot_tradeoff
from ..model import Model
from .select import OptimizeResult, result_summary

DEPLOY_SCHEMA = 1


def make_deploy_record(*, model: Model, source: Model, backend: str, precision: str, recipe: str,
                       threads: int, batch: int, latency_ms: dict, throughput_ips: float | None,
                       speedup: float, quality: dict | None, model_file: str,
                       extra: dict | None = None) -> dict:
    """The deploy.json content: how to run ``model`` and what it measured.

    Keys: schema, model_file, source, source_sha256, model_sha256, backend, precision,
    recipe, passes, threads, batch, inputs (name, shape at batch 1, dtype, layout),
    outputs, preprocess, labels, latency_ms (min/mean/p50/p90/p99/max at the batch),
    throughput_ips, speedup_vs_original, quality (vs the original fp32), machine (with
    the CPU's ISA flags), and ``extra``'s keys.
    """
    record = {
        "schema": DEPLOY_SCHEMA,
        "model_file": model_file,
        "source": source.source,
        "source_sha256": source.source_sha256,
        "model_sha256": model.sha256,
        "backend": backend,
        "precision": precision,
        "recipe": recipe,
        "passes": list(model.passes),
        "threads": threads,
        "batch": batch,
        "inputs": [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype, "layout": s.layout}
                   for s in model.inputs],
        "outputs": model.output_names,
        "preprocess": None if model.preprocess is None else model.preprocess.to_dict(),
        "labels": model.labels,
        "latency_ms": latency_ms,
        "throughput_ips": throughput_ips,
        "speedup_vs_original": speedup,
        "quality": quality,
        "machine": machine_info(),
    }
    record.update(extra or {})
    return record


def deploy_record(result: OptimizeResult, model_file: str) -> dict:
    """The deploy.json of an optimize run (see :func:`make_deploy_record`)."""
    w = result.winner
    return make_deploy_record(
        model=w.model, source=result.model, backend=w.backend, precision=w.recipe.precision,
        recipe=w.recipe.name, threads=result.config.threads, batch=result.config.batch,
        latency_ms=w.bench.stats.to_dict(), throughput_ips=w.bench.throughput,
        speedup=result.confirmed_speedup, quality=w.quality.to_dict() if w.quality is not None else None,
        model_file=model_file,
    )


def write_outputs(result: OptimizeResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write model.onnx, deploy.json, candidates.json, report.md, report.html and
    latency_vs_quality.png into ``out`` (created if missing).

    Returns:
        {kind: path} of the files written.
    """
    summary = result_summary(result)
    summary["machine"] = machine_info()

    def write(staging: Path) -> dict[str, Path]:
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
        return files

    return write_staged(out, write)
