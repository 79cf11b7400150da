"""Convolution algorithms, written in NumPy to be studied: direct, im2col + GEMM, Winograd
F(2x2,3x3) and F(4x4,3x3), FFT; their multiplication counts and extra memory, their error
against the ONNX reference, and their measured time on the conv layers of a model.

One module per algorithm (:mod:`.direct`, :mod:`.im2col`, :mod:`.winograd`, :mod:`.fft`),
each giving ``prepare`` (weight transform), ``run``, ``cost`` and ``supports``;
:mod:`.registry` names them and runs any of them (:func:`conv2d`); :mod:`.reference` is
the oracle and error measure; :mod:`.layers` reads a model's Conv layers; :mod:`.measure`
times one layer within a budget; :mod:`.analyze` does a whole model.

    from edgeopt.analysis.convalgo import conv2d
    y = conv2d(x, w, algorithm="winograd2", padding=1)   # x (N,C,H,W), w (M,C,3,3) float32
"""

from __future__ import annotations

from .analyze import LayerResult, analyze_model, wins
from .measure import AlgoResult
from .registry import (
    ALGORITHMS,
    ALL,
    conv2d,
    get_algorithm,
    measure_errors,
    parse_algorithms,
)
from .spec import AlgoCost, Algorithm, ConvSpec

__all__ = [
    "ALGORITHMS", "ALL", "AlgoCost", "AlgoResult", "Algorithm", "ConvSpec", "LayerResult", "analyze_model",
    "conv2d", "get_algorithm", "measure_errors", "parse_algorithms", "wins",
]
