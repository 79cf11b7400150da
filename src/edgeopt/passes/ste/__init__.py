"""Ternary and binary weights with a per-output-channel scale, trained with a
straight-through estimator (STE) and recovered by distillation from the original.

- ``weights-ternary`` (:func:`apply_ternary`): Ternary Weight Networks (Li, Zhang & Liu
  2016, arXiv:1605.04711): weights α x {-1, 0, +1}, Δ = 0.7 x mean|W| per output channel.
- ``weights-binary`` (:func:`apply_binary`): Binary-Weight-Networks / XNOR-Net
  (Rastegari et al. 2016, arXiv:1603.05279): weights α x sign(W), α = mean|W|; with
  ``activations="binary"`` the convs' inputs are signs too (XNOR-Net), which OpenVINO's
  CPU plugin runs as BinaryConvolution.

Both keep the first conv and the last layer float32 by default (the papers' convention),
train latent float weights whose forward uses the quantized ones (Bengio et al. 2013;
BinaryConnect, Courbariaux et al. 2015), by knowledge distillation
(:func:`edgeopt.passes.distill.distill`) for ``seconds``, and export the codes through
:mod:`edgeopt.passes.lowbit`'s storage: INT2 (or INT4) behind DequantizeLinear, declared
at their true width (2 or 1 bits) in the ``edgeopt.weight_bits`` metadata.

- :mod:`.config`: :class:`TernaryConfig`, :class:`BinaryConfig`.
- :mod:`.quantizers`: TWN/BWN formulas, STE autograd functions, the STE layers (torch).
- :mod:`.network`: BatchNorm folding, layer choice, swapping the layers in and out (torch).
- :mod:`.export`: the codes into the ONNX graph (numpy/onnx).
- :mod:`.api`: the passes.

Importing this package does not import torch.
"""

from __future__ import annotations

from .api import NOTE_KEY, apply_binary, apply_ternary
from .config import BINARY_NAME, TERNARY_NAME, BinaryConfig, TernaryConfig

__all__ = ["BINARY_NAME", "NOTE_KEY", "TERNARY_NAME", "BinaryConfig", "TernaryConfig", "apply_binary",
           "apply_ternary"]
