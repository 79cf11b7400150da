"""The ``edgeopt`` Typer app: the root ``--debug`` option, every command, and :func:`main`.

Each command module parses its options, calls :mod:`edgeopt` and prints through
:mod:`edgeopt.report`; heavy libraries are imported inside the commands, so ``edgeopt
--help`` stays fast. Bad input raises an EdgeoptError, which :func:`main` turns into one
line on stderr and exit status 2 (a traceback only with ``--debug``).
"""

from __future__ import annotations

import sys

import typer

try:  # typer >= 0.2x carries its own copy of click, whose exceptions are not click's
    from typer._click import exceptions as click_errors
except ImportError:  # pragma: no cover - older typer on plain click
    from click import exceptions as click_errors

from .._util.requires import missing_extra_line
from .._util.outputs import WRITE_ERRNOS, write_error
from ..errors import EdgeoptError
from .helptext import PlainHelpGroup
from . import (bench, compress, convalgo, dataflow, demo, device, energy, loadgen, machine, models, optimize, roofline,
               stream)

app = typer.Typer(
    add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False, cls=PlainHelpGroup,
    help="edgeopt: profile, compress, benchmark and choose the fastest CNN that stays right, on this CPU.",
)
_state = {"debug": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _state["debug"] = debug


# In the order `edgeopt --help` lists them.
app.command("zoo")(models.zoo)
app.command("info")(models.info)
app.command("profile")(models.profile)
app.command("demo-images")(demo.demo_images_cmd)
app.command("bench")(bench.bench)
app.command("apply")(compress.apply_cmd)
app.command("prune")(compress.prune_cmd)
app.command("compress-size")(compress.compress_size_cmd)
app.command("optimize")(optimize.optimize_cmd)
app.command("loadgen")(loadgen.command)
app.command("suite")(bench.suite)
app.command("compare")(bench.compare)
app.command("history")(bench.history)
app.command("machine")(machine.command)
app.command("roofline")(roofline.command)
app.command("energy")(energy.command)
app.command("dataflow")(dataflow.command)
app.command("convalgo")(convalgo.command)
app.command("stream")(stream.command)
app.add_typer(device.app, name="device")


def _usage_line(e: click_errors.UsageError) -> str:
    """Click's usage error (missing argument, bad value, unknown option) as one line that
    names the problem and where the help is."""
    msg = e.format_message().strip().rstrip(".").replace("\n", " ")
    where = e.ctx.command_path if e.ctx is not None else "edgeopt"
    return f"{msg[:1].lower()}{msg[1:]}: see `{where} --help`"


def main() -> None:
    """Console entry point: run the app; EdgeoptError, usage errors, a library the
    install's extras left out (:mod:`edgeopt._util.requires`) and the OSErrors a user fixes
    (disk full, read-only, permission, size limit, a path in the way) -> one line on
    stderr, exit 2."""
    from .._util.deadline import mark_command_start

    # A command's --budget counts from when the user started it: from the process's start
    # when this process is the command (console script, python -m edgeopt.cli), else (a
    # caller's process, e.g. the tests') from here.
    mark_command_start(process_start=getattr(sys.modules.get("__main__"), "main", None) is main)
    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click_errors.UsageError as e:
        if isinstance(e, getattr(click_errors, "NoArgsIsHelpError", ())):
            print(e.format_message())  # the command's help, as `edgeopt CMD` alone has always shown
        else:
            print(f"edgeopt: error: {_usage_line(e)}", file=sys.stderr)
        sys.exit(2)
    except typer.Abort:
        print("edgeopt: interrupted", file=sys.stderr)
        sys.exit(130)
    except EdgeoptError as e:
        if _state["debug"]:
            raise
        print(f"edgeopt: error: {e}", file=sys.stderr)
        sys.exit(2)
    except ModuleNotFoundError as e:  # a lean install (edgeopt[device]) reaching for a library it left out
        line = missing_extra_line(e)
        if _state["debug"] or line is None:
            raise
        print(f"edgeopt: error: {line}", file=sys.stderr)
        sys.exit(2)
    except OSError as e:  # a safety net: the writers raise OutputError for these themselves
        if _state["debug"] or e.errno not in WRITE_ERRNOS:
            raise
        print(f"edgeopt: error: {write_error(e, e.filename or 'a file', verb='use')}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("edgeopt: interrupted", file=sys.stderr)
        sys.exit(130)
