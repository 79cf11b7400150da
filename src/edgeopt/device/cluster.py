"""The workstation's client of the device cluster: connect to the scheduler, list the boards."""

from __future__ import annotations

import logging
import warnings
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
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            client = distributed.Client(checked, security=security(tls_dir), timeout=CONNECT_TIMEOUT_S,
                                        set_as_default=False)
    except (OSError, TimeoutError) as e:
        raise EdgeoptError(f"no device scheduler answers at {checked} ({error_line(e, with_type=False)}): "
                           f"start one with `edgeopt device scheduler`") from None
    for w in caught:
        line = version_mismatch(str(w.message)) if w.category.__name__ == "VersionMismatchWarning" else str(w.message)
        if line:
            logging.getLogger("edgeopt").warning(line)
    return client


def version_mismatch(table: str) -> str | None:
    """One line for distributed's version-mismatch table ("board versions differ: numpy
    2.4.6 here, 2.3.1 on a worker"), or None when only Python's patch level differs
    (3.11.2 beside 3.11.7 pickles alike: a board's Debian Python is rarely the
    workstation's exact build).

    Args:
        table: the warning's text: rows ``| package | client | scheduler | workers |``.
    """
    rows = []
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("Package", ""):
            rows.append(cells)
    if not rows:
        return None

    def minor(v: str) -> str:
        return ".".join(v.split(".")[:2])
    if all(r[0] == "python" and len({minor(v) for v in r[1:] if v not in ("None", "")}) == 1 for r in rows):
        return None
    return ("versions differ between this client, the scheduler and the boards (a pickle may not load): "
            + "; ".join(f"{p} {c} here, {s} on the scheduler, {w} on the boards" for p, c, s, w in rows))


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
