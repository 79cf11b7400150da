"""im2col + GEMM: copy every receptive field into a column, then one matrix product.

The input patches become a (C/g * KH * KW, N * OH * OW) matrix per group (each input
element is copied up to KH*KW times: the data duplication the seed article warns about),
and the convolution is one GEMM of the (M/g, C/g * KH * KW) weight matrix with it.
Source: Chellapilla, Puri & Simard, "High Performance Convolutional Neural Networks for
Document Processing", IWFHR 2006.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .spec import (
    FLOAT32_BYTES,
    AlgoCost,
    Algorithm,
    ConvSpec,
    grouped_matmul,
    pad_input,
    padded_bytes,
    supports_any,
)


def im2col(x: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """The im2col matrix of ``x`` (N, C, H, W) float32: (G, Cg*KH*KW, N*OH*OW), a new array.

    Row order (c, i, j) matches the flattened weights (Cg, KH, KW); columns are (n, oy, ox).
    """
    sh, sw = spec.stride
    windows = sliding_window_view(pad_input(x, spec), (spec.kh, spec.kw), axis=(2, 3))[:, :, ::sh, ::sw]
    # windows: (N, C, OH, OW, KH, KW) view -> (C, KH, KW, N, OH, OW); the reshape copies.
    cols = windows.transpose(1, 4, 5, 0, 2, 3)
    return cols.reshape(spec.groups, spec.cg * spec.kh * spec.kw, spec.n * spec.oh * spec.ow)


def prepare(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Weights (M, Cg, KH, KW) -> (G, Mg, Cg*KH*KW)."""
    return np.ascontiguousarray(w.reshape(spec.groups, spec.mg, spec.cg * spec.kh * spec.kw))


def run(x: np.ndarray, wp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``conv(x)`` float32 (N, C, H, W) -> (N, M, OH, OW), with ``wp`` from :func:`prepare`."""
    y = grouped_matmul(wp, im2col(x, spec))  # (G, Mg, N*OH*OW)
    y = y.reshape(spec.m, spec.n, spec.oh, spec.ow).transpose(1, 0, 2, 3)
    return np.ascontiguousarray(y)


def cost(spec: ConvSpec) -> AlgoCost:
    """MACs of the definition; workspace: padded input and the im2col matrix
    (N * C * KH * KW * OH * OW float32), plus the GEMM result before its transpose when N > 1."""
    workspace = {"padded input": padded_bytes(spec),
                 "im2col matrix": spec.n * spec.c * spec.kh * spec.kw * spec.oh * spec.ow * FLOAT32_BYTES}
    if spec.n > 1:
        workspace["GEMM result (M, N*OH*OW)"] = spec.n * spec.m * spec.oh * spec.ow * FLOAT32_BYTES
    return AlgoCost(mults=spec.macs, workspace=workspace)


ALGORITHM = Algorithm(
    name="im2col", title="im2col+GEMM", source="Chellapilla, Puri & Simard, IWFHR 2006",
    supports=supports_any, prepare=prepare, run=run, cost=cost,
)
