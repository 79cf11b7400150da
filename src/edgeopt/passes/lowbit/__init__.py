"""Low-bit weights: per-channel 4-bit and 2-bit integers, and power-of-two weights.

Weight-only quantization: Conv / Gemm / MatMul weights are stored low-bit, activations
stay float32, so every op computes in float32 on the dequantized weights.

- ``weights-int4`` / ``weights-int2`` (:func:`apply_int`): symmetric per-output-channel
  codes stored as ONNX INT4 (opset 21) / INT2 (opset 25) initializers behind
  DequantizeLinear; the model's opset is raised with the ONNX version converter.
- ``weights-pow2`` (:func:`apply_pow2`): each weight rounded to sign x 2^k (Miyashita
  et al. 2016), stored as float32 because no ONNX type or CPU runtime kernel holds or
  computes with a shift; :func:`weight_bytes` counts it at its bit width, read from the
  model's ``edgeopt.weight_bits`` metadata (the rule of :mod:`edgeopt.analysis.bitwidth`,
  which the profile and the energy model use too).
"""

# The byte-counting rule lives in analysis/bitwidth (profile and energy use it too); its
# names stay importable from here.
from ...analysis.bitwidth import BITS_KEY, declared_bits, weight_bytes
from .api import (POW2_NAME, SPEED_NOTE, Int2Config, Int4Config, Pow2Config, apply_int, apply_pow2,
                  declare_bits)

__all__ = ["Int4Config", "Int2Config", "Pow2Config", "apply_int", "apply_pow2", "weight_bytes",
           "declared_bits", "declare_bits", "BITS_KEY", "POW2_NAME", "SPEED_NOTE"]
