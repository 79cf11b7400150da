"""Winograd minimal filtering F(m x m, 3 x 3), m = 2 or 4 (Lavin & Gray).

Each m x m output tile of each (output, input) channel pair is
``Y = A^T [ (G g G^T) * (B^T d B) ] A`` with d the (m+2) x (m+2) input tile (tiles
overlap by 2), g the 3x3 kernel, * the element-wise product: (m+2)^2 multiplies instead
of 9 m^2 (F(2x2,3x3): 16 vs 36, 2.25x fewer; F(4x4,3x3): 36 vs 144, 4x fewer). Summed
over input channels, the element-wise products become (m+2)^2 independent GEMMs
(M/g x C/g) @ (C/g x tiles), which is how this implementation computes them.

The transform matrices are the paper's (Lavin & Gray, "Fast Algorithms for Convolutional
Neural Networks", CVPR 2016, arXiv:1509.09308, section 4.1 for F(2x2,3x3) and 4.2 for
F(4x4,3x3)). Everything is float32, so the precision loss of the larger tile (its
transforms have entries up to 8 and fractions 1/6, 1/24 that float32 rounds) shows in the
results; :mod:`edgeopt.analysis.convalgo.reference` measures it.

Limits: 3x3 kernels, stride 1 (stated in the paper's derivation; strided layers would
compute and discard 3 of 4 outputs), any padding and groups (depthwise included).
The bottom/right edge is zero-padded to whole tiles and the extra outputs cropped.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ...errors import ShapeError
from .spec import (
    FLOAT32_BYTES,
    AlgoCost,
    Algorithm,
    ConvSpec,
    grouped_matmul,
    pad_input,
    padded_bytes,
)

# F(2x2, 3x3): Lavin & Gray 2016, section 4.1.
_F2 = {
    "BT": [[1, 0, -1, 0],
           [0, 1, 1, 0],
           [0, -1, 1, 0],
           [0, 1, 0, -1]],
    "G": [[1, 0, 0],
          [1 / 2, 1 / 2, 1 / 2],
          [1 / 2, -1 / 2, 1 / 2],
          [0, 0, 1]],
    "AT": [[1, 1, 1, 0],
           [0, 1, -1, -1]],
}
# F(4x4, 3x3): Lavin & Gray 2016, section 4.2.
_F4 = {
    "BT": [[4, 0, -5, 0, 1, 0],
           [0, -4, -4, 1, 1, 0],
           [0, 4, -4, -1, 1, 0],
           [0, -2, -1, 2, 1, 0],
           [0, 2, -1, -2, 1, 0],
           [0, 4, 0, -5, 0, 1]],
    "G": [[1 / 4, 0, 0],
          [-1 / 6, -1 / 6, -1 / 6],
          [-1 / 6, 1 / 6, -1 / 6],
          [1 / 24, 1 / 12, 1 / 6],
          [1 / 24, -1 / 12, 1 / 6],
          [0, 0, 1]],
    "AT": [[1, 1, 1, 1, 1, 0],
           [0, 1, -1, 2, -2, 0],
           [0, 1, 1, 4, 4, 0],
           [0, 1, -1, 8, -8, 1]],
}
_MATRICES = {2: _F2, 4: _F4}
R = 3  # kernel size r of F(m, r)


def transforms(m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(B^T (a, a), G (a, 3), A^T (m, a)) float32 for F(m x m, 3 x 3), a = m + 2.

    Raises:
        ShapeError: m is not 2 or 4.
    """
    if m not in _MATRICES:
        raise ShapeError(f"Winograd F({m}x{m},3x3) is not implemented: use m=2 or m=4")
    mats = _MATRICES[m]
    return tuple(np.array(mats[k], dtype=np.float32) for k in ("BT", "G", "AT"))  # type: ignore[return-value]


def unsupported(spec: ConvSpec) -> str | None:
    """Why Winograd F(m, 3) cannot run ``spec`` (None when it can): 3x3 kernels, stride 1 only."""
    if (spec.kh, spec.kw) != (R, R):
        return f"Winograd F(m,3x3) needs a 3x3 kernel, this layer is {spec.kh}x{spec.kw}"
    if spec.stride != (1, 1):
        return f"Winograd F(m,3x3) needs stride 1, this layer has stride {spec.stride[0]}x{spec.stride[1]}"
    return None


def _require(spec: ConvSpec) -> None:
    reason = unsupported(spec)
    if reason:
        raise ShapeError(reason + ": use the direct, im2col or fft algorithm for it")


def _tiles(spec: ConvSpec, m: int) -> tuple[int, int]:
    return math.ceil(spec.oh / m), math.ceil(spec.ow / m)


