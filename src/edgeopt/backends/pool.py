"""Several inferences in flight: the optional throughput capability of a backend.

A :class:`~edgeopt.backends.base.Session` runs one forward pass at a time (latency). An
:class:`InferPool` keeps up to ``streams`` passes running at once (throughput), as
OpenVINO's ``benchmark_app`` does in its asynchronous mode (``-nstreams``/``-nireq``) and
as several ONNX Runtime sessions run from several threads do. Every backend gets one
through :meth:`~edgeopt.backends.base.Backend.prepare_pool`: by default
:class:`SessionPool`, ``streams`` sessions of the backend's own, each run by a thread of
its own (the runtimes release the GIL while they compute), with the total thread count
split between them; a runtime with a native asynchronous API overrides it (OpenVINO:
``AsyncInferQueue`` over one compiled model with NUM_STREAMS streams).

The contract: :meth:`InferPool.submit` hands one request to the pool and returns once a
stream has taken it (it blocks while all are busy); ``done(outputs, error)`` is called
from a runtime thread when the request ends, with the outputs (copies, in graph order) or
the exception; :meth:`InferPool.wait_all` returns when every submitted request has ended.
"""

from __future__ import annotations

import queue
import threading
from abc import ABC, abstractmethod
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from ..errors import EdgeoptError


class _Session(Protocol):
    """What a pool needs of a :class:`~edgeopt.backends.base.Session` (base imports this
    module, so the class itself is not imported here)."""

    backend: str
    threads: int

    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]: ...

    def settings(self) -> dict[str, Any]: ...

    def close(self) -> None: ...

Done = Callable[["list[np.ndarray] | None", "BaseException | None"], None]
"""``done(outputs, error)``: outputs in graph order and None, or None and the exception."""


def split_threads(threads: int, streams: int) -> int:
    """Intra-op threads of each of ``streams`` sessions sharing ``threads`` in total:
    ``threads // streams``, at least 1 (so with more streams than threads the pool runs
    ``streams`` threads, more than asked: :meth:`InferPool.settings` says so).

    Raises:
        EdgeoptError: threads or streams < 1.
    """
    if threads < 1 or streams < 1:
        raise EdgeoptError(f"threads={threads}, streams={streams}: give both as integers >= 1")
    return max(1, threads // streams)


class InferPool(ABC):
    """Up to ``streams`` forward passes of one model in flight (module docstring).

    Attributes:
        backend: registry name.
        threads: the total thread count asked for.
        streams: requests that run at once (as the runtime reports it where it can).
    """

    backend: str
    threads: int
    streams: int

    @abstractmethod
    def submit(self, feeds: dict[str, np.ndarray], done: Done) -> None:
        """Start one forward pass of ``feeds`` (shapes as the model's InputSpecs at batch 1
        unless the pool was prepared for another batch); blocks while every stream is
        busy. ``feeds`` must not change until ``done`` is called."""

    @abstractmethod
    def wait_all(self) -> None:
        """Return when every submitted request has ended (its ``done`` was called)."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The runtime settings of the pool, JSON-ready: {"streams", "threads", ...}."""

    def close(self) -> None:
        """Release the runtime resources (after :meth:`wait_all`)."""

    def __enter__(self) -> "InferPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SessionPool(InferPool):
    """``len(sessions)`` sessions, each run by one worker thread of its own, fed from one
    queue of at most one waiting request per stream (the default pool of a backend: ONNX
    Runtime's inter-op parallel sessions).

    Args:
        sessions: prepared sessions of one model on one backend, one per stream; the pool
            owns them (closes them in :meth:`close`).
        threads: the total thread count asked for (for the record).
    """

    def __init__(self, sessions: Sequence[_Session], threads: int) -> None:
        if not sessions:
            raise EdgeoptError("a session pool needs at least one session: pass streams >= 1")
        self._sessions = list(sessions)
        self.backend = self._sessions[0].backend
        self.threads = threads
        self.streams = len(self._sessions)
        self._free = threading.Semaphore(self.streams)  # submit blocks while every stream is busy
        self._jobs: queue.Queue = queue.Queue()
        self._callback_error: BaseException | None = None
        self._workers = [threading.Thread(target=self._work, args=(s,), daemon=True, name=f"edgeopt-stream-{i}")
                         for i, s in enumerate(self._sessions)]
        for w in self._workers:
            w.start()

    def _work(self, session: _Session) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._jobs.task_done()
                return
            feeds, done = job
            try:
                outputs, error = session.run(feeds), None
            except Exception as e:  # the request's failure goes to its caller, the stream lives on
                outputs, error = None, e
            self._free.release()
            try:
                done(outputs, error)
            except BaseException as e:  # kept for wait_all: a dead worker would hang the pool
                self._callback_error = self._callback_error or e
            finally:
                self._jobs.task_done()

    def submit(self, feeds: dict[str, np.ndarray], done: Done) -> None:
        self._free.acquire()
        self._jobs.put((feeds, done))

    def wait_all(self) -> None:
        """Raises: the first exception a ``done`` callback raised, if any."""
        self._jobs.join()
        if self._callback_error is not None:
            error, self._callback_error = self._callback_error, None
            raise error

    def settings(self) -> dict[str, Any]:
        """{"streams", "threads" (total asked), "threads_per_stream", "session": the first
        session's own settings (every session has the same)}."""
        return {"streams": self.streams, "threads": self.threads,
                "threads_per_stream": self._sessions[0].threads, "session": self._sessions[0].settings()}

    def close(self) -> None:
        if not self._workers:
            return
        for _ in self._workers:
            self._jobs.put(None)
        for w in self._workers:
            w.join()
        self._workers = []
        for s in self._sessions:
            s.close()
