"""``edgeopt zoo``, ``edgeopt info`` and ``edgeopt profile``: what a model is and costs."""

from __future__ import annotations

from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from ..report.console_table import Printer
from .options import JsonOpt, ModelArg, ShapeOpt, in_range, json_command

out = Console()


@json_command
def zoo(as_json: bool = JsonOpt) -> None:
    """List the zoo models (zoo:NAME)."""
    from ..report.model_table import zoo_table
    from ..zoo import entries

    printer = Printer(out, as_json=as_json, command="zoo")
    printer.table(zoo_table(entries()))
    printer.close()


@json_command
def info(model: str = ModelArg, shape: Optional[List[str]] = ShapeOpt, as_json: bool = JsonOpt) -> None:
    """Input spec, opset, op histogram and provenance of a model."""
    from ..analysis.opsupport import check_runnable
    from ..errors import BackendUnavailable
    from ..report.model_table import show_info

    m = edgeopt.load_model(model, shape=shape)
    try:
        check_runnable(m)
    except BackendUnavailable as e:  # info only reads: describe the model all the same
        typer.echo(f"edgeopt: warning: {e}", err=True)
    printer = Printer(out, as_json=as_json, command="info")
    show_info(m, printer)
    printer.close()


@json_command
def profile(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size the activations and MACs are counted at."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON document instead of tables: the full "
                                 "profile (every node, data movement included) and the table's rows."),
) -> None:
    """Per-layer params, MACs, bytes and arithmetic intensity; model totals."""
    from ..report.profile_table import profile_table

    prof = edgeopt.profile(edgeopt.load_model(model, shape=shape), batch=batch)
    printer = Printer(out, as_json=as_json, command="profile")
    printer.add(**prof.to_dict())  # the document profile --json has always printed, at its top level
    printer.table(profile_table(prof))
    printer.close()
