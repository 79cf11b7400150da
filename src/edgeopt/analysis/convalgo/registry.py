"""The algorithms by name, one entry point to run any of them, and their error check."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...errors import EdgeoptError, ShapeError
from . import direct, fft, im2col, winograd
from .reference import random_layer, reference_conv, relative_error
from .spec import Algorithm, ConvSpec, check_fits

ALGORITHMS: dict[str, Algorithm] = {
    a.name: a for a in (direct.ALGORITHM, im2col.ALGORITHM, winograd.WINOGRAD2, winograd.WINOGRAD4, fft.ALGORITHM)
}
ALL = tuple(ALGORITHMS)


def get_algorithm(name: str) -> Algorithm:
    """The :class:`Algorithm` called ``name``.

    Raises:
        EdgeoptError: unknown name (the message lists the known ones).
    """
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise EdgeoptError(f"unknown convolution algorithm {name!r}: use one of {', '.join(ALL)}") from None


def parse_algorithms(text: str | Sequence[str]) -> tuple[str, ...]:
    """Names from "direct,fft" or a sequence, checked, duplicates dropped, order kept.

    Raises:
        EdgeoptError: empty, or an unknown name.
    """
    names = [s.strip() for s in (text.split(",") if isinstance(text, str) else text) if s.strip()]
    if not names:
        raise EdgeoptError(f"no convolution algorithm given: pass some of {','.join(ALL)}")
    return tuple(get_algorithm(n).name for n in dict.fromkeys(names))


def conv2d(x: np.ndarray, w: np.ndarray, *, algorithm: str = "direct", stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, ...] = 0, groups: int = 1, bias: np.ndarray | None = None) -> np.ndarray:
    """2-D convolution (ONNX Conv semantics: cross-correlation, no dilation) by one algorithm.

    Args:
        x: input, float32 (N, C, H, W).
        w: weights, float32 (M, C/groups, KH, KW).
        algorithm: "direct", "im2col", "winograd2", "winograd4" or "fft".
        stride: int or (sh, sw).
        padding: int, (ph, pw) or (top, left, bottom, right), zeros.
        groups: ONNX ``group`` (groups == C: depthwise).
        bias: optional (M,) float32 added to every output position.

    Returns:
        float32 (N, M, OH, OW).

    Raises:
        EdgeoptError: unknown algorithm. ShapeError: shapes/dtypes that do not fit, or a
        layer the algorithm cannot run (Winograd: not 3x3 or stride > 1).
    """
    algo = get_algorithm(algorithm)
    spec = ConvSpec.of(x.shape, w.shape, stride=stride, padding=padding, groups=groups)
    check_fits(spec, x, w)
    reason = algo.supports(spec)
    if reason:
        raise ShapeError(f"{reason}: use another algorithm (direct, im2col or fft run every layer)")
    y = algo.run(x, algo.prepare(w, spec), spec)
    if bias is not None:
        if bias.shape != (spec.m,):
            raise ShapeError(f"bias shape {bias.shape} != ({spec.m},): pass one value per output channel")
        y += bias.astype(np.float32).reshape(1, -1, 1, 1)
    return y


def measure_errors(spec: ConvSpec, algorithms: Sequence[str] = ALL, *, seed: int = 0) -> dict[str, dict[str, float]]:
    """Each algorithm's error on one random layer (see :mod:`.reference` for the measure).

    The float32 algorithms get the float32-rounded random input and weights; they are
    compared with the ONNX reference Conv run in float64 on those same values (their own
    rounding error) and in float32 (the disagreement a user would see).

    Returns:
        {algorithm: {"vs_float64": error, "vs_reference_f32": error}}; algorithms that
        cannot run the layer are left out.
    """
    x64, w64 = random_layer(spec, seed)
    x32, w32 = x64.astype(np.float32), w64.astype(np.float32)
    exact = reference_conv(x32.astype(np.float64), w32.astype(np.float64), spec)
    ref32 = reference_conv(x32, w32, spec)
    out: dict[str, dict[str, float]] = {}
    for name in algorithms:
        algo = get_algorithm(name)
        if algo.supports(spec):
            continue
        y = algo.run(x32, algo.prepare(w32, spec), spec)
        out[name] = {"vs_float64": relative_error(y, exact), "vs_reference_f32": relative_error(y, ref32)}
    return out
