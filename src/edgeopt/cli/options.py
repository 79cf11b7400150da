"""Typer options shared by several commands, the preprocessing they set, and the checks
every command's options go through: a number's valid range (:func:`in_range`, at parse
time), a duration's syntax (:func:`duration_option`: every option that takes a time) and
options that apply only with another one (:func:`only_with`)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import typer

from .._util.options import DURATION_SYNTAX, Bounds, parse_duration
from ..errors import EdgeoptError
from ..load import with_preprocess
from ..model import Model
from ..report.json_output import json_stdout

if TYPE_CHECKING:
    from ..bench.real_inputs import RealInputs
    from ..data.images import ImageSet
    from ..data.samples import SampleSet



def in_range(*, gt: float | None = None, ge: float | None = None, lt: float | None = None,
             le: float | None = None, example: object = None) -> Callable[[typer.CallbackParam, Any], Any]:
    """A Typer ``callback=`` that refuses a number outside its valid range (and NaN or an
    infinity) while the command line is parsed, before any work.

    Args:
        gt, ge, lt, le: the bounds (:class:`edgeopt._util.options.Bounds`), in the option's unit.
        example: a valid value for the message; default: the option's default.

    Returns:
        the callback: passes the value (or None: the option not given) through unchanged.

    Raises:
        EdgeoptError (from the callback): e.g. "--max-latency -1 is out of range: give a
            value > 0, e.g. 50".
    """
    bounds = Bounds(gt=gt, ge=ge, lt=lt, le=le)

    def check(param: typer.CallbackParam, value: Any) -> Any:
        if value is None:
            return value
        return bounds.check(value, _flag(param), param.default if example is None else example)

    return check


def _duration_text(value: Any) -> str:
    """Typer's parser for a duration option: the text as typed, parsed by the option's
    callback, which knows the option's name for the message."""
    return str(value)


def duration_option(default: str | None, *decls: str, help: str, zero: bool = False) -> Any:
    """A Typer option that takes a time written as every duration option takes it
    (:func:`edgeopt._util.options.parse_duration`: 90s, 10m, 1h, 500ms or plain seconds)
    and passes seconds (float) to the command; its help ends with that syntax.

    Args:
        default: the default as a user would type it ("120s", "0"), or None (not given).
        decls: the option's names, e.g. "--budget" (default: from the parameter name).
        help: what the time is for.
        zero: 0 is valid (e.g. --cooldown 0: no wait).

    Raises:
        EdgeoptError (while parsing): e.g. "bad --budget duration 'ten': give e.g. 90s, ...".
    """
    def seconds(param: typer.CallbackParam, value: Any) -> float | None:
        return None if value is None else parse_duration(str(value), _flag(param), allow_zero=zero)

    return typer.Option(default, *decls, parser=_duration_text, callback=seconds, metavar="DURATION",
                        help=f"{help} Duration: {DURATION_SYNTAX}.")


def _flag(param: Any) -> str:
    """The long name an option is known by ("--max-drop"), or its name for an argument."""
    return next((o for o in param.opts if o.startswith("--")), param.name.upper())


def given(ctx: typer.Context, *names: str, typed_only: bool = False) -> list[str]:
    """The flags of the options among ``names`` (parameter names, e.g. "max_drop") that
    the user set, on the command line or by an environment variable (with ``typed_only``,
    on the command line only), not left at their defaults."""
    by_name = {p.name: p for p in ctx.command.params}
    unset = ("DEFAULT", "DEFAULT_MAP", "ENVIRONMENT") if typed_only else ("DEFAULT", "DEFAULT_MAP")
    return [_flag(by_name[n]) for n in names if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") not in unset]


def only_with(ctx: typer.Context, partner: str, present: bool, *names: str, typed_only: bool = False) -> None:
    """Refuse options that only mean something with ``partner`` when it is absent, rather
    than ignore them without a word.

    Args:
        partner: what they need, as the user writes it, e.g. "--search" or "--images DIR".
        present: whether the partner is there.
        names: the parameter names of the dependent options, e.g. "budget", "objective".
        typed_only: count only options typed on the command line (an environment variable
            such as EDGEOPT_SCHEDULER configures every command, and is no request).

    Raises:
        EdgeoptError: e.g. "--budget applies only with --search: add --search or drop --budget".
    """
    lonely = [] if present else given(ctx, *names, typed_only=typed_only)
    if lonely:
        flags = " and ".join(lonely)
        raise EdgeoptError(f"{flags} {'applies' if len(lonely) == 1 else 'apply'} only with {partner}: "
                           f"add {partner} or drop {flags}")


def json_command(command: Callable[..., Any]) -> Callable[..., Any]:
    """The command, run so that with ``--json`` (its parameter ``as_json``) stdout carries
    only its JSON document: whatever a library prints goes to stderr meanwhile
    (:func:`edgeopt.report.json_output.json_stdout`)."""
    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        with json_stdout(bool(kwargs.get("as_json"))):
            return command(*args, **kwargs)

    return run


JsonOpt = typer.Option(False, "--json", help="Print one JSON document on stdout (each table's rows as objects, "
                       "and the notes) instead of tables.")
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
SampleRateOpt = typer.Option(None, "--sample-rate", callback=in_range(ge=1, example=16000), help="Audio inputs: the model's sample rate in Hz when its file does not say (else 16000).")

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


def load_real_inputs(m: Model, folder: Path, mean: str | None = None, std: str | None = None,
                     channels: str | None = None, resize_short: int | None = None,
                     sample_rate: int | None = None) -> tuple[Model, "RealInputs"]:
    """The model (with any preprocessing options) and the inputs in ``folder`` to time it on
    (``bench``, ``loadgen``), read as :func:`load_data` reads them for `optimize`.

    Raises:
        as :func:`load_data` and :func:`edgeopt.bench.real_inputs.real_inputs`.
    """
    from ..bench.real_inputs import real_inputs
    from ..data.inputs import folder_kind

    kind = folder_kind(folder)
    m, data = load_data(m, folder, mean, std, channels, resize_short, sample_rate)
    return m, real_inputs(m, data, source=str(folder), kind=kind)
