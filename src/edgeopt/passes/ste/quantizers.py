"""Ternary and binary weights with a per-output-channel scale, trained through the
straight-through estimator (STE), as torch modules.

- :func:`ternarize`: Ternary Weight Networks (Li, Zhang & Liu 2016, arXiv:1605.04711,
  eqs. 5-6 with the approximation of section 2.2): per output channel, threshold
  Δ = 0.7 x mean|W|, α = mean of |W| over |W| > Δ, weights α x {-1, 0, +1}.
- :func:`binarize`: Binary-Weight-Networks (Rastegari et al. 2016, "XNOR-Net",
  arXiv:1603.05279, section 3.1, eq. 4 and α = ||W||_1 / n): per output channel,
  α = mean|W|, weights α x sign(W) (sign(0) = +1, so every code is ±1).
- :class:`QuantizeSte`: forward the quantized weights, backward the gradient straight
  through to the latent float weights (Bengio, Léonard & Courville 2013,
  arXiv:1308.3432), optionally zeroed where |w| > clip (BinaryConnect, Courbariaux
  et al. 2015, arXiv:1511.00363, section 2.4 keeps real weights in [-1, 1]; XNOR-Net
  section 3.2 cancels the gradient of sign(r) for |r| > 1). α counts as a constant.
- :class:`SignSte`: binary activations for XNOR-Net, sign(x) forward, gradient passed
  where |x| <= 1 (Hubara et al. 2016, "Binarized Neural Networks", arXiv:1602.02830,
  eq. 4); exported as OpenVINO's ``org.openvinotoolkit`` FakeQuantize with levels=2.

Importing this module imports torch: :mod:`.api` imports it inside the pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TERNARY, BINARY = "ternary", "binary"
#: TWN's threshold factor: Δ* ≈ 0.7 x E|W| for weights uniform or normal (section 2.2).
TWN_DELTA = 0.7
#: The FakeQuantize input window around 0 whose midpoint is the sign's threshold: with
#: levels=2 every x <= 0 gives output_low, every x > 0 output_high.
_FQ_EPS = 1e-6


def _rows(w: torch.Tensor) -> torch.Tensor:
    """|w| as (C, n): output channels (axis 0 of Conv (O, I, kh, kw) and Linear (O, I)) by rows."""
    return w.detach().abs().reshape(w.shape[0], -1)


def _per_channel(v: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    return v.reshape((-1,) + (1,) * (w.dim() - 1))


def ternarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """TWN codes and scales of a weight tensor (see the module docstring).

    Args:
        w: float weights (C, ...), output channels on axis 0.

    Returns:
        (codes of w's shape and dtype with values in {-1, 0, 1}, α float (C,)); a channel
        with no |w| above its Δ (all zeros) gets α = 0 and codes 0.
    """
    mag = _rows(w)
    delta = TWN_DELTA * mag.mean(dim=1, keepdim=True)
    kept = mag > delta
    alpha = (mag * kept).sum(dim=1) / kept.sum(dim=1).clamp(min=1)
    codes = torch.sign(w.detach()) * kept.reshape(w.shape)
    return codes, alpha


def binarize(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """BWN codes and scales of a weight tensor (see the module docstring).

    Args:
        w: float weights (C, ...), output channels on axis 0.

    Returns:
        (codes of w's shape and dtype with values in {-1, 1}, α = mean|w| float (C,)).
    """
    codes = torch.where(w.detach() >= 0, 1.0, -1.0).to(w.dtype)
    return codes, _rows(w).mean(dim=1)


QUANTIZERS = {TERNARY: ternarize, BINARY: binarize}


class QuantizeSte(torch.autograd.Function):
    """α x codes forward; the incoming gradient unchanged backward, times 1{|w| <= clip}
    when ``clip`` is given (see the module docstring)."""

    @staticmethod
    def forward(ctx, w: torch.Tensor, kind: str, clip: float | None) -> torch.Tensor:
        codes, alpha = QUANTIZERS[kind](w)
        ctx.save_for_backward(w)
        ctx.clip = clip
        return codes * _per_channel(alpha, w)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (w,) = ctx.saved_tensors
        if ctx.clip is not None:
            grad = grad * (w.abs() <= ctx.clip).to(grad.dtype)
        return grad, None, None


class SignSte(torch.autograd.Function):
    """Binary activations: +1 where x > 0, else -1; gradient passed where |x| <= 1."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x)
        return torch.where(x > 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)

    @staticmethod
    def symbolic(g, x):
        # OpenVINO's FakeQuantize (opset1): levels=2 maps x <= midpoint of [in_low, in_high]
        # to out_low and the rest to out_high; the CPU plugin's ConvToBinaryConv turns a
        # Convolution fed by it (outputs -1/+1) with ±1 constant weights into BinaryConvolution.
        def const(v: float):
            return g.op("Constant", value_t=torch.tensor(v, dtype=torch.float32))

        out = g.op("org.openvinotoolkit::FakeQuantize", x, const(-_FQ_EPS), const(_FQ_EPS),
                   const(-1.0), const(1.0), levels_i=2)
        # The exporter knows no shape for a custom-domain op; an elementwise op keeps its
        # input's, and ops after it (adaptive pooling) need that shape to export.
        out.setType(x.type())
        return out


class SteConv2d(nn.Conv2d):
    """A Conv2d whose forward uses the quantized latent weight (and, with
    ``binary_input``, the sign of its input); parameters as nn.Conv2d's."""

    kind: str = TERNARY
    binary_input: bool = False
    clip: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.binary_input:
            x = SignSte.apply(x)
        return self._conv_forward(x, QuantizeSte.apply(self.weight, self.kind, self.clip), self.bias)


class SteLinear(nn.Linear):
    """A Linear whose forward uses the quantized latent weight."""

    kind: str = TERNARY
    clip: float | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, QuantizeSte.apply(self.weight, self.kind, self.clip), self.bias)


class XnorConv2d(nn.Module):
    """The exported form of a trained binary conv with binary input: sign(x) -> conv with
    ±1 weights and no bias -> x α per output channel -> + bias. OpenVINO runs the first two
    as one BinaryConvolution (and fuses the scale and bias into it)."""

    def __init__(self, conv: nn.Conv2d) -> None:
        super().__init__()
        codes, alpha = binarize(conv.weight)
        self.conv = _conv_like(nn.Conv2d, conv, bias=False)
        self.conv.weight.data.copy_(codes)
        self.register_buffer("alpha", alpha.reshape(1, -1, 1, 1).clone())
        bias = conv.bias.detach() if conv.bias is not None else torch.zeros_like(alpha)
        self.register_buffer("shift", bias.reshape(1, -1, 1, 1).clone())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(SignSte.apply(x)) * self.alpha + self.shift


def _conv_like(cls: type, conv: nn.Conv2d, bias: bool | None = None) -> nn.Conv2d:
    """A new ``cls`` with ``conv``'s geometry (weights copied; bias unless bias=False)."""
    has_bias = conv.bias is not None if bias is None else bias
    new = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
              conv.dilation, conv.groups, has_bias, conv.padding_mode)
    new.weight.data.copy_(conv.weight.detach())
    if has_bias:
        new.bias.data.copy_(conv.bias.detach())
    return new


