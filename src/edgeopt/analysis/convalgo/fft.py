"""FFT convolution: whole-image transforms, pointwise products summed over channels.

By the convolution theorem, the circular cross-correlation of an L_h x L_w image with a
kernel is ``irfft2(rfft2(x) * conj(rfft2(w)))``. With L >= the padded input size, the
outputs that do not wrap around are exactly the stride-1 "valid" outputs, so each input
channel is transformed once, each kernel once (weights: once per model), the products
are summed over input channels in the frequency domain (a GEMM per frequency), and each
output channel is transformed back once. A strided layer computes the stride-1 result and
keeps every stride-th output (the work is not reduced).

This is the full-image ("full") variant, not overlap-add: on the 7-224 pixel maps of
CNNs one transform per channel is cheaper than tiling. L is the next 5-smooth size
(2^a 3^b 5^c) >= the padded input, which numpy's pocketfft transforms fastest.
numpy >= 2.0 keeps float32 input in complex64; the spectra are cast to complex64 so
older numpy computes the products at the same precision.

Sources: Mathieu, Henaff & LeCun, "Fast Training of Convolutional Networks through FFTs",
ICLR 2014 (FFT convolution for CNN layers); Vasilache et al., "Fast Convolutional Nets
With fbfft", ICLR 2015 (the per-frequency GEMM formulation).
"""

from __future__ import annotations

import numpy as np

from .spec import (
    COMPLEX64_BYTES,
    FLOAT32_BYTES,
    AlgoCost,
    Algorithm,
    ConvSpec,
    fft_flops,
    grouped_matmul,
    pad_input,
    padded_bytes,
    supports_any,
)


def smooth_size(n: int) -> int:
    """The smallest 5-smooth integer (only prime factors 2, 3, 5) >= ``n`` (n >= 1)."""
    size = max(1, n)
    while True:
        k = size
        for p in (2, 3, 5):
            while k % p == 0:
                k //= p
        if k == 1:
            return size
        size += 1


def fft_shape(spec: ConvSpec) -> tuple[int, int]:
    """Transform size (L_h, L_w) for ``spec``: 5-smooth sizes >= the padded input."""
    return smooth_size(spec.hp), smooth_size(spec.wp)


def prepare(w: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """conj(rfft2(kernel)) at the transform size: (M, Cg, KH, KW) -> (G, F, Mg, Cg) complex64,
    F = L_h * (L_w // 2 + 1) frequencies."""
    lh, lw = fft_shape(spec)
    wf = np.conj(np.fft.rfft2(w, s=(lh, lw))).astype(np.complex64, copy=False)  # (M, Cg, lh, lw//2+1)
    f = lh * (lw // 2 + 1)
    return np.ascontiguousarray(wf.reshape(spec.groups, spec.mg, spec.cg, f).transpose(0, 3, 1, 2))


def run(x: np.ndarray, wf: np.ndarray, spec: ConvSpec) -> np.ndarray:
    """``conv(x)`` float32 (N, C, H, W) -> (N, M, OH, OW) with ``wf`` from :func:`prepare`."""
    lh, lw = fft_shape(spec)
    n, g = spec.n, spec.groups
    f = lh * (lw // 2 + 1)
    xf = np.fft.rfft2(pad_input(x, spec), s=(lh, lw)).astype(np.complex64, copy=False)
    xf = xf.reshape(n, g, spec.cg, f).transpose(1, 3, 2, 0)          # (G, F, Cg, N)
    yf = grouped_matmul(wf, xf)                                       # (G, F, Mg, N)
    yf = yf.transpose(3, 0, 2, 1).reshape(n, spec.m, lh, lw // 2 + 1)
    y = np.fft.irfft2(yf, s=(lh, lw))
    sh, sw = spec.stride
    y = y[:, :, :spec.hp - spec.kh + 1:sh, :spec.wp - spec.kw + 1:sw]
    return np.ascontiguousarray(y, dtype=np.float32)


def cost(spec: ConvSpec) -> AlgoCost:
    """Products: N * M * Cg * F complex multiplies (4 real multiplies each; F frequencies of
    the real FFT), independent of the kernel size: that is why FFT pays off for large
    kernels. Transforms: one real 2-D FFT per input channel and one inverse per output
    channel (2.5 L log2 L FLOPs each, L = L_h L_w), one per kernel at load time.
    Workspace: padded input, input spectra (N C F), output spectra (N M F) complex64 and the
    stride-1 output (N M L) float32; kernel spectra (M Cg F) complex64 replace the weights."""
    lh, lw = fft_shape(spec)
    f = lh * (lw // 2 + 1)
    points = lh * lw
    complex_mults = spec.n * spec.m * spec.cg * f
    workspace = {
        "padded input": padded_bytes(spec),
        "input spectra": spec.n * spec.c * f * COMPLEX64_BYTES,
        "output spectra": spec.n * spec.m * f * COMPLEX64_BYTES,
        "stride-1 output": spec.n * spec.m * points * FLOAT32_BYTES,
    }
    return AlgoCost(
        mults=4 * complex_mults,
        transform_flops=round(spec.n * (spec.c + spec.m) * fft_flops(points)),
        weight_transform_flops=round(spec.m * spec.cg * fft_flops(points)),
        workspace=workspace, weight_bytes=spec.m * spec.cg * f * COMPLEX64_BYTES,
        note=f"{lh}x{lw} transforms, {complex_mults} complex multiplies",
    )


ALGORITHM = Algorithm(
    name="fft", title="FFT (full image)",
    source="Mathieu, Henaff & LeCun, ICLR 2014; Vasilache et al., ICLR 2015",
    supports=supports_any, prepare=prepare, run=run, cost=cost,
)
