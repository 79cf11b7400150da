"""The workstation's client of the device cluster: connect to the scheduler, list the boards."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import EdgeoptError
from .._util.errorline import error_line
from .._util.requires import require
from . import board
from .security import scheduler_address, security

if TYPE_CHECKING:
    from distributed import Client

CONNECT_TIMEOUT_S = 10.0


def connect(address: str, *, tls_dir: Path | None = None, insecure: bool = False) -> "Client":
    """A Dask client of the scheduler at ``address`` (checked by
    :func:`~edgeopt.device.security.scheduler_address`).

    Raises:
        EdgeoptError: a refused address, missing certificates, distributed not installed,
            or no scheduler answering within :data:`CONNECT_TIMEOUT_S`.
    """
    distributed = require("distributed", "a device cluster")
    checked = scheduler_address(address, tls_dir=tls_dir, insecure=insecure)
    try:
        return distributed.Client(checked, security=security(tls_dir), timeout=CONNECT_TIMEOUT_S,
                                  set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise EdgeoptError(f"no device scheduler answers at {checked} ({error_line(e, with_type=False)}): "
                           f"start one with `edgeopt device scheduler`") from None


def boards(client: "Client", *, profiles: bool = False) -> list[dict[str, Any]]:
    """The connected boards: name, kind, address, nthreads and busy (tasks running or
    queued); with ``profiles``, each board's :func:`~edgeopt.device.board.profile` too
    (CPU, ISA flags, cores, runtimes: asked of every board, so it waits for busy ones)."""
    info = client.scheduler_info(n_workers=-1)["workers"]  # -1: every worker (the default lists 5)
    processing = client.processing()
    found = client.run(board.profile) if profiles else {}
    out = []
    for address, w in info.items():
        out.append({"name": str(w.get("name")), "kind": board.kind_of(w.get("resources")), "address": address,
                    "nthreads": w.get("nthreads"), "busy": len(processing.get(address, ())),
                    **({"profile": found[address]} if address in found else {})})
    return sorted(out, key=lambda b: (b["kind"], b["name"]))
