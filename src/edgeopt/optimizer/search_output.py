"""Write what ``optimize --search`` found: the chosen model, deploy.json, the Pareto front
(pareto.json and a plot), every trial, and a report that explains the choice."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..report.plots import plot_pareto
from ..report.search_report import render_search_html, render_search_markdown
from .deploy import make_deploy_record
from .._util.atomic import write_staged
from .search import SearchResult, TrialRecord


def search_summary(result: SearchResult) -> dict[str, Any]:
    """JSON-ready account of a search (the content of pareto.json).

    Keys: model, model_sha256, study (name, storage), budget_s, elapsed_s, objective,
    quality_metric ("accuracy", "agreement" or "snr"), original_accuracy, max_drop,
    max_latency_ms, max_size_bytes, batch, threads, n_eval, n_calibration, space,
    machine (ISA flags included), isa_int8 (fast int8 dot product or None), winner,
    hand_picked_best, baseline (labels), confirm_ms, speedup_vs_hand_picked,
    speedup_vs_baseline, pareto (trial dicts), trials (every trial), fallback (lines),
    float_layers ({trial label: node names kept in float}), notes.
    """
    cfg = result.config
    return {
        "model": result.model.source, "model_sha256": result.model.sha256,
        "study": {"name": result.study_name, "storage": result.storage},
        "budget_s": cfg.budget_s, "elapsed_s": result.elapsed_s, "objective": cfg.objective,
        "quality_metric": result.quality_metric, "original_accuracy": result.original_accuracy,
        "max_drop": cfg.max_drop, "max_latency_ms": cfg.max_latency_ms, "max_size_bytes": cfg.max_size_bytes,
        "batch": cfg.batch, "threads": cfg.threads, "n_eval": result.n_eval,
        "n_calibration": result.n_calibration, "space": result.space.to_dict(),
        "machine": result.machine, "isa_int8": result.isa,
        "winner": result.winner.label, "hand_picked_best": result.hand_picked_best.label,
        "baseline": result.baseline.label, "confirm_ms": result.confirm_ms,
        "speedup_vs_hand_picked": result.speedup_vs_hand_picked,
        "speedup_vs_baseline": result.speedup_vs_baseline,
        "pareto": [_trial(t) for t in result.pareto],
        "trials": [_trial(t) for t in result.trials],
        "fallback": result.fallback, "float_layers": result.float_layers, "notes": result.notes,
    }


def _trial(t: TrialRecord) -> dict[str, Any]:
    d = t.to_dict()
    d["latency_stats"] = t.attrs.get("latency_stats")
    return d


def write_search_outputs(result: SearchResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write model.onnx, deploy.json, pareto.json, pareto.png, report.md and report.html
    into ``out`` (each file replaced atomically).

    Returns:
        {kind: path} of the files written.
    """
    summary = search_summary(result)
    w = result.winner
    deploy = make_deploy_record(
        model=result.winner_model, source=result.model, backend=w.point.backend,
        precision=w.point.precision, recipe=w.point.recipe_name, threads=w.point.threads,
        batch=w.point.batch, latency_ms=w.attrs.get("latency_stats"),
        throughput_ips=w.attrs.get("throughput_ips"), speedup=result.speedup_vs_baseline,
        quality=w.quality, model_file="model.onnx",
        extra={"speedup_vs_hand_picked": result.speedup_vs_hand_picked,
               "hand_picked_best": result.hand_picked_best.label,
               "float_layers": result.float_layers.get(w.label, []),
               "search": {"study": result.study_name, "trial": w.number}},
    )

    def write(staging: Path) -> dict[str, Path]:
        files = {"model": staging / "model.onnx", "deploy": staging / "deploy.json",
                 "pareto": staging / "pareto.json", "report_md": staging / "report.md",
                 "report_html": staging / "report.html"}
        result.winner_model.save(files["model"])
        files["deploy"].write_text(json.dumps(deploy, indent=2, default=str))
        files["pareto"].write_text(json.dumps(summary, indent=2, default=str))
        plot = plot_pareto(summary, staging / "pareto.png")
        if plot is not None:
            files["plot"] = plot
        name = None if plot is None else plot.name
        files["report_md"].write_text(render_search_markdown(summary, name))
        files["report_html"].write_text(render_search_html(summary, name))
        return files

    return write_staged(out, write)
