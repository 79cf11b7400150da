"""``edgeopt device scheduler|serve|list``: the cluster of target boards (issue 17).

Imports only what the lean install (``edgeopt[device]``) has, so it runs on a board.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from ..report.console_table import ConsoleTable, Printer, columns
from .options import JsonOpt, in_range, json_command

out = Console()
app = typer.Typer(no_args_is_help=True, help="Target boards through Dask distributed: start a scheduler, serve a "
                                             "board, list the boards.")

SchedulerOpt = typer.Option("tls://127.0.0.1:8786", "--scheduler", envvar="EDGEOPT_SCHEDULER",
                            help="The scheduler's address, tls://HOST:PORT (tcp:// only on loopback unless --insecure).")
TlsOpt = typer.Option(None, "--tls", envvar="EDGEOPT_TLS", help="Folder with ca.pem, node.pem and node-key.pem "
                      "(the cluster's mutual-TLS certificates).")
InsecureOpt = typer.Option(False, "--insecure", help="Allow plain TCP to a host that is not loopback (a trusted "
                           "network only: the scheduler runs the code it is sent on every board).")


@app.command("scheduler")
def scheduler_cmd(
    host: str = typer.Option("127.0.0.1", help="Interface to listen on (0.0.0.0: every one)."),
    port: int = typer.Option(8786, callback=in_range(ge=0, le=65535), help="Port (0: any free one)."),
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
) -> None:
    """Start a Dask scheduler for the boards and the workstation (until Ctrl-C)."""
    from ..device.serve import run_scheduler

    run_scheduler(host=host, port=port, tls_dir=tls, insecure=insecure,
                  on_ready=lambda address: out.print(f"scheduler at {address}", highlight=False))


@app.command("serve")
def serve_cmd(
    name: str = typer.Option(..., "--name", help="This board's unique name, e.g. rpi4-desk."),
    kind: Optional[str] = typer.Option(None, "--kind", help="The board kind measurements ask for with --device "
                                       "(default: the name), e.g. rpi4."),
    scheduler: str = SchedulerOpt,
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
) -> None:
    """Serve this board to the cluster (until Ctrl-C).

    A Dask worker with one thread and the resource device-KIND: it runs the measurements
    sent to its kind, one at a time."""
    from ..device.serve import run_worker

    run_worker(scheduler, name=name, kind=kind, tls_dir=tls, insecure=insecure,
               on_ready=lambda address: out.print(f"board {name} (kind {kind or name}) at {address}",
                                                  highlight=False))


@app.command("certs")
def certs_cmd(
    folder: Path = typer.Argument(..., help="Empty folder for ca.pem, node.pem and node-key.pem."),
    host: Optional[list[str]] = typer.Option(None, "--host", help="An address or name of the scheduler or a board, "
                                             "besides loopback (repeat for each)."),
    days: int = typer.Option(365, callback=in_range(ge=1), help="Validity in days."),
) -> None:
    """Make the cluster's mutual-TLS certificates (with openssl): copy the folder to every
    board and pass it as --tls everywhere."""
    from ..device.certs import make_certs

    made = make_certs(folder, hosts=host or (), days=days)
    out.print(f"wrote {made}/ca.pem, node.pem, node-key.pem (valid {days} days for 127.0.0.1, localhost"
              + "".join(f", {h}" for h in host or ()) + ")", highlight=False)


@app.command("list")
@json_command
def list_cmd(
    scheduler: str = SchedulerOpt,
    tls: Optional[Path] = TlsOpt,
    insecure: bool = InsecureOpt,
    as_json: bool = JsonOpt,
) -> None:
    """The boards connected to the scheduler: name, kind, CPU, cores, runtimes, busy or idle."""
    from ..device.cluster import boards, connect

    with connect(scheduler, tls_dir=tls, insecure=insecure) as client:
        found = boards(client, profiles=True)
    printer = Printer(out, as_json=as_json, command="device list")
    printer.table(boards_table(found))
    printer.close()


def boards_table(found: list[dict]) -> ConsoleTable:
    """One row per board (:func:`edgeopt.device.cluster.boards` with profiles): name, kind,
    CPU, cores, runtimes, measured peaks and state; a note when a board has no peaks."""
    table = ConsoleTable(f"{len(found)} board{'s' * (len(found) != 1)}",
                         columns(("name", "name"), ("kind", "name"), ("cpu", "text"), "cores", ("runtimes", "text"),
                                 "measured peaks", ("state", "text")))
    for b in found:
        machine = b.get("profile", {}).get("machine", {})
        runtimes = b.get("profile", {}).get("runtimes", {})
        peaks = b.get("profile", {}).get("peaks")
        table.add_row(b["name"], b["kind"], f"{machine.get('cpu_model', '?')} ({machine.get('arch', '?')}"
                      + (", emulated" if machine.get("emulated") else "") + ")",
                      str(machine.get("usable_cpus") or machine.get("logical_cpus") or "?"),
                      ", ".join(f"{k} {v}" for k, v in runtimes.items()) or "none",
                      _peaks(peaks),
                      f"busy: {b['busy']}" if b["busy"] else "idle")
    if any(not b.get("profile", {}).get("peaks") for b in found):
        table.notes.append("-: no measured peaks on that board: run `edgeopt machine` there (roofline and energy "
                           "then read them)")
    return table


def _peaks(peaks: dict | None) -> str:
    """"24.0 GFLOP/s, 12.8 GB/s" from a board's measured peaks, "-" when it has none."""
    if not peaks:
        return "-"
    bandwidth = peaks.get("bandwidth_gbs")
    return f"{peaks['fp32_gflops']:.1f} GFLOP/s" + ("" if bandwidth is None else f", {bandwidth:.1f} GB/s")
