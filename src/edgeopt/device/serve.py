"""``edgeopt device scheduler`` and ``edgeopt device serve``: distributed's own scheduler and
worker, started with the settings a board needs.

A board's worker is a Nanny-supervised Dask worker (a runtime crash kills the worker
process, the nanny starts a new one and the scheduler re-runs what it lost), with one
thread (one measurement at a time: two would time each other's load) and the resource
``device-KIND`` = 1, which the workstation's tasks ask for.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from .._util.requires import require
from .board import resource
from .security import scheduler_address, security

LISTEN_LOOPBACK = "127.0.0.1"


def run_scheduler(*, host: str = LISTEN_LOOPBACK, port: int = 8786, tls_dir: Path | None = None,
                  insecure: bool = False, on_ready=None) -> None:
    """Run a Dask scheduler until interrupted (TLS with ``tls_dir``).

    Raises:
        EdgeoptError: plain TCP on a host that is not loopback without ``insecure``,
            missing certificates, or distributed not installed.
    """
    distributed = require("distributed", "edgeopt device scheduler")
    address = scheduler_address(f"{'tls' if tls_dir else 'tcp'}://{host}:{port}", tls_dir=tls_dir,
                                insecure=insecure)

    import dask

    # Models and inputs are sent to every board so a board's death loses no data; the
    # active memory manager would drop those "extra" replicas.
    dask.config.set({"distributed.scheduler.active-memory-manager.start": False})

    async def main() -> None:
        async with distributed.Scheduler(host=host, port=port, protocol=address.split("://")[0],
                                         security=security(tls_dir), dashboard=False) as scheduler:
            if on_ready is not None:
                on_ready(scheduler.address)
            await scheduler.finished()
    asyncio.run(main())


def run_worker(scheduler: str, *, name: str, kind: str | None = None, tls_dir: Path | None = None,
               insecure: bool = False, on_ready=None) -> None:
    """Run this board's worker (see the module docstring) until interrupted.

    Args:
        scheduler: the scheduler's address (checked as
            :func:`~edgeopt.device.security.scheduler_address` does).
        name: this board's unique name in the cluster.
        kind: the board kind measurements ask for (default ``name``).

    Raises:
        EdgeoptError: a refused address, missing certificates, or distributed not installed.
    """
    distributed = require("distributed", "edgeopt device serve")
    address = scheduler_address(scheduler, tls_dir=tls_dir, insecure=insecure)

    async def main() -> None:
        async with distributed.Nanny(address, nthreads=1, name=name, resources={resource(kind or name): 1},
                                     security=security(tls_dir)) as nanny:
            if on_ready is not None:
                on_ready(nanny.worker_address)
            await nanny.finished()
    asyncio.run(main())
