"""Low-bit weight values: symmetric per-channel integers and power-of-two (log) rounding.

Pure numpy, no graph: :mod:`.graph` places the results into an ONNX model.
"""

from __future__ import annotations

import numpy as np

from ...errors import PassError


def int_range(bits: int) -> tuple[int, int]:
    """(lowest, highest) code of a symmetric signed ``bits``-bit quantizer.

    Symmetric and narrow: codes in [-(2^(b-1)-1), 2^(b-1)-1], so 4 bits use -7..7 and
    2 bits use {-1, 0, 1} (the two's-complement code -2 is never produced, so the
    quantizer stays symmetric about zero as the scale formula assumes).

    Raises:
        PassError: ``bits`` not in 2..8.
    """
    if not 2 <= bits <= 8:
        raise PassError(f"weight bits must be 2..8, got {bits}: pass bits=4 or bits=2")
    top = 2 ** (bits - 1) - 1
    return -top, top


def quantize_per_channel(w: np.ndarray, axis: int, bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-output-channel linear quantization (the per-axis scheme of ONNX
    QuantizeLinear; scale as in Krishnamoorthi 2018, "Quantizing deep convolutional
    networks for efficient inference", section 2.1, symmetric case).

    scale[c] = max|w[c]| / (2^(b-1) - 1); q = clip(round(w / scale), -(2^(b-1)-1), 2^(b-1)-1).
    A channel of zeros gets scale 1 (its codes are all 0).

    Args:
        w: float32 weights of any rank >= 1.
        axis: the output-channel axis (0 for Conv (O, I, kh, kw)).
        bits: 2..8.

    Returns:
        (q int8 array of w's shape with values in the code range, scale float32 (C,)).
    """
    lo, hi = int_range(bits)
    moved = np.moveaxis(np.asarray(w, dtype=np.float32), axis, 0)
    peak = np.abs(moved.reshape(moved.shape[0], -1)).max(axis=1)
    scale = np.where(peak > 0, peak / hi, 1.0).astype(np.float32)
    shape = (-1,) + (1,) * (moved.ndim - 1)
    q = np.clip(np.rint(moved / scale.reshape(shape)), lo, hi).astype(np.int8)
    return np.moveaxis(q, 0, axis), scale


def pow2_round(w: np.ndarray, bits: int) -> tuple[np.ndarray, int]:
    """Power-of-two (logarithmic) weights of one layer.

    Miyashita, Lee, Murmann, "Convolutional Neural Networks using Logarithmic Data
    Representation", arXiv:1603.01025 (2016), eq. 3: LogQuant(x) = sign(x) x
    2^Clip(Round(log2|x|), FSR - 2^(b-1) + 1, FSR), with one sign bit and b-1 exponent
    bits, so 2^(b-1) exponents per layer. The full-scale range FSR is the layer's
    Round(log2 max|w|). As in the paper's Clip, magnitudes below the smallest exponent
    become that exponent's power (not zero); exact zeros stay zero.

    Args:
        w: float32 weights of one layer.
        bits: 2..8 (sign + exponent bits).

    Returns:
        (rounded float32 weights of w's shape, FSR exponent).
    """
    int_range(bits)
    w = np.asarray(w, dtype=np.float32)
    mag = np.abs(w)
    peak = float(mag.max()) if w.size else 0.0
    if peak == 0.0:
        return w.copy(), 0
    fsr = int(np.rint(np.log2(peak)))
    with np.errstate(divide="ignore"):
        k = np.clip(np.rint(np.log2(np.where(mag > 0, mag, 1.0))), fsr - 2 ** (bits - 1) + 1, fsr)
    out = np.where(mag > 0, np.sign(w) * np.exp2(k), 0.0).astype(np.float32)
    return out, fsr
