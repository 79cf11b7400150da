"""The problem: one 2-D convolution at batch 1 (:class:`ConvLayer`) and its tile sizes
(:class:`Tiling`), in the notation of Zhang et al., FPGA 2015 (see
:mod:`edgeopt.analysis.dataflow`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import EdgeoptError


def _pair(value: Any, what: str, minimum: int) -> tuple[int, int]:
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v >= minimum for v in pair):
        raise EdgeoptError(f"conv {what} {value!r} is not one or two integers >= {minimum}: pass e.g. 3 or (3, 3)")
    return int(pair[0]), int(pair[1])


@dataclass(frozen=True)
class ConvLayer:
    """One 2-D convolution at batch 1 (dilation 1).

    Attributes:
        m: output channels M (all groups).
        n: input channels N (all groups).
        r: output rows R.
        c: output columns C.
        k: kernel (Kh, Kw); an int means square.
        stride: (Sh, Sw); an int means the same on both axes.
        pad: zero padding before the first row and column (top, left); the padding after
            the last row/column is whatever the output size implies.
        h: input rows H (default: (R - 1) Sh + Kh - 2 pad_top, i.e. symmetric padding).
        w: input columns W (default likewise).
        groups: convolution groups (M and N divisible by it; depthwise: groups = N).
        name: layer name for reports.

    Raises:
        EdgeoptError: a non-positive size, channels not divisible by ``groups``, or an
            input too small for the default size.
    """

    m: int
    n: int
    r: int
    c: int
    k: Any = 3
    stride: Any = 1
    pad: Any = 0
    h: int | None = None
    w: int | None = None
    groups: int = 1
    name: str = ""

    def __post_init__(self) -> None:
        for what in ("m", "n", "r", "c", "groups"):
            v = getattr(self, what)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise EdgeoptError(f"conv {what}={v!r} must be a positive integer")
            object.__setattr__(self, what, int(v))
        if self.m % self.groups or self.n % self.groups:
            raise EdgeoptError(f"conv channels M={self.m}, N={self.n} are not divisible by groups={self.groups}")
        k, s, p = _pair(self.k, "kernel", 1), _pair(self.stride, "stride", 1), _pair(self.pad, "pad", 0)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "stride", s)
        object.__setattr__(self, "pad", p)
        for what, out, axis in (("h", self.r, 0), ("w", self.c, 1)):
            size = getattr(self, what)
            if size is None:
                size = (out - 1) * s[axis] + k[axis] - 2 * p[axis]
            if not isinstance(size, (int, np.integer)) or size < 1:
                raise EdgeoptError(f"conv input {what}={size!r} is not positive: give h/w or a smaller pad")
            object.__setattr__(self, what, int(size))

    @property
    def macs(self) -> int:
        """Multiply-accumulates, padded taps included (the profile's convention)."""
        return self.m * (self.n // self.groups) * self.r * self.c * self.k[0] * self.k[1]

    def describe(self) -> str:
        """``M x N x R x C kKhxKw sS [gG]`` for tables."""
        kh, kw = self.k
        kern = f"k{kh}" if kh == kw else f"k{kh}x{kw}"
        sh, sw = self.stride
        st = f"s{sh}" if sh == sw else f"s{sh}x{sw}"
        grp = f" g{self.groups}" if self.groups > 1 else ""
        return f"{self.m}x{self.n}x{self.r}x{self.c} {kern} {st}{grp}"


@dataclass(frozen=True)
class Tiling:
    """Tile sizes (Tm output channels, Tn input channels, Tr rows, Tc columns); sizes larger
    than the layer act as the whole dimension. Per group for grouped convolutions."""

    tm: int
    tn: int
    tr: int
    tc: int

    def __str__(self) -> str:
        return f"[{self.tm},{self.tn},{self.tr},{self.tc}]"
