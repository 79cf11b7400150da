"""Write what ``optimize`` found (grid or search), all or nothing: the chosen model,
deploy.json, candidates.json (every trial and the choice), pareto.json (the front), the
latency-vs-quality plot and the report as Markdown and HTML.

Everything is written into a staging folder inside the output folder and moved into place
file by file with ``os.replace``, so an error half way leaves no half-written output.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .._util.atomic import write_staged
from ..optimizer.result import OptimizeResult, deploy_record, summary
from .optimize_report import PLOT, write_report_files

# Every file write_outputs may write (the plot only when there is something to plot).
OUTPUT_FILES = ("model.onnx", "deploy.json", "candidates.json", "pareto.json", PLOT, "report.md", "report.html")


def write_outputs(result: OptimizeResult, out: str | os.PathLike) -> dict[str, Path]:
    """Write model.onnx, deploy.json, candidates.json, pareto.json, latency_vs_quality.png,
    report.md and report.html into ``out`` (created if missing; each file replaced
    atomically, all or none).

    Returns:
        {kind: path} of the files written.

    Raises:
        OutputError: ``out`` cannot take them (full, read-only, a folder in the way, ...).
    """
    full = summary(result)
    front = {k: full[k] for k in ("model", "model_sha256", "objective", "quality_metric", "max_drop", "winner")}
    front["pareto"] = full["pareto"]
    deploy = deploy_record(result, "model.onnx")

    def write(staging: Path) -> dict[str, Path]:
        files = {"model": staging / "model.onnx", "deploy": staging / "deploy.json",
                 "candidates": staging / "candidates.json", "pareto": staging / "pareto.json"}
        result.winner_model.save(files["model"])
        files["deploy"].write_text(json.dumps(deploy, indent=2, default=str))
        files["candidates"].write_text(json.dumps(full, indent=2, default=str))
        files["pareto"].write_text(json.dumps(front, indent=2, default=str))
        return {**files, **write_report_files(full, staging)}

    return write_staged(out, write)