def prepare(w: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    """U = G g G^T for every kernel: (M, Cg, 3, 3) float32 -> (a*a, G, Mg, Cg).

    Raises:
        ShapeError: the layer is not 3x3 stride 1.
    """
    _require(spec)
    _, gm, _ = transforms(m)
    a = m + R - 1
    u = np.tensordot(gm, w, axes=([1], [2]))          # (a, M, Cg, 3)
    u = np.tensordot(u, gm, axes=([3], [1]))          # (a, M, Cg, a)
    u = u.transpose(0, 3, 1, 2)                       # (a, a, M, Cg)
    return np.ascontiguousarray(u.reshape(a * a, spec.groups, spec.mg, spec.cg))


def run(x: np.ndarray, u: np.ndarray, spec: ConvSpec, m: int) -> np.ndarray:
    """``conv(x)`` float32 (N, C, H, W) -> (N, M, OH, OW) with ``u`` from :func:`prepare`.

    Raises:
        ShapeError: the layer is not 3x3 stride 1.
    """
    _require(spec)
    bt, _, at = transforms(m)
    a = m + R - 1
    n, g = spec.n, spec.groups
    th, tw = _tiles(spec, m)
    # Zero rows/columns at the end so the last tile is whole; their outputs are cropped.
    xp = pad_input(x, spec, extra_bottom=th * m + R - 1 - spec.hp, extra_right=tw * m + R - 1 - spec.wp)
    d = sliding_window_view(xp, (a, a), axis=(2, 3))[:, :, ::m, ::m]   # (N, C, th, tw, a, a)
    v = np.tensordot(bt, d, axes=([1], [4]))          # (a, N, C, th, tw, a)
    v = np.tensordot(v, bt, axes=([5], [1]))          # (a, N, C, th, tw, a)
    v = v.transpose(0, 5, 2, 1, 3, 4).reshape(a * a, g, spec.cg, n * th * tw)
    prod = grouped_matmul(u, v)                       # (a*a, G, Mg, N*th*tw)
    prod = prod.reshape(a, a, spec.m, n, th, tw)
    y = np.tensordot(at, prod, axes=([1], [0]))       # (m, a, M, N, th, tw)
    y = np.tensordot(y, at, axes=([1], [1]))          # (m, M, N, th, tw, m)
    y = y.transpose(2, 1, 3, 0, 4, 5).reshape(n, spec.m, th * m, tw * m)
    return np.ascontiguousarray(y[:, :, :spec.oh, :spec.ow])


def cost(spec: ConvSpec, m: int) -> AlgoCost:
    """Multiplies: (m+2)^2 per m x m output tile per (output channel, input channel) pair.

    Transforms, counted as the dense matrix products this module does (the paper's
    hand-optimised transforms use fewer operations): input B^T d B is 2 products of
    (a x a)(a x a), 4 a^3 FLOPs per tile and input channel; output A^T M A is
    2 m a^2 + 2 m^2 a FLOPs per tile and output channel; weights G g G^T are
    2*3*3a + 2*3*a^2 FLOPs per kernel (once). Workspace: padded input (to whole tiles),
    transformed input V (a^2 C T) and products (a^2 M T), float32; transformed weights U
    (a^2 M Cg) replace the raw ones.

    Raises:
        ShapeError: the layer is not 3x3 stride 1 (there is no count to give).
    """
    _require(spec)
    a = m + R - 1
    th, tw = _tiles(spec, m)
    tiles = spec.n * th * tw
    mults = tiles * spec.m * spec.cg * a * a
    transform = tiles * (spec.c * 4 * a ** 3 + spec.m * (2 * m * a * a + 2 * m * m * a))
    weight_transform = spec.m * spec.cg * (2 * R * R * a + 2 * R * a * a)
    workspace = {
        "padded input (whole tiles)": padded_bytes(spec, extra_rows=th * m + R - 1 - spec.hp,
                                                   extra_cols=tw * m + R - 1 - spec.wp),
        "transformed input tiles V": a * a * spec.c * tiles * FLOAT32_BYTES,
        "products M": a * a * spec.m * tiles * FLOAT32_BYTES,
    }
    return AlgoCost(mults=mults, transform_flops=transform, weight_transform_flops=weight_transform,
                    workspace=workspace, weight_bytes=a * a * spec.m * spec.cg * FLOAT32_BYTES,
                    note=f"{th}x{tw} tiles of {m}x{m}; transforms as dense products")


def _algorithm(m: int) -> Algorithm:
    return Algorithm(
        name=f"winograd{m}", title=f"Winograd F({m}x{m},3x3)",
        source="Lavin & Gray, CVPR 2016 (arXiv:1509.09308)",
        supports=unsupported,
        prepare=lambda w, spec: prepare(w, spec, m),
        run=lambda x, u, spec: run(x, u, spec, m),
        cost=lambda spec: cost(spec, m),
    )


WINOGRAD2 = _algorithm(2)
WINOGRAD4 = _algorithm(4)
