"""Typer options shared by several commands, and the preprocessing they set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import EdgeoptError
from ..load import with_preprocess
from ..model import Model

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from ..data.samples import SampleSet

ModelArg = typer.Argument(..., help="ONNX file, or zoo:NAME (see `edgeopt zoo`).")
ShapeOpt = typer.Option(
    None, "--shape",
    help="Fix an input shape (repeatable): NAME=1x3x224x224 (batch on axis 0), NAME=2x1x128:batch=1 "
         "(the batch is axis 1, e.g. a recurrent state), NAME=2x1x128:nobatch (no batch axis: fed as is).")
InputsOpt = typer.Option(
    None, "--inputs",
    help="Folder of inputs of any kind: images, .npy/.npz samples (one per file; .npz: one array per input "
         "name; fixed.npz: inputs fed with every batch) or .wav/.flac audio for 1-D models. Labels: class "
         "sub-folders, labels.json or labels.npy.")
SampleRateOpt = typer.Option(None, "--sample-rate", help="Audio inputs: the model's sample rate in Hz when its file does not say (else 16000).")

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


def load_data(m: Model, path: Path, mean: str | None = None, std: str | None = None, channels: str | None = None,
              resize_short: int | None = None, sample_rate: int | None = None) -> tuple[Model, "ImageSet | SampleSet"]:
    """The inputs in ``path`` read for ``m`` by their kind (:func:`edgeopt.data.inputs.load_inputs`),
    and the model with the --mean/--std/--channels/--resize-short preprocessing when they
    are images (:func:`preprocess_options`).

    Raises:
        EdgeoptError: preprocessing options for samples, which are fed as they are;
            DataError: see :func:`edgeopt.data.inputs.load_inputs`.
    """
    from ..data.images import ImageSet
    from ..data.inputs import load_inputs

    data = load_inputs(path, m, sample_rate=sample_rate)
    if isinstance(data, ImageSet):
        return preprocess_options(m, mean, std, channels, resize_short), data
    given = [name for name, v in (("--mean", mean), ("--std", std), ("--channels", channels),
                                  ("--resize-short", resize_short)) if v is not None]
    if given:
        raise EdgeoptError(f"{' '.join(given)} preprocess images; {path} holds samples, fed as they are: "
                           f"drop {'them' if len(given) > 1 else 'it'}")
    return m, data
