"""Help without Python types: every option and argument of every command is shown with a
placeholder a user reads (N, X, PATH, DIR, FILE, DURATION, or the option's name in
capitals, as argparse does), flags with none, and arguments in the usage line as MODEL
rather than ``{model}``.

Why here, once: Typer >= 0.2x prints each parameter's Python annotation (``<bool>``,
``<list[str]>``, ``<float>``) unless a metavar is set, and the argument's name in braces in
the usage line; setting a metavar on each of ~200 options would drift. :func:`plain_help`
walks the built click command tree (the root group calls it when Typer builds it) and
sets what is missing; an explicit ``metavar=`` (e.g. :func:`.options.duration_option`'s
DURATION) is kept. Older Typer on plain click reads the same metavars.
"""

from __future__ import annotations

import types
import typing
from pathlib import Path
from typing import Any

import typer

# Placeholders by the parameter's annotation (Typer >= 0.2x) or click type name (older).
_BY_TYPE: dict[Any, str] = {int: "N", float: "X", "integer": "N", "float": "X"}


def plain_help(command: Any) -> None:
    """Give every parameter of ``command`` and of its sub-commands a plain placeholder
    (see the module docstring); in place, once per built tree."""
    _plain_help_flag(command)
    for param in command.params:
        if getattr(param, "param_type_name", "") == "argument":
            _plain_argument(param)
        if param.metavar is None:
            param.metavar = metavar(param)
    for sub in getattr(command, "commands", {}).values():
        plain_help(sub)


def metavar(param: Any) -> str:
    """The placeholder of one click parameter: "" for a flag, N for an integer, X for a
    number, DIR or FILE for a path whose help says "folder" or "file" first (else PATH),
    otherwise the parameter's name in capitals (--backend BACKEND, MODEL)."""
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return ""
    annotation = _element(getattr(getattr(param, "type_descriptor", None), "annotation", None))
    type_name = getattr(getattr(param, "type", None), "name", None)
    kind = _BY_TYPE.get(annotation) or _BY_TYPE.get(type_name)
    if kind:
        return kind
    if annotation is Path or type_name == "path":
        return _path_kind(getattr(param, "help", None) or "")
    return (param.name or "value").upper()


def _element(annotation: Any) -> Any:
    """int from Optional[int], List[int], Optional[List[int]]."""
    while typing.get_origin(annotation) in (list, typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) != 1:
            return annotation
        annotation = args[0]
    return annotation


def _path_kind(help_text: str) -> str:
    """DIR or FILE by which of "folder" and "file" the help names first, else PATH."""
    text = help_text.lower()
    at = {kind: text.find(word) for kind, word in (("DIR", "folder"), ("FILE", "file"))}
    found = {k: i for k, i in at.items() if i >= 0}
    return min(found, key=found.get) if found else "PATH"


def _plain_argument(param: Any) -> None:
    """An argument shown by its placeholder alone: no type column (the name column already
    says MODEL) and MODEL or [MODEL] in the usage line, not {model}. Instance attributes
    over Typer's methods: Typer's classes cannot take a mixin by ``__class__`` assignment
    (their layouts differ)."""

    def usage_name() -> str:
        name = (param.metavar or param.name.upper()) + ("..." if param.nargs != 1 else "")
        return name if param.required else f"[{name}]"

    param.display_type_rich = lambda ctx: None
    param._usage_display_name = usage_name


def _plain_help_flag(command: Any) -> None:
    """The --help flag shows no type either (click makes that option when asked for it)."""
    make = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = make(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option


class PlainHelpGroup(typer.core.TyperGroup):
    """The root group: built with every sub-command, it plains their help (:func:`plain_help`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        plain_help(self)