def _linear_like(cls: type, linear: nn.Linear) -> nn.Linear:
    new = cls(linear.in_features, linear.out_features, linear.bias is not None)
    new.load_state_dict(linear.state_dict())
    return new


def ste_module(layer: nn.Module, kind: str, binary_input: bool = False, clip: float | None = None) -> nn.Module:
    """``layer`` (nn.Conv2d or nn.Linear) as its STE twin, same parameters as latent weights.

    Args:
        kind: "ternary" or "binary".
        binary_input: binarize the conv's input too (XNOR-Net; convs only).
        clip: zero the gradient of latent weights with |w| > clip (None: never).
    """
    if isinstance(layer, nn.Conv2d):
        new = _conv_like(SteConv2d, layer)
        new.binary_input = binary_input
    else:
        new = _linear_like(SteLinear, layer)
    new.kind, new.clip = kind, clip
    return new


def frozen_module(layer: nn.Module) -> nn.Module:
    """The trained STE twin as the plain layer to export: nn.Conv2d / nn.Linear with weights
    α x codes, or an :class:`XnorConv2d` for a conv with binary input."""
    if isinstance(layer, SteConv2d) and layer.binary_input:
        return XnorConv2d(layer)
    codes, alpha = QUANTIZERS[layer.kind](layer.weight)
    if isinstance(layer, SteConv2d):
        new = _conv_like(nn.Conv2d, layer)
    else:
        new = _linear_like(nn.Linear, layer)
    new.weight.data.copy_(codes * _per_channel(alpha, codes))
    return new
