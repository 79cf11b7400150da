"""Per conv layer of a model: multiplications, extra memory and measured time of each
convolution algorithm, and which one is fastest (``edgeopt convalgo``)."""

from __future__ import annotations

from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any, Sequence

from ...errors import EdgeoptError
from ...model import Model
from .layers import conv_layers
from .measure import DEFAULT_MAX_EXTRA_BYTES, AlgoResult, Budget, measure_layer
from .registry import ALL, parse_algorithms
from .spec import ConvSpec


@dataclass(frozen=True)
class LayerResult:
    """One Conv layer of a model.

    Attributes:
        name: layer name as in ``edgeopt profile``.
        spec: the layer at the analysed batch; None when ``skipped``.
        results: one :class:`AlgoResult` per requested algorithm (empty when ``skipped``).
        skipped: "" or why no algorithm could take the layer (e.g. dilation).
    """

    name: str
    spec: ConvSpec | None
    results: tuple[AlgoResult, ...] = ()
    skipped: str = ""

    def result(self, algorithm: str) -> AlgoResult | None:
        """The result of ``algorithm`` (None when it was not requested)."""
        return next((r for r in self.results if r.algorithm == algorithm), None)

    @property
    def fastest(self) -> str | None:
        """The measured algorithm with the smallest time; None when none was measured."""
        timed = [r for r in self.results if r.ms is not None]
        return min(timed, key=lambda r: r.ms).algorithm if timed else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus ``fastest``."""
        return {"name": self.name, "spec": self.spec.to_dict() if self.spec else None,
                "results": [r.to_dict() for r in self.results], "fastest": self.fastest, "skipped": self.skipped}


def wins(layers: Sequence[LayerResult]) -> dict[str, int]:
    """{algorithm: number of layers where it was fastest}, most wins first."""
    return dict(Counter(lay.fastest for lay in layers if lay.fastest).most_common())


def blas_threads(threads: int | None):
    """A context that limits numpy's BLAS/OpenMP pools to ``threads`` (threadpoolctl);
    a no-op for None.

    Raises:
        EdgeoptError: threads < 1.
    """
    if threads is None:
        return nullcontext()
    if threads < 1:
        raise EdgeoptError(f"threads must be >= 1, got {threads}: pass e.g. 1")
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=threads)


def analyze_model(model: Model, *, batch: int = 1, algorithms: Sequence[str] | str = ALL,
                  max_seconds: float = 120.0, repeats: int = 3, threads: int | None = 1,
                  max_extra_bytes: int = DEFAULT_MAX_EXTRA_BYTES, seed: int = 0) -> list[LayerResult]:
    """Count and time every convolution algorithm on every 2-D Conv layer of ``model``.

    Args:
        model: the Model (not modified; only its Conv shapes and attributes are used,
            with random float32 input and weights: timing does not depend on values).
        batch: batch size of the layer inputs.
        algorithms: names or "a,b,c" (see :data:`.registry.ALL`).
        max_seconds: wall-time budget for all timings (:mod:`.measure` says how runs are
            capped and skipped within it).
        repeats: best-of runs per algorithm and layer.
        threads: BLAS threads during the timings (1: all algorithms single-threaded, as
            numpy's FFT is); None leaves numpy's setting.
        max_extra_bytes: skip an algorithm needing more extra memory than this on a layer.
        seed: random data.

    Returns:
        one :class:`LayerResult` per Conv node, in graph order.

    Raises:
        EdgeoptError: unknown algorithm, max_seconds or repeats not positive, threads < 1.
        ShapeError: bad batch, or shape inference fails on the model.
    """
    names = parse_algorithms(algorithms)
    if not max_seconds > 0 or repeats < 1:
        raise EdgeoptError(f"max_seconds ({max_seconds}) and repeats ({repeats}) must be positive: pass e.g. 120 and 3")
    layers = conv_layers(model, batch=batch)
    budget = Budget(max_seconds, sum(len(names) for lay in layers if lay.spec))
    out = []
    with blas_threads(threads):
        for lay in layers:
            if lay.spec is None:
                out.append(LayerResult(lay.name, None, skipped=lay.skipped))
                continue
            results = measure_layer(lay.spec, names, budget, repeats=repeats, max_extra_bytes=max_extra_bytes,
                                    seed=seed)
            out.append(LayerResult(lay.name, lay.spec, results))
    return out
