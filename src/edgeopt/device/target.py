"""Where the optimizer measures: here, or on a board of one kind through the cluster.

A target answers the measurer's three questions the same way wherever it runs: a timed
session (:func:`~edgeopt.bench.harness.benchmark`), the alternating re-timing of the
finalists (:func:`~edgeopt.bench.alternating.alternating_rounds`: every round on the
one machine, so per-round ratios pair them) and the model's outputs on the quality inputs
(:func:`~edgeopt.evaluate.runner.predict_outputs`). On a board, the images are
preprocessed here into model inputs and sent as samples (a board has no image library),
its outputs come back and the quality is judged here, from what the board's runtime
computed (int8 kernels differ between ISAs). Each model is sent once (by its sha256), to
every board.
"""

from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import CancelledError
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..backends.registry import get as get_backend
from ..bench.alternating import alternating_rounds
from ..bench.environment import machine_info
from ..bench.harness import BenchResult, benchmark
from ..data.images import ImageSet
from ..data.samples import SampleSet
from ..errors import ArtifactTampered, EdgeoptError
from ..evaluate.runner import predict_outputs
from .._util.errorline import error_line
from . import board
from .cluster import boards

if TYPE_CHECKING:
    from distributed import Client

    from ..model import Model


class LocalTarget:
    """This machine (the default)."""

    label = "here"
    parallel = 1
    """Trials that may be measured at once: one here (two would time each other's load)."""

    def machine(self) -> dict[str, Any]:
        """The machine record of where candidates are measured (:func:`~edgeopt.bench.environment.machine_info`)."""
        return machine_info()

    def unavailable(self, backend: str) -> str | None:
        """Why ``backend`` cannot time here (its install hint), or None when it can."""
        return get_backend(backend).available()

    def benchmark(self, model: "Model", backend: str, **settings: Any) -> BenchResult:
        """:func:`~edgeopt.bench.harness.benchmark` here."""
        return benchmark(model, backend, **settings)

    def rounds(self, entries: Sequence[tuple], **settings: Any) -> list:
        """:func:`~edgeopt.bench.alternating.alternating_rounds` here."""
        return alternating_rounds(entries, **settings)

    def outputs(self, model: "Model", backend: str, data: "ImageSet | SampleSet", *, threads: int) -> list[np.ndarray]:
        """:func:`~edgeopt.evaluate.runner.predict_outputs` here."""
        return predict_outputs(model, backend, data, threads=threads)


