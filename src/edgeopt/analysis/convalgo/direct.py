"""Direct convolution: the ONNX Conv definition, one kernel offset at a time.

For each of the KH x KW kernel offsets (i, j), the input shifted by (i, j) and subsampled
by the stride is a (C, OH*OW) matrix; the weights at that offset are (M, C); their product
(a 1x1 convolution, the channel sum vectorised) is added to the output. So the work is
exactly the MACs of the definition, and no buffer ever holds more than one shifted copy
of the input: this is the memory-frugal order ("kn2row"-style accumulation: Vasudevan,
Anderson & Gregg, "Parallel Multi Channel Convolution using General Matrix
Multiplication", ASAP 2017), as opposed to im2col's K^2-fold copy.

Spec: https://onnx.ai/onnx/operators/onnx__Conv.html (cross-correlation, groups, pads).
"""

from __future__ import annotations

import numpy as np

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


def prepare(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """Weights (M, Cg, KH, KW) float32 -> (KH, KW, G, Mg, Cg): one (Mg, Cg) matrix per offset and group."""
    g = spec.groups
    return np.ascontiguousarray(w.reshape(g, spec.mg, spec.cg, spec.kh, spec.kw).transpose(3, 4, 0, 1, 2))


def run(x: np.ndarray, wp: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``conv(x)`` float32 (N, C, H, W) -> (N, M, OH, OW), with ``wp`` from :func:`prepare`."""
    xp = pad_input(x, spec)
    n, g, oh, ow = spec.n, spec.groups, spec.oh, spec.ow
    sh, sw = spec.stride
    y = np.zeros((n, g, spec.mg, oh * ow), dtype=np.float32)
    for i in range(spec.kh):
        for j in range(spec.kw):
            shifted = xp[:, :, i:i + sh * (oh - 1) + 1:sh, j:j + sw * (ow - 1) + 1:sw]
            y += grouped_matmul(wp[i, j], shifted.reshape(n, g, spec.cg, oh * ow))
    return y.reshape(spec.output_shape)


def cost(spec: ConvSpec) -> AlgoCost:
    """MACs of the definition; workspace: the padded input and one shifted input slice."""
    workspace = {"padded input": padded_bytes(spec),
                 "shifted input slice": spec.n * spec.c * spec.oh * spec.ow * FLOAT32_BYTES}
    return AlgoCost(mults=spec.macs, workspace=workspace)


ALGORITHM = Algorithm(
    name="direct", title="direct",
    source="ONNX Conv definition; per-offset accumulation as in Vasudevan et al., ASAP 2017",
    supports=supports_any, prepare=prepare, run=run, cost=cost,
)
