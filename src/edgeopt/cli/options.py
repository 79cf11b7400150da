"""Typer options shared by several commands, and the preprocessing they set."""

from __future__ import annotations

import typer

from ..load import with_preprocess
from ..model import Model

ModelArg = typer.Argument(..., help="ONNX file, or zoo:NAME (see `edgeopt zoo`).")
ShapeOpt = typer.Option(None, "--shape", help="Fix an input shape: NAME=1x3x224x224 (repeatable).")

MeanOpt = typer.Option(None, "--mean", help="Per-channel mean after scaling, e.g. 0.485,0.456,0.406 (models without zoo preprocessing).")
StdOpt = typer.Option(None, "--std", help="Per-channel std after scaling, e.g. 0.229,0.224,0.225.")
ChannelsOpt = typer.Option(None, "--channels", help="Channel order the model takes: RGB, BGR or GRAY.")
ResizeShortOpt = typer.Option(None, "--resize-short", help="Resize the short side to this, then centre-crop to the input size.")


def preprocess_options(m: Model, mean: str | None, std: str | None, channels: str | None,
                       resize_short: int | None) -> Model:
    """The model with the --mean/--std/--channels/--resize-short preprocessing
    (:func:`edgeopt.load.with_preprocess`); its warning goes to stderr."""
    m, warning = with_preprocess(m, mean=mean, std=std, channels=channels, resize_short=resize_short)
    if warning:
        typer.echo(f"edgeopt: warning: {warning}", err=True)
    return m