class DeviceTarget(LocalTarget):
    """The boards of ``kind`` (see the module docstring); each call is one Dask task that
    asks for the resource ``device-KIND``, so it runs on a matching board, one at a time.

    Args:
        client: from :func:`edgeopt.device.runner.connect`.
        kind: the boards' kind.

    Raises:
        EdgeoptError: no board of that kind is connected.
    """

    def __init__(self, client: "Client", kind: str) -> None:
        connected = boards(client, profiles=True)
        if not any(b["kind"] == kind for b in connected):
            have = ", ".join(sorted({b["kind"] for b in connected})) or "none"
            raise EdgeoptError(f"no board of kind {kind!r} is connected (connected kinds: {have}): start one with "
                               f"`edgeopt device serve --kind {kind}`")
        self.client, self.kind, self.label = client, kind, f"a {kind} board"
        self.smallest = f"the smallest {kind} board"  # what thread and memory checks name
        mine = [b for b in connected if b["kind"] == kind]
        self._first = mine[0]  # whose record machine() gives: its profile is already here
        # One trial per board at once: each board runs one measurement at a time anyway.
        self.parallel = len(mine)
        # The smallest board of the kind: a thread count is checked against what every one can run.
        self.cpus = min(b.get("profile", {}).get("machine", {}).get("usable_cpus") or 1 for b in mine)
        self._lock = threading.Lock()  # trials measured in parallel threads send a model once
        # The least any board of the kind has free: a run that fits it fits every one.
        free = [m for b in mine if (m := b.get("profile", {}).get("available_memory_bytes"))]
        self.memory = min(free) if free else None
        # What every board of the kind has: a runtime one of them lacks would fail there.
        self.runtimes = set.intersection(*(set(b.get("profile", {}).get("runtimes", {})) for b in mine))
        self._models: dict[str, Any] = {}  # sha256 -> the model's future on the cluster, sent once
        self._inputs: dict[int, tuple[Any, Any]] = {}  # id(data) -> (data, its samples' future)

    def unavailable(self, backend: str) -> str | None:
        """Why ``backend`` cannot time on the boards of the kind (not installed on every
        one), or None when it can."""
        if backend in self.runtimes:
            return None
        return (f"not installed on every {self.kind} board (they have "
                f"{', '.join(sorted(self.runtimes)) or 'no runtime'}): pip install 'edgeopt[{backend}]' there")

    def machine(self) -> dict[str, Any]:
        """A board's machine record, with its identity as ``device`` (name, kind, host, pid):
        from the profiles read when the target was made, not asked again."""
        b = self._first
        profile = b["profile"]
        return {**profile["machine"], "device": {"name": b["name"], "kind": self.kind,
                                                 **{k: profile[k] for k in ("host", "pid") if k in profile}},
                "runtimes": profile["runtimes"]}

    def _run(self, call: Callable[[], tuple]) -> Any:
        return self._run_counted(call)[0]

    def _run_counted(self, call: Callable[[], tuple]) -> tuple[Any, int | None]:
        """``fn(*args)`` on a board (``call() -> (fn, *args)``, the sent data's futures
        among the args), and how many boards were lost mid-run before it finished (None
        when the scheduler cannot say: one started without edgeopt).

        The data is sent to every board, but a scheduler's active memory manager may drop
        replicas; when the board holding the last one dies, the scheduler forgets the task
        ("already forgotten"). Then everything is sent again and the task runs once more.
        """
        for attempt in (1, 2):
            fn, *args = call()
            future = self.client.submit(fn, *args, resources={board.resource(self.kind): 1}, pure=False)
            try:
                result = future.result()
                break
            except CancelledError:
                if attempt == 2:
                    raise
                with self._lock:
                    self._models.clear()
                    self._inputs.clear()
        try:  # asked while the future is held, so the scheduler still knows the task
            lost = self.client.run_on_scheduler(board.lost_runs, future.key)
        except Exception:  # noqa: BLE001 - a scheduler without edgeopt's modules cannot say
            lost = None
        return result, lost + attempt - 1 if lost is not None else None

    def _sent(self, model: "Model") -> Any:
        # On every board, not one: scattered data has no recipe to recompute it, so a
        # model held by a board that dies would take the measurements waiting for it along.
        # A random key, not a content hash: another client that sent the same model and
        # let it go could have the scheduler forget the shared key under this one.
        key = model.sha256
        with self._lock:
            if key not in self._models:
                self._models[key] = self.client.scatter(for_board(model, self.runtimes), hash=False, broadcast=True)
            return self._models[key]

    def benchmark(self, model: "Model", backend: str, **settings: Any) -> BenchResult:
        """One fresh session on a board; a lost board or a crashed runtime is the result's error."""
        settings = {k: v for k, v in settings.items() if k != "sessions"}
        try:
            done, lost = self._run_counted(lambda: (board.measure, self._sent(model), backend, settings))
            result = BenchResult.from_dict(done)
            if lost:  # measured again on another board: said in the result, not hidden
                result.conditions["board_lost"] = lost
            return result
        except ArtifactTampered:  # the board's cache changed after edgeopt wrote it: refuse, as here
            raise
        except Exception as e:  # a failure row, never the end of the run
            return BenchResult(backend=backend, backend_version="", model=model.name, model_sha256=model.sha256,
                               batch=settings.get("batch", 1), threads=settings.get("threads", 1),
                               machine={"device": {"kind": self.kind}},
                               error=f"{backend} on a {self.kind} board failed: {error_line(e, limit=None)}")

    def rounds(self, entries: Sequence[tuple], **settings: Any) -> list:
        """The alternating rounds, all on one board."""
        return self._run(lambda: (board.rounds, [(self._sent(e[0]), *e[1:]) for e in entries], settings))["rounds"]

    def outputs(self, model: "Model", backend: str, data: "ImageSet | SampleSet", *, threads: int) -> list[np.ndarray]:
        """The board's outputs on ``data`` (images preprocessed here into model inputs)."""
        return self._run(lambda: (board.outputs, self._sent(model), backend, self._samples(model, data),
                                  threads))["outputs"]

    def _samples(self, model: "Model", data: "ImageSet | SampleSet") -> Any:
        """The future of ``data`` as model inputs on every board (the held-out inputs are
        the same for every candidate: sent once)."""
        with self._lock:
            held = self._inputs.get(id(data))
            if held is None:
                samples = data if isinstance(data, SampleSet) else as_samples(model, data)
                held = self._inputs[id(data)] = (data, self.client.scatter(samples, broadcast=True))
            return held[1]


def for_board(model: "Model", runtimes: set[str]) -> "Model":
    """``model`` as a board with ``runtimes`` can unpickle it: without the PyTorch module it
    was exported from unless the board has torch (a lean board does not; its runtimes read
    the ONNX graph)."""
    if model.torch_module is None or "torch" in runtimes:
        return model
    return dataclasses.replace(model, torch_module=None)


def as_samples(model: "Model", images: ImageSet) -> SampleSet:
    """``images`` through ``model.preprocess`` into the model's one input, as a sample set."""
    from ..errors import DataError

    if model.preprocess is None or len(model.inputs) != 1:
        raise DataError(f"images need a model with a preprocess and one input; {model.name} has "
                        f"{len(model.inputs)} inputs: pass --inputs samples instead")
    return SampleSet({model.inputs[0].name: images.tensor(model.preprocess)})
