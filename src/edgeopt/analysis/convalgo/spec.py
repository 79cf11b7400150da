"""What every convolution algorithm shares: the layer description, its cost record, the
algorithm record, and the two array helpers (padding, grouped matrix product).

Layout conventions (those of the ONNX Conv operator, https://onnx.ai/onnx/operators/onnx__Conv.html):
input X is NCHW float32 (N, C, H, W); weights W are (M, C/groups, KH, KW); output Y is
(N, M, OH, OW) with ``OH = (H + pad_top + pad_bottom - KH) // stride_h + 1``. Like the
operator, "convolution" here is cross-correlation (the kernel is not flipped).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

import numpy as np

from ...errors import ShapeError

FLOAT32_BYTES = 4
COMPLEX64_BYTES = 8


@dataclass(frozen=True)
class ConvSpec:
    """One 2-D convolution layer at concrete shapes (no dilation).

    Attributes:
        n, c, h, w: input batch, channels, height, width (elements).
        m: output channels.
        kh, kw: kernel height and width.
        stride: (stride_h, stride_w).
        pads: (top, left, bottom, right) zero padding, the ONNX ``pads`` order
            (x1_begin, x2_begin, x1_end, x2_end).
        groups: the ONNX ``group``; C and M must both be multiples of it
            (groups == C == M is a depthwise convolution).
    """

    n: int
    c: int
    h: int
    w: int
    m: int
    kh: int
    kw: int
    stride: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    groups: int = 1

    def __post_init__(self) -> None:
        dims = (self.n, self.c, self.h, self.w, self.m, self.kh, self.kw, *self.stride, self.groups)
        if any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1 for d in dims):
            raise ShapeError(f"conv dimensions must be positive integers, got {self}: fix the layer shape")
        if len(self.pads) != 4 or any(p < 0 for p in self.pads):
            raise ShapeError(f"pads must be 4 non-negative integers (top, left, bottom, right), got {self.pads}")
        if self.c % self.groups or self.m % self.groups:
            raise ShapeError(f"groups={self.groups} must divide both C={self.c} and M={self.m}: fix the layer")
        if self.oh < 1 or self.ow < 1:
            raise ShapeError(f"a {self.kh}x{self.kw} kernel does not fit the padded {self.hp}x{self.wp} "
                             f"input: add padding or use a smaller kernel")

    @classmethod
    def of(cls, x_shape: tuple[int, ...], w_shape: tuple[int, ...], *, stride: int | tuple[int, int] = 1,
           padding: int | tuple[int, ...] = 0, groups: int = 1) -> "ConvSpec":
        """The spec of ``conv(X, W)`` from array shapes.

        Args:
            x_shape: (N, C, H, W).
            w_shape: (M, C/groups, KH, KW).
            stride: one int or (sh, sw).
            padding: one int, (ph, pw) symmetric, or (top, left, bottom, right).
            groups: ONNX ``group``.

        Raises:
            ShapeError: not 4-D shapes, channels that disagree, or a kernel that does not fit.
        """
        if len(x_shape) != 4 or len(w_shape) != 4:
            raise ShapeError(f"need a 4-D NCHW input and (M, C/groups, KH, KW) weights, got {x_shape} and "
                             f"{w_shape}: only 2-D convolutions are implemented")
        if w_shape[1] * groups != x_shape[1]:
            raise ShapeError(f"weights {w_shape} with groups={groups} expect {w_shape[1] * groups} input "
                             f"channels, the input has {x_shape[1]}: fix groups or the weights")
        sh, sw = (stride, stride) if isinstance(stride, (int, np.integer)) else tuple(stride)
        if isinstance(padding, (int, np.integer)):
            pads = (padding,) * 4
        elif len(padding) == 2:
            pads = (padding[0], padding[1], padding[0], padding[1])
        else:
            pads = tuple(padding)
        n, c, h, w = (int(d) for d in x_shape)
        return cls(n, c, h, w, int(w_shape[0]), int(w_shape[2]), int(w_shape[3]), (int(sh), int(sw)),
                   tuple(int(p) for p in pads), int(groups))

    # -- derived sizes ---------------------------------------------------------------------
    @property
    def hp(self) -> int:
        """Padded input height."""
        return self.h + self.pads[0] + self.pads[2]

    @property
    def wp(self) -> int:
        """Padded input width."""
        return self.w + self.pads[1] + self.pads[3]

    @property
    def oh(self) -> int:
        """Output height."""
        return (self.hp - self.kh) // self.stride[0] + 1

    @property
    def ow(self) -> int:
        """Output width."""
        return (self.wp - self.kw) // self.stride[1] + 1

    @property
    def cg(self) -> int:
        """Input channels per group."""
        return self.c // self.groups

    @property
    def mg(self) -> int:
        """Output channels per group."""
        return self.m // self.groups

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(N, C, H, W)."""
        return (self.n, self.c, self.h, self.w)

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        """(M, C/groups, KH, KW)."""
        return (self.m, self.cg, self.kh, self.kw)

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """(N, M, OH, OW)."""
        return (self.n, self.m, self.oh, self.ow)

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the convolution by its definition (the profile's Conv count)."""
        return self.n * self.m * self.oh * self.ow * self.cg * self.kh * self.kw

    @property
    def depthwise(self) -> bool:
        """True when every input channel is its own group (groups == C > 1)."""
        return self.groups > 1 and self.groups == self.c

    @property
    def label(self) -> str:
        """Short description, e.g. ``64->128 3x3 s2 p1 56x56`` (``dw`` / ``gG`` for grouped)."""
        k = f"{self.kh}x{self.kw}"
        s = f" s{self.stride[0]}" if self.stride[0] == self.stride[1] else f" s{self.stride[0]}x{self.stride[1]}"
        p = f" p{self.pads[0]}" if len(set(self.pads)) == 1 else f" p{','.join(map(str, self.pads))}"
        g = " dw" if self.depthwise else (f" g{self.groups}" if self.groups > 1 else "")
        return f"{self.c}->{self.m} {k}{s}{p}{g} {self.h}x{self.w}" + (f" n{self.n}" if self.n > 1 else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the output size."""
        return {"n": self.n, "c": self.c, "h": self.h, "w": self.w, "m": self.m, "kh": self.kh, "kw": self.kw,
                "stride": list(self.stride), "pads": list(self.pads), "groups": self.groups,
                "oh": self.oh, "ow": self.ow, "macs": self.macs, "label": self.label}


@dataclass(frozen=True)
class AlgoCost:
    """The arithmetic and memory of one algorithm on one layer (counted, not measured).

    Attributes:
        mults: real multiplications of the core stage, each paired with an add (direct and
            im2col: the MACs; Winograd: the element-wise products in the transformed
            domain; FFT: 4 real multiplies per complex multiply, as numpy computes them).
        transform_flops: FLOPs of the per-inference transforms (Winograd input and output
            transforms, FFTs of the input and the inverse FFTs), 0 for direct and im2col.
        weight_transform_flops: FLOPs of transforming the weights (done once per model, as
            inference engines do; not timed).
        workspace: bytes of the buffers the algorithm allocates beyond input, output and raw
            weights, by name (the padded input copy, the im2col matrix, ...).
        weight_bytes: bytes of transformed weights kept instead of / beside the raw ones
            (Winograd U, FFT kernel spectra); 0 when the raw weights are used.
        note: how the numbers were counted, when not obvious.
    """

    mults: int
    transform_flops: int = 0
    weight_transform_flops: int = 0
    workspace: Mapping[str, int] = field(default_factory=dict)
    weight_bytes: int = 0
    note: str = ""

    @property
    def extra_bytes(self) -> int:
        """All extra memory in bytes: workspace plus transformed weights."""
        return sum(self.workspace.values()) + self.weight_bytes

    @property
    def flops(self) -> int:
        """Per-inference FLOPs: 2 per core multiply (multiply + add) plus the transforms."""
        return 2 * self.mults + self.transform_flops

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the derived ``extra_bytes`` and ``flops``."""
        return {"mults": self.mults, "transform_flops": self.transform_flops,
                "weight_transform_flops": self.weight_transform_flops, "workspace": dict(self.workspace),
                "weight_bytes": self.weight_bytes, "extra_bytes": self.extra_bytes, "flops": self.flops,
                "note": self.note}


@dataclass(frozen=True)
class Algorithm:
    """One convolution algorithm, as four functions.

    Attributes:
        name: registry key ("direct", "im2col", "winograd2", "winograd4", "fft").
        title: display name.
        source: the paper or spec the algorithm and its constants come from.
        supports: ``spec -> None`` when the algorithm can run the layer, else the reason.
        prepare: ``(weights float32 (M, C/g, KH, KW), spec) -> prepared weights`` (the weight
            transform an inference engine does once at load time).
        run: ``(x float32 (N, C, H, W), prepared, spec) -> y float32 (N, M, OH, OW)``.
        cost: ``spec -> AlgoCost``.
    """

    name: str
    title: str
    source: str
    supports: Callable[[ConvSpec], str | None]
    prepare: Callable[[np.ndarray, ConvSpec], Any]
    run: Callable[[np.ndarray, Any, ConvSpec], np.ndarray]
    cost: Callable[[ConvSpec], AlgoCost]


def supports_any(spec: ConvSpec) -> str | None:
    """``supports`` of algorithms that run every :class:`ConvSpec` (direct, im2col, FFT)."""
    return None


# -- array helpers ---------------------------------------------------------------------------
def pad_input(x: np.ndarray, spec: ConvSpec, *, extra_bottom: int = 0, extra_right: int = 0) -> np.ndarray:
    """``x`` (N, C, H, W) zero-padded by ``spec.pads`` plus ``extra_*`` rows/columns at the end;
    ``x`` itself (no copy) when there is nothing to pad."""
    top, left, bottom, right = spec.pads
    bottom, right = bottom + extra_bottom, right + extra_right
    if top == left == bottom == right == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def padded_bytes(spec: ConvSpec, *, extra_rows: int = 0, extra_cols: int = 0, itemsize: int = FLOAT32_BYTES) -> int:
    """Bytes of the copy :func:`pad_input` makes (0 when it returns the input itself)."""
    if not any(spec.pads) and extra_rows == extra_cols == 0:
        return 0
    return spec.n * spec.c * (spec.hp + extra_rows) * (spec.wp + extra_cols) * itemsize


def grouped_matmul(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``w @ x`` over broadcast leading axes: w (..., Mg, Cg), x (..., Cg, P) -> (..., Mg, P).

    With Cg == 1 (depthwise layers) the product is an outer product, done as a broadcast
    multiply: numpy's matmul would make one BLAS call per group for a 1-term sum.
    """
    if w.shape[-1] == 1:
        return w * x
    return np.matmul(w, x)


def check_fits(spec: ConvSpec, x: np.ndarray, w: np.ndarray | None = None) -> None:
    """Raise ShapeError when ``x`` (or ``w``) does not have the spec's shape or is not float32."""
    if tuple(x.shape) != spec.input_shape:
        raise ShapeError(f"input shape {tuple(x.shape)} != layer input {spec.input_shape}: pass a matching input")
    if w is not None and tuple(w.shape) != spec.weight_shape:
        raise ShapeError(f"weight shape {tuple(w.shape)} != layer weights {spec.weight_shape}: pass matching weights")
    for name, a in (("input", x), ("weights", w)):
        if a is not None and a.dtype != np.float32:
            raise ShapeError(f"{name} dtype is {a.dtype}: the algorithms take float32 (use .astype(np.float32))")


def fft_flops(points: int) -> float:
    """FLOPs of one real-input 2-D FFT (or inverse) over ``points`` real samples:
    2.5 * n * log2(n), half of the classic 5 n log2 n of a complex radix-2 FFT
    (Cooley & Tukey 1965; the count convention of FFTW's benchFFT, fftw.org/speed/method.html)."""
    return 2.5 * points * math.log2(points) if points > 1 else 0.0
