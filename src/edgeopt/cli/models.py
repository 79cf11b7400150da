"""``edgeopt zoo``, ``edgeopt info`` and ``edgeopt profile``: what a model is and costs."""

from __future__ import annotations

import json
from typing import List, Optional

import typer
from rich.console import Console

import edgeopt

from .options import ModelArg, ShapeOpt, in_range

out = Console()


def zoo() -> None:
    """List the zoo models (zoo:NAME)."""
    from ..report.model_table import print_zoo
    from ..zoo import entries

    print_zoo(entries(), out)


def info(model: str = ModelArg, shape: Optional[List[str]] = ShapeOpt) -> None:
    """Input spec, opset, op histogram and provenance of a model."""
    from ..analysis.opsupport import check_runnable
    from ..errors import BackendUnavailable
    from ..report.model_table import print_info

    m = edgeopt.load_model(model, shape=shape)
    try:
        check_runnable(m)
    except BackendUnavailable as e:  # info only reads: describe the model all the same
        typer.echo(f"edgeopt: warning: {e}", err=True)
    print_info(m, out)


def profile(
    model: str = ModelArg,
    shape: Optional[List[str]] = ShapeOpt,
    batch: int = typer.Option(1, callback=in_range(ge=1), help="Batch size the activations and MACs are counted at."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Per-layer params, MACs, bytes and arithmetic intensity; model totals."""
    from ..report.profile_table import print_profile

    prof = edgeopt.profile(edgeopt.load_model(model, shape=shape), batch=batch)
    if as_json:
        print(json.dumps(prof.to_dict(), indent=2))
    else:
        print_profile(prof, out)
