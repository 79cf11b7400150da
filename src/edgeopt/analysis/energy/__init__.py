"""Memory traffic and energy per layer: compute, on-chip and off-chip (DRAM) energy.

Why: on a small device an inference's energy is dominated by off-chip memory. The seed
article (002, after Song Han) says one DRAM access costs about 200 multiply-adds and 128
on-chip SRAM accesses; with the table below it is 640 / (3.7 + 0.9) = 139 fp32 MACs and
640 / 5 = 128 SRAM reads (:func:`seed_claims`). A layer whose data stay on chip is cheap,
one that streams from DRAM is not. This module counts, per layer, the bytes it touches,
whether they fit on chip, the DRAM traffic that follows, and the energy.

The model (deliberately simple; every rule is here):

1. **Layers** are the runtime nodes of :func:`edgeopt.analysis.profile.profile`, minus
   the nodes a runtime fuses into their neighbours and that move no data of their own:
   QuantizeLinear/DequantizeLinear on activations (ONNX Runtime turns DQ -> Conv -> Q into
   one QLinearConv: "QDQ format" in onnxruntime.ai/docs/performance/model-optimizations/
   quantization.html), views (Reshape, Flatten, Squeeze, Unsqueeze, Identity, Dropout) and
   element-wise activations (Relu, Clip, ...: ORT's Conv+Activation fusion). A fused
   node's output is the same tensor as its input (an alias); the tensor's size is the
   smallest of its aliases, so a float tensor between Q and DQ counts at its uint8 size.
   Everything else (BatchNormalization, Add, pooling, Concat, Cast, ...) is a layer;
   Shape and Size layers read no activation data (only its metadata).
2. **Precision** of a layer's MACs: int8 for the integer ops (ConvInteger, QLinearConv,
   MatMulInteger, QLinearMatMul, QGemm) and for layers whose activation inputs all come
   from DequantizeLinear and whose weights, if any, are stored as 8-bit integers (QDQ);
   fp16 when its first output is float16; else fp32. Precision is what the runtime
   computes in, not what the weights are stored at: weight-only low-bit models
   (``weights-int4``/``-int2``: DequantizeLinear on INT4/INT2 initializers, activations
   float32; ``weights-pow2``: float32 values declared 4-bit) run fp32 MACs on the
   dequantized weights, so their saving is in weight bytes (rules 3-5), not in MACs.
3. **Working set** = weight bytes (as the profile counts them: each stored tensor at the
   width a pass declared in the ``edgeopt.weight_bits`` metadata, else at its stored
   width, INT4/INT2 packed; :mod:`edgeopt.analysis.bitwidth`) + input + output
   activation bytes (runtime dtypes). It *fits* a level (the device's L1d, L2, L3,
   the SRAM) when it is no larger. The traffic model uses one on-chip capacity: the SRAM
   size when given, else the largest cache (the last level).
4. **DRAM traffic** per inference of the whole batch, the compulsory minimum (each byte
   that must cross the chip boundary crosses once; re-fetches caused by tiling and loop
   order are the subject of the dataflow model):

   - weights are read once (the batch shares them), unless the whole model's weights
     plus the largest layer's activations fit on chip: then they stay resident across
     inferences (steady state) and cost no DRAM traffic;
   - an activation tensor stays on chip when it goes from a layer that fits to the very
     next layer only, which fits too, and is not a graph output; otherwise its producer
     writes it to DRAM and each consuming layer reads it back. Graph inputs are read
     from DRAM.
5. **Energy** (pJ): compute = MACs x (mult + add) at the layer's precision (the
   approximate non-MAC arithmetic of ``LayerProfile.other_ops`` is left out, as in the
   MAC-based comparisons of the seed); on-chip = working-set bytes / 4 32-bit SRAM
   accesses x ``sram_read_pj`` (every byte passes through on-chip memory once); DRAM =
   DRAM bytes / 4 x ``dram_read_pj`` (a write is charged as a read: the table lists reads
   only).

Sources: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
(45 nm, 0.9 V energy table, also Table I of Han et al., "EIE", ISCA 2016); Jouppi et al.,
"In-Datacenter Performance Analysis of a Tensor Processing Unit", ISCA 2017, Table 1
(ops per weight byte).

Modules: :mod:`.table` (the energy table, the seed's DRAM ratios), :mod:`.reuse` (ops per
weight byte and the compute : weight-DRAM ratio it implies), :mod:`.graph` (rules 1, 2, 4:
the graph walk), :mod:`.layers` (rules 3-5: per-layer traffic and energy, the report),
:mod:`.compare` (variants of one model, layer by layer).
"""

from __future__ import annotations

from .compare import EnergyComparison, compare_energy
from .layers import EnergyReport, LayerEnergy, memory_levels, model_energy
from .reuse import (
    SEED_COMPUTE_TO_WEIGHT_DRAM,
    TPU_OPS_PER_WEIGHT_BYTE,
    compute_to_weight_dram_ratio,
    ops_per_weight_byte,
)
from .table import PRECISIONS, SEED_DRAM_PER_MAC, SEED_DRAM_PER_SRAM, EnergyTable, load_table, seed_claims

__all__ = [
    "PRECISIONS", "SEED_COMPUTE_TO_WEIGHT_DRAM", "SEED_DRAM_PER_MAC", "SEED_DRAM_PER_SRAM",
    "TPU_OPS_PER_WEIGHT_BYTE", "EnergyComparison", "EnergyReport", "EnergyTable", "LayerEnergy",
    "compare_energy", "compute_to_weight_dram_ratio", "load_table", "memory_levels", "model_energy",
    "ops_per_weight_byte", "seed_claims",
]
