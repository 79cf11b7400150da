"""The low-bit weight passes: configs and ``apply`` functions (see the package docstring)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import onnx
from onnx import numpy_helper

from ..._util.onnxgraph import copy_proto
from ...analysis.bitwidth import BITS_KEY, declared_bits
from ...errors import PassError
from ..base import finish, sort_nodes
from .graph import STORAGE, Weight, dequantize_weight, find_weights, untranspose_gemm
from ..quantize.opset import at_least
from .levels import pow2_round, quantize_per_channel

if TYPE_CHECKING:
    from ...model import Model

POW2_NAME = "weights-pow2"
SPEED_NOTE = ("Weight-only: activations stay float32. edgeopt's ONNX Runtime 1.32 sessions fold the "
              "DequantizeLinear of Conv weights at load (session.disable_quant_qdq): zoo:seednet-digits "
              "int4 runs at the fp32 latency (p50 0.91-1.03x; 1.5-1.9x when ORT dequantizes at every "
              "inference) with float32 weights in memory; a model whose low-bit weights all feed (K, N) "
              "Gemm/MatMul keeps ORT's MatMulNBits kernel (0.94-1.00x fp32; activations quantized to int8 "
              "inside at ORT's default accuracy level 4); OpenVINO 2026.4 reads INT4 and refuses INT2 (edgeopt's OpenVINO backend widens INT2 to INT4 when it reads a model); no "
              "CPU runtime has a shift kernel for power-of-two weights, which run as fp32.")


@dataclass(frozen=True)
class Int4Config:
    """Settings of ``weights-int4``.

    Attributes:
        bits: code width, 4 here (2 in :class:`Int2Config`).
        exclude: initializer names left float32 (e.g. the first Conv's weight).
        min_params: weights with fewer elements stay float32 (their scales would cost
            more than they save).
        matmul_nbits: store transB=1 Gemm weights as (K, N) with transB=0, the layout
            ONNX Runtime fuses into its MatMulNBits kernel (:func:`.graph.untranspose_gemm`).
        storage_bits: width of the stored codes; None stores them at ``bits``. 4 with
            bits=2 keeps the three 2-bit levels in INT4 tensors (twice the bytes, opset
            21), for OpenVINO 2026.4, which refuses INT2 files (edgeopt's own OpenVINO
            backend widens INT2 to INT4 as it reads them).
    """

    bits: int = 4
    exclude: tuple[str, ...] = ()
    min_params: int = 0
    matmul_nbits: bool = True
    storage_bits: int | None = None

    def __post_init__(self) -> None:
        if self.bits not in STORAGE:
            raise PassError(f"low-bit integer weights take bits 4 or 2, got {self.bits}: "
                            f"use int8-dynamic for 8 bits")
        if self.storage_bits is not None and (self.storage_bits not in STORAGE
                                              or self.storage_bits < self.bits):
            raise PassError(f"storage_bits {self.storage_bits} cannot hold {self.bits}-bit codes: "
                            f"pass None, or 4 for 2-bit codes")
        object.__setattr__(self, "exclude", tuple(self.exclude))


@dataclass(frozen=True)
class Int2Config(Int4Config):
    """Settings of ``weights-int2``: as :class:`Int4Config`, 2-bit codes {-1, 0, 1} x scale."""

    bits: int = 2


@dataclass(frozen=True)
class Pow2Config:
    """Settings of ``weights-pow2``.

    Attributes:
        bits: 1 sign bit + (bits - 1) exponent bits: 2^(bits-1) exponents per layer
            (Miyashita et al. 2016 use 3-5 bits; 4 by default).
        exclude: initializer names left float32.
    """

    bits: int = 4
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not 2 <= self.bits <= 8:
            raise PassError(f"weights-pow2 bits must be 2..8, got {self.bits}: pass bits=4")
        object.__setattr__(self, "exclude", tuple(self.exclude))


def _selected(proto: onnx.ModelProto, exclude: tuple[str, ...], min_params: int,
              model_name: str) -> list[Weight]:
    weights = find_weights(proto)
    unknown = set(exclude) - {w.name for w in weights}
    if unknown:
        raise PassError(f"exclude names no Conv/Gemm/MatMul weight of {model_name}: "
                        f"{sorted(unknown)[:4]}; use initializer names such as "
                        f"{[w.name for w in weights[:3]]}")
    return [w for w in weights if w.name not in exclude and math.prod(w.shape) >= min_params]


def apply_int(model: "Model", config: Int4Config | None = None) -> "Model":
    """``weights-int4`` / ``weights-int2``: per-channel symmetric integer weights stored
    as INT4 / INT2 behind DequantizeLinear (see :func:`.levels.quantize_per_channel`).

    Returns:
        a Model at opset >= 21 (int4) or >= 25 (int2); outputs are float32 as before.

    Raises:
        PassError: no weight to quantize, an unknown excluded name, or the opset
            conversion fails.
    """
    config = config or Int4Config()
    name = f"weights-int{config.bits}"
    weights = _selected(model.proto, config.exclude, config.min_params, model.name)
    if not weights:
        raise PassError(f"{model.name} has no float32 Conv/Gemm/MatMul weight for {name}: "
                        f"nothing to quantize")
    storage = config.storage_bits or config.bits
    proto = at_least(copy_proto(model.proto), STORAGE[storage][2], model.name,
                     "use weights-pow2 or int8-dynamic instead", needs=f"pass {name}")
    values = {t.name: numpy_helper.to_array(t) for t in proto.graph.initializer}
    wider = {}  # codes kept in a wider container (graph.container_bits) count at their width
    for w in weights:
        if config.matmul_nbits and w.transposed_gemm:
            w = untranspose_gemm(proto.graph, w, values)
        q, scale = quantize_per_channel(values[w.name], w.axis, config.bits)
        codes, stored = dequantize_weight(proto.graph, w, q, scale, storage)
        if stored > config.bits:
            wider[codes] = config.bits
    if wider:
        declare_bits(proto, wider)
    sort_nodes(proto.graph)
    return finish(model, proto, name)


def apply_pow2(model: "Model", config: Pow2Config | None = None) -> "Model":
    """``weights-pow2``: each selected weight rounded to sign x 2^k, k in a per-layer
    window of 2^(bits-1) exponents (:func:`.levels.pow2_round`), stored as float32 and
    declared at ``bits`` in the ``edgeopt.weight_bits`` metadata (:data:`BITS_KEY`), which
    :func:`edgeopt.analysis.bitwidth.weight_bytes` and the profile count it at.

    Raises:
        PassError: no weight to round, or an unknown excluded name.
    """
    config = config or Pow2Config()
    weights = _selected(model.proto, config.exclude, 0, model.name)
    if not weights:
        raise PassError(f"{model.name} has no float32 Conv/Gemm/MatMul weight for {POW2_NAME}: "
                        f"nothing to round")
    proto = copy_proto(model.proto)
    chosen = {w.name for w in weights}
    for t in proto.graph.initializer:
        if t.name in chosen:
            rounded, _ = pow2_round(numpy_helper.to_array(t), config.bits)
            t.CopyFrom(numpy_helper.from_array(rounded, t.name))
    declare_bits(proto, {n: config.bits for n in chosen})
    return finish(model, proto, POW2_NAME)


def declare_bits(proto: onnx.ModelProto, bits: dict[str, int]) -> None:
    """Add {initializer name: bits} to ``proto``'s :data:`BITS_KEY` metadata, in place (the
    entries already declared are kept), so :func:`edgeopt.analysis.bitwidth.weight_bytes`
    counts those initializers at that width (float32 weights holding low-bit values, or
    codes stored wider than their true width, e.g. binary codes in INT2)."""
    merged = {**declared_bits(proto), **bits}
    kept = [p for p in proto.metadata_props if p.key != BITS_KEY]
    del proto.metadata_props[:]
    proto.metadata_props.extend(kept)
    onnx.helper.set_model_props(proto, {**{p.key: p.value for p in kept}, BITS_KEY: json.dumps(merged)})
