"""The backend protocol: three verbs, one small module per runtime.

- ``available() -> str | None``: None when the runtime is usable, else why not and the
  install hint.
- ``prepare(model, *, threads) -> Session``: compile/load the model with an explicit
  intra-op thread count (never the runtime's default).
- ``Session.run(feeds) -> list[np.ndarray]``: one forward pass, outputs in graph order.

A backend never changes a Model. ``prepare`` raises :class:`BackendUnavailable` with the
reason when the runtime cannot run this particular model, so a sweep records the reason
and moves on instead of crashing.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from importlib import metadata
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BackendUnavailable, EdgeoptError, ShapeError
from .pool import InferPool, SessionPool, split_threads

if TYPE_CHECKING:
    from ..model import Model


def check_fed_shapes(specs, arrays, model_name: str, *, dtypes: bool = False) -> None:
    """ONNX Runtime's input contract for the other backends: each fed array has its
    InputSpec's rank and every dim but the batch axis (all of them for an input with no
    batch axis), and its dtype with ``dtypes``.

    Args:
        specs: the Model's InputSpecs, in the order of ``arrays``.
        arrays: the fed numpy arrays.
        model_name: for the message.

    Raises:
        ShapeError: one line naming the input, what it was fed and what it takes.
    """
    for spec, a in zip(specs, arrays):
        shape = tuple(np.shape(a))
        wrong_dtype = dtypes and np.asarray(a).dtype != spec.dtype
        fits = len(shape) == len(spec.shape) and all(
            i == spec.batch_axis or n == d for i, (n, d) in enumerate(zip(shape, spec.shape)))
        if not fits or wrong_dtype:
            fed, want = "x".join(map(str, shape)), spec.describe()
            if dtypes:
                fed, want = f"{fed} {np.asarray(a).dtype}", f"{want} {spec.dtype}"
            raise ShapeError(f"input {spec.name!r} of {model_name} is fed {fed}, the model takes {want}: "
                             f"resize{' or convert' if dtypes else ''} the input or reload the model with --shape")


class Session(ABC):
    """A model prepared on one backend with a fixed thread count."""

    backend: str
    threads: int

    @abstractmethod
    def run(self, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        """One forward pass.

        Args:
            feeds: {input name: array}, shapes as the model's InputSpecs at any batch.

        Returns:
            the graph outputs, in graph order, as numpy arrays.
        """

    def settings(self) -> dict[str, Any]:
        """The runtime settings this session runs with, read back from the runtime where
        it can say (JSON-ready; deploy.json carries them and :meth:`Backend.prepare_with`
        applies them). Backends with no settings beyond the thread count keep this default.

        Returns:
            {"threads": intra-op threads} here; richer per backend.
        """
        return {"threads": self.threads}

    def close(self) -> None:
        """Release runtime resources (optional)."""


class Backend(ABC):
    """A runtime that can run ONNX Models.

    Subclasses set the class attributes and implement :meth:`_prepare`; availability,
    version and the "not installed" error come from here, so every backend reports
    them the same way.

    Attributes:
        name: registry name ("ort", "openvino", ...).
        timed: False for oracles that must never be benchmarked (reference).
        module: the Python module the runtime is imported as.
        distribution: the PyPI distribution whose version is reported.
        install: the command that installs the runtime (quoted in errors).
        threads_fixed_per_process: True when the runtime sizes its thread pool once per
            process (NNPACK under torch): a sweep over thread counts must time each
            count in a fresh process.
        reads_torch_module: True when ``prepare`` uses ``Model.torch_module`` (a bench
            worker process is sent the model without it otherwise, and never imports torch).
    """

    name: str = ""
    timed: bool = True
    threads_fixed_per_process: bool = False
    reads_torch_module: bool = False
    module: str = ""
    distribution: str = ""
    install: str = ""

    def available(self) -> str | None:
        """None when usable here; else a one-line reason with the install hint."""
        if not self.module:
            return None
        try:
            importlib.import_module(self.module)
        except ImportError:
            return f"{self.distribution} is not installed: {self.install}"
        return None

    def version(self) -> str:
        """Version of the underlying runtime library ("" when not installed)."""
        if not self.distribution:
            return ""
        try:
            return metadata.version(self.distribution)
        except metadata.PackageNotFoundError:
            return ""

    def prepare(self, model: "Model", *, threads: int) -> Session:
        """Load ``model`` for inference with ``threads`` intra-op threads.

        Raises:
            BackendUnavailable: the runtime is missing or cannot run this model.
        """
        why = self.available()
        if why is not None:  # the protocol promises BackendUnavailable, not ImportError
            raise BackendUnavailable(why)
        return self._prepare(model, threads=threads)

    def prepare_pool(self, model: "Model", *, threads: int, streams: int) -> InferPool:
        """Load ``model`` to run up to ``streams`` batch-1 inferences at once with
        ``threads`` threads in total (:mod:`edgeopt.backends.pool`). This default makes
        ``streams`` sessions of :meth:`prepare`, each with
        :func:`~edgeopt.backends.pool.split_threads` threads, run by one thread each; a
        runtime with an asynchronous API overrides it.

        Raises:
            BackendUnavailable: the runtime is missing or cannot run this model.
            EdgeoptError: threads or streams < 1.
        """
        per_stream = split_threads(threads, streams)
        sessions: list[Session] = []
        try:
            for _ in range(streams):
                sessions.append(self.prepare(model, threads=per_stream))
        except BaseException:
            for s in sessions:
                s.close()
            raise
        return SessionPool(sessions, threads)

    def prepare_with(self, model: "Model", settings: dict[str, Any]) -> Session:
        """Load ``model`` with exactly ``settings`` (a :meth:`Session.settings` record,
        e.g. from deploy.json), so a deployed model computes as the measured one did.

        Raises:
            BackendUnavailable: the runtime is missing or cannot run this model.
            EdgeoptError: the settings are not this backend's, or the runtime reports
                other settings than asked for.
        """
        why = self.available()
        if why is not None:
            raise BackendUnavailable(why)
        session = self._prepare_with(model, settings)
        got = session.settings()
        if got != settings:
            wrong = sorted(k for k in set(got) | set(settings) if got.get(k) != settings.get(k))
            raise EdgeoptError(f"{self.name} runs {model.name} with other settings than recorded ({', '.join(wrong)}): "
                               f"use the runtime version the deployment was measured with")
        return session

    def _prepare_with(self, model: "Model", settings: dict[str, Any]) -> Session:
        """Backend-specific part of :meth:`prepare_with`; the default covers backends
        whose only setting is the thread count.

        Raises:
            EdgeoptError: no usable "threads" entry.
        """
        threads = settings.get("threads")
        if not isinstance(threads, int) or threads < 1:
            raise EdgeoptError(f"{self.name} settings {settings} name no thread count: "
                               f"give \"threads\": a positive integer")
        return self._prepare(model, threads=threads)

    @abstractmethod
    def _prepare(self, model: "Model", *, threads: int) -> Session:
        """Backend-specific part of :meth:`prepare` (the runtime is importable)."""
