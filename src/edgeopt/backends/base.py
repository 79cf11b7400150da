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

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..model import Model


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

    def close(self) -> None:
        """Release runtime resources (optional)."""


class Backend(ABC):
    """A runtime that can run ONNX Models.

    Attributes:
        name: registry name ("ort", "openvino", ...).
        timed: False for oracles that must never be benchmarked (reference).
    """

    name: str = ""
    timed: bool = True

    @abstractmethod
    def available(self) -> str | None:
        """None when usable here; else a one-line reason with the install hint."""

    @abstractmethod
    def prepare(self, model: "Model", *, threads: int) -> Session:
        """Load ``model`` for inference with ``threads`` intra-op threads.

        Raises:
            BackendUnavailable: the runtime is missing or cannot run this model.
        """

    def version(self) -> str:
        """Version of the underlying runtime library ("" when not installed)."""
        return ""
