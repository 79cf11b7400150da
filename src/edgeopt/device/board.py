"""What runs on the board: its profile, and one timed session of a model sent to it.

Dask pickles these functions by reference (module and name), so the board runs the code
of its own edgeopt install; only the model and the settings travel. Everything here
imports only what the lean install has (numpy, onnx, psutil, the board's runtime).
"""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING, Any

from .._util.resources import available_memory
from ..backends import registry
from ..bench.environment import machine_info
from ..bench.harness import benchmark

if TYPE_CHECKING:
    from ..model import Model

RESOURCE_PREFIX = "device-"
"""A board of kind K carries the Dask worker resource ``device-K`` = 1."""


def resource(kind: str) -> str:
    """The worker resource that tags boards of ``kind``."""
    return f"{RESOURCE_PREFIX}{kind}"


def kind_of(resources: dict | None) -> str:
    """The board kind a worker's resources name (``device-KIND``), "" for a worker without one."""
    return next((r[len(RESOURCE_PREFIX):] for r in (resources or {}) if r.startswith(RESOURCE_PREFIX)), "")


def identity() -> dict[str, Any]:
    """Which board and process this is: worker name, kind, host, pid (in a Dask worker;
    outside one, the host and pid only)."""
    out: dict[str, Any] = {"host": socket.gethostname(), "pid": os.getpid()}
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):  # not inside a worker (a test calling the function here)
        return out
    return {**out, "name": str(worker.name), "kind": kind_of(worker.state.total_resources), "address": worker.address}


def profile() -> dict[str, Any]:
    """The board's machine record (CPU, ISA flags, cores, caches), the timed runtimes it
    has with their versions, the memory a new run may use now (bytes, None when unknown),
    its :func:`measured_peaks` and :func:`identity`."""
    runtimes = {}
    for name in registry.names():
        try:
            be = registry.get(name)
            if be.timed and be.available() is None:
                runtimes[name] = be.version()
        except ImportError:
            continue
    return {"machine": machine_info(), "runtimes": runtimes, "available_memory_bytes": available_memory(),
            "peaks": measured_peaks(), **identity()}


def measured_peaks() -> dict[str, Any] | None:
    """The peaks ``edgeopt machine`` measured on this board and saved
    (:func:`~edgeopt.analysis.device.default_path`): fp32 GFLOP/s at the most threads
    measured, the best DRAM bandwidth in GB/s, and the file; None when it never ran here
    (or its file does not read)."""
    from ..analysis.device import default_path, load_profile
    from ..errors import EdgeoptError

    path = default_path()
    if not path.is_file():
        return None
    try:
        saved = load_profile(path)
        return {"fp32_gflops": saved.peak("fp32"), "bandwidth_gbs": max(saved.bandwidth_gbs.values(), default=None),
                "path": str(path)}
    except (EdgeoptError, OSError, ValueError):
        return None


def measure(model: "Model", backend: str, settings: dict[str, Any]) -> dict[str, Any]:
    """One fresh session of ``model`` on ``backend`` here, timed by
    :func:`~edgeopt.bench.harness.benchmark` (``sessions=1``, ``settings`` its keywords);
    the result's dict with the board's :func:`identity` as ``machine["device"]``."""
    result = benchmark(model, backend, sessions=1, **settings)
    result.machine = {**result.machine, "device": identity()}
    return result.to_dict()


def rounds(entries: list[tuple], settings: dict[str, Any]) -> dict[str, Any]:
    """:func:`~edgeopt.bench.alternating.alternating_rounds` of ``entries`` here (every
    round of every entry on this board, so per-round ratios pair them), with :func:`identity`."""
    from ..bench.alternating import alternating_rounds

    return {"rounds": alternating_rounds(entries, **settings), "device": identity()}


def outputs(model: "Model", backend: str, samples: Any, threads: int) -> dict[str, Any]:
    """Every output of ``model`` on ``samples`` (a :class:`~edgeopt.data.samples.SampleSet`
    of model inputs, preprocessed on the workstation) here, with :func:`identity`."""
    from ..evaluate.runner import predict_outputs

    return {"outputs": predict_outputs(model, backend, samples, threads=threads), "device": identity()}


def lost_runs(key: str, dask_scheduler: Any = None) -> int:
    """On the scheduler (``client.run_on_scheduler``): how many workers died while running
    the task ``key`` (distributed's ``suspicious`` count), each a measurement run again;
    0 for a task the scheduler no longer holds."""
    task = dask_scheduler.tasks.get(key) if dask_scheduler is not None else None
    return 0 if task is None else int(task.suspicious)
