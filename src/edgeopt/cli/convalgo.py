"""``edgeopt convalgo MODEL``: convolution algorithms per conv layer (counts, memory, time)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console

from .._util.outputs import check_outputs
from ..analysis.convalgo import ALL, analyze_model, parse_algorithms, wins
from .._util.resources import check_threads
from ..analysis.memory import check_fits
from ..errors import EdgeoptError
from ..load import load_model
from ..report.console_table import Printer
from .options import JsonOpt, ModelArg, ShapeOpt, duration_option, in_range, json_command

console = Console()


@json_command
def command(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    algorithms: str = typer.Option(",".join(ALL), help="Algorithms, comma-separated: " + ", ".join(ALL) + "."),
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size of the layer inputs."),
    max_seconds: float = duration_option("120s", "--max-seconds", help="Time budget for all timings; runs estimated to exceed their share are skipped (and said so)."),
    repeats: int = typer.Option(3, callback=in_range(ge=1), help="Best of this many runs per algorithm and layer."),
    threads: int = typer.Option(1, callback=in_range(ge=1), help="BLAS threads during the timings (numpy's FFT is single-threaded)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Also write the results as JSON to this file."),
    as_json: bool = JsonOpt,
) -> None:
    """Direct, im2col+GEMM, Winograd and FFT convolution per conv layer: multiplications, extra memory, measured time, fastest."""
    from ..report.convalgo_table import convalgo_table
    from ..report.json_file import write_json

    check_outputs(inputs=(model,), files=[("--out", out)])
    names = parse_algorithms(algorithms)
    check_threads(threads)
    m = load_model(model, shape=shape)
    if batch >= 1:  # analyze_model refuses the others in its own words
        check_fits(m, batch)
    layers = analyze_model(m, batch=batch, algorithms=names, max_seconds=max_seconds, repeats=repeats,
                           threads=threads)
    if not layers:
        raise EdgeoptError(f"{m.name} has no Conv layers: convalgo studies convolutions, pick a CNN")
    printer = Printer(console, as_json=as_json, command="convalgo")
    printer.table(convalgo_table(layers, names,
                                 f"{m.name}: convolution algorithms (batch {batch}, {threads} thread(s), NumPy)"))
    if out is not None:
        write_json(out, {"model": m.name, "batch": batch, "threads": threads, "repeats": repeats,
                         "algorithms": list(names), "wins": wins(layers), "layers": [lay.to_dict() for lay in layers]})
        printer.line(f"wrote {out}")
    printer.close()
