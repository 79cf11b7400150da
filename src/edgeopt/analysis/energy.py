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
   fp16 when its first output is float16; else fp32.
3. **Working set** = weight bytes (stored dtypes, as the profile counts them) + input +
   output activation bytes (runtime dtypes). It *fits* a level (the device's L1d, L2, L3,
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
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

import onnx

from ..errors import EdgeoptError
from ..model import Model
from ..load import load_model

if TYPE_CHECKING:
    from .device import DeviceProfile
    from .profile import ModelProfile

PRECISIONS = ("fp32", "fp16", "int32", "int8")

# Jouppi et al., ISCA 2017, Table 1 ("TPU Ops / Weight Byte"), the figures the seed quotes.
# Server batch sizes are included in these (each weight byte is reused across the batch).
TPU_OPS_PER_WEIGHT_BYTE = {"CNN0": 2888, "CNN1": 1750, "LSTM0": 64, "LSTM1": 96}
# Seed 002: "one DRAM access costs 200 multiply-adds and 128 on-chip memory accesses".
SEED_DRAM_PER_MAC = 200.0
SEED_DRAM_PER_SRAM = 128.0
# Seed 002: compute : memory energy with every weight from DRAM, "2:1 and 2.5:1" (CNN0,
# CNN1), "1:10 and 1:7" (LSTM0, LSTM1).
SEED_COMPUTE_TO_WEIGHT_DRAM = {"CNN0": 2.0, "CNN1": 2.5, "LSTM0": 1 / 10, "LSTM1": 1 / 7}

_INTEGER_OPS = {"ConvInteger", "MatMulInteger", "QLinearConv", "QLinearMatMul", "com.microsoft:QGemm"}
_QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}
_VIEW_OPS = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"}
_ACTIVATION_OPS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
                   "Selu", "Gelu", "Mish"}
_METADATA_OPS = {"Shape", "Size"}
_INT8_TYPES = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
_WORD_BYTES = 4  # the table's memory energies are per 32-bit access


# -- the energy table ------------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyTable:
    """Energy per operation and per 32-bit memory access, pJ.

    Defaults: Horowitz, ISSCC 2014, 45 nm at 0.9 V (the figure "Rough energy costs for
    various operations"; reproduced as Table I of Han et al., EIE, ISCA 2016). An int8
    MAC is charged an 8-bit multiply plus an 8-bit add (0.23 pJ), as the issue states;
    kernels that accumulate in int32 pay 0.2 + 0.1 = 0.3 pJ (set ``int8_add_pj=0.1``).

    Attributes:
        fp32_mult_pj, fp32_add_pj: 32-bit float multiply 3.7, add 0.9.
        fp16_mult_pj, fp16_add_pj: 16-bit float multiply 1.1, add 0.4.
        int32_mult_pj, int32_add_pj: 32-bit integer multiply 3.1, add 0.1.
        int8_mult_pj, int8_add_pj: 8-bit integer multiply 0.2, add 0.03.
        sram_read_pj: 32-bit read of an 8 KB SRAM, 5.
        dram_read_pj: 32-bit DRAM read, 640.
        source: where the numbers come from (free text, shown in reports).

    Raises:
        EdgeoptError: a value is not a finite number > 0.
    """

    fp32_mult_pj: float = 3.7
    fp32_add_pj: float = 0.9
    fp16_mult_pj: float = 1.1
    fp16_add_pj: float = 0.4
    int32_mult_pj: float = 3.1
    int32_add_pj: float = 0.1
    int8_mult_pj: float = 0.2
    int8_add_pj: float = 0.03
    sram_read_pj: float = 5.0
    dram_read_pj: float = 640.0
    source: str = "Horowitz, ISSCC 2014, 45 nm, 0.9 V"

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            if f.name == "source":
                continue
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                    math.isfinite(value) and value > 0):
                raise EdgeoptError(f"energy table entry {f.name}={value!r} is not a positive number of pJ: "
                                   f"fix it, e.g. {f.name}={f.default}")

    def mac_pj(self, precision: str = "fp32") -> float:
        """Energy of one multiply-accumulate (mult + add) at ``precision``, pJ.

        Raises:
            EdgeoptError: unknown precision (the message lists :data:`PRECISIONS`).
        """
        if precision not in PRECISIONS:
            raise EdgeoptError(f"unknown precision {precision!r}: choose from {', '.join(PRECISIONS)}")
        return getattr(self, f"{precision}_mult_pj") + getattr(self, f"{precision}_add_pj")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every entry."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, overrides: Mapping[str, Any]) -> "EnergyTable":
        """The default table with ``overrides`` applied (any subset of the fields).

        Raises:
            EdgeoptError: an unknown key or a value that is not a positive number.
        """
        if not isinstance(overrides, Mapping):
            raise EdgeoptError("an energy table must be a JSON object of pJ values, e.g. {\"dram_read_pj\": 1300}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise EdgeoptError(f"unknown energy table entries {', '.join(unknown)}: use {', '.join(names)}")
        return cls(**dict(overrides))


def load_table(path: str | os.PathLike) -> EnergyTable:
    """An :class:`EnergyTable` from a JSON object overriding some entries (pJ).

    Raises:
        EdgeoptError: unreadable file, not JSON, unknown keys or bad values.
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise EdgeoptError(f"cannot read energy table {path}: {e}: pass a JSON object such as "
                           f"{{\"dram_read_pj\": 1300}}") from e
    return EnergyTable.from_dict(data)


def seed_claims(table: EnergyTable | None = None) -> dict[str, dict[str, float]]:
    """The seed's DRAM cost ratios beside the same ratios computed from ``table``.

    Returns:
        {"dram_per_fp32_mac": {"table": 640 / 4.6 = 139.1, "seed": 200},
         "dram_per_sram_read": {"table": 640 / 5 = 128, "seed": 128}}.
    """
    t = table or EnergyTable()
    return {
        "dram_per_fp32_mac": {"table": t.dram_read_pj / t.mac_pj("fp32"), "seed": SEED_DRAM_PER_MAC},
        "dram_per_sram_read": {"table": t.dram_read_pj / t.sram_read_pj, "seed": SEED_DRAM_PER_SRAM},
    }


def compute_to_weight_dram_ratio(ops_per_byte: float, table: EnergyTable | None = None,
                                 precision: str = "int8", ops_per_mac: float = 2) -> float:
    """Compute energy over weight-fetch energy when every weight byte comes from DRAM.

    The seed's estimate for the TPU workloads ("2:1 and 2.5:1 for the CNNs, 1:10 and 1:7
    for the LSTMs"): ``ops_per_byte`` operations per weight byte, ``ops_per_mac`` of
    them per MAC, each MAC at ``precision``, against one DRAM read per 4 bytes. With
    the field's 2 ops per MAC, 2888 ops/byte at int8 give 1444 x 0.23 pJ / 160 pJ = 2.08.
    Charging each TPU op as one MAC (``ops_per_mac=1``) gives 2.52 for 1,750 (CNN1),
    1 : 10.9 for 64 (LSTM0) and 1 : 7.2 for 96 (LSTM1): the seed's figures follow
    that reading, except CNN0 (4.2, not 2).

    Raises:
        EdgeoptError: ``ops_per_byte`` or ``ops_per_mac`` <= 0, or an unknown precision.
    """
    if not (ops_per_byte > 0 and ops_per_mac > 0):
        raise EdgeoptError(f"ops per weight byte ({ops_per_byte!r}) and ops per MAC ({ops_per_mac!r}) must be > 0: "
                           f"pass e.g. 2888 and 2")
    t = table or EnergyTable()
    return (ops_per_byte / ops_per_mac) * t.mac_pj(precision) / (t.dram_read_pj / _WORD_BYTES)


# -- ops per weight byte -----------------------------------------------------------------------
def ops_per_weight_byte(model: "Model | str | ModelProfile", batch: int = 1, bytes_per_weight: float = 1) -> float:
    """Operations per weight byte (the TPU paper's reuse figure) at ``batch``.

    Convention: 2 x MACs (at ``batch``) / (params x ``bytes_per_weight``), params as the
    profile counts them (weights and biases, shared tensors once); 1 byte per weight is
    the TPU's int8. Jouppi et al. (ISCA 2017, Table 1) give 2,888 and 1,750 for their
    CNNs, 64 and 96 for their LSTMs, at server batch sizes; ours grows linearly with batch.

    Args:
        model: a Model, a model reference ("zoo:resnet18") or a ModelProfile at ``batch``.

    Raises:
        EdgeoptError: ``bytes_per_weight`` <= 0, a ModelProfile at another batch, or a
            model without weights.
    """
    from .profile import ModelProfile, profile

    if not bytes_per_weight > 0:
        raise EdgeoptError(f"bytes_per_weight must be > 0, got {bytes_per_weight!r}: pass 1 (int8) or 4 (fp32)")
    if isinstance(model, ModelProfile):
        if model.batch != batch:
            raise EdgeoptError(f"the profile is at batch {model.batch}, not {batch}: profile the model at batch {batch}")
        prof = model
    else:
        prof = profile(load_model(model), batch=batch)
    if prof.params == 0:
        raise EdgeoptError(f"{prof.model} has no weights: ops per weight byte is defined for models with weights")
    return 2 * prof.macs / (prof.params * bytes_per_weight)


# -- per-layer energy --------------------------------------------------------------------------
@dataclass(frozen=True)
class LayerEnergy:
    """Traffic and energy of one layer (module doc, 1.-5.), for the whole batch.

    Attributes:
        name, op_type: as in the profile's LayerProfile.
        precision: "fp32", "fp16" or "int8" (module doc, 2.).
        macs: multiply-accumulates.
        weight_bytes: stored bytes of its weights.
        input_bytes, output_bytes: runtime bytes of its activation inputs and outputs.
        fits: the smallest level holding the working set ("L1d", "L2", "L3", "SRAM", ...),
            or "DRAM" when none does.
        on_chip: the working set fits the capacity the traffic model uses.
        dram_weight_bytes: weight bytes read from DRAM.
        dram_read_bytes, dram_write_bytes: activation bytes read from / written to DRAM.
        compute_pj, onchip_pj, dram_pj: energy, pJ.
    """

    name: str
    op_type: str
    precision: str
    macs: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    fits: str
    on_chip: bool
    dram_weight_bytes: int
    dram_read_bytes: int
    dram_write_bytes: int
    compute_pj: float
    onchip_pj: float
    dram_pj: float

    @property
    def working_set(self) -> int:
        """Weights + input + output activations, bytes."""
        return self.weight_bytes + self.input_bytes + self.output_bytes

    @property
    def dram_bytes(self) -> int:
        """All DRAM traffic of the layer, bytes."""
        return self.dram_weight_bytes + self.dram_read_bytes + self.dram_write_bytes

    @property
    def memory_pj(self) -> float:
        """On-chip + DRAM energy, pJ."""
        return self.onchip_pj + self.dram_pj

    @property
    def total_pj(self) -> float:
        """Compute + memory energy, pJ."""
        return self.compute_pj + self.memory_pj

    @property
    def dram_dominated(self) -> bool:
        """DRAM energy is more than half of the layer's energy."""
        return self.dram_pj > 0.5 * self.total_pj

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of the fields and derived values."""
        d = dataclasses.asdict(self)
        d.update(working_set=self.working_set, dram_bytes=self.dram_bytes, memory_pj=self.memory_pj,
                 total_pj=self.total_pj, dram_dominated=self.dram_dominated)
        return d


@dataclass(frozen=True)
class EnergyReport:
    """Per-layer traffic and energy of one model on one memory hierarchy.

    Attributes:
        model: the Model's display name.
        batch: batch size (MACs, activations and energies are for the whole batch).
        device: the DeviceProfile's name, or None when only an SRAM size was given.
        levels: {level name: bytes} checked for "fits" (device data caches and "SRAM"),
            smallest first.
        capacity: (level name, bytes) of the on-chip capacity the traffic model uses.
        weights_resident: the model's weights stay on chip across inferences (module doc, 4.).
        table: the energy table used.
        layers: one row per layer (fused nodes excluded), in topological order.
        fused: names of the nodes treated as fused (module doc, 1.).
        unsized: activation tensors whose size is unknown (counted as 0 bytes).
    """

    model: str
    batch: int
    device: str | None
    levels: dict[str, int]
    capacity: tuple[str, int]
    weights_resident: bool
    table: EnergyTable
    layers: list[LayerEnergy]
    fused: list[str] = field(default_factory=list)
    unsized: list[str] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """Total multiply-accumulates."""
        return sum(layer.macs for layer in self.layers)

    @property
    def compute_pj(self) -> float:
        """Total compute energy, pJ."""
        return sum(layer.compute_pj for layer in self.layers)

    @property
    def onchip_pj(self) -> float:
        """Total on-chip memory energy, pJ."""
        return sum(layer.onchip_pj for layer in self.layers)

    @property
    def dram_pj(self) -> float:
        """Total DRAM energy, pJ."""
        return sum(layer.dram_pj for layer in self.layers)

    @property
    def total_pj(self) -> float:
        """Total energy of one inference of the batch, pJ."""
        return self.compute_pj + self.onchip_pj + self.dram_pj

    @property
    def dram_bytes(self) -> int:
        """Total DRAM traffic, bytes."""
        return sum(layer.dram_bytes for layer in self.layers)

    def share(self, layer: LayerEnergy) -> float:
        """The layer's fraction of the model's total energy (0..1)."""
        return layer.total_pj / self.total_pj if self.total_pj else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: settings, totals (pJ, bytes) and the layer rows with shares."""
        return {
            "model": self.model, "batch": self.batch, "device": self.device, "levels": dict(self.levels),
            "capacity": {"name": self.capacity[0], "bytes": self.capacity[1]},
            "weights_resident": self.weights_resident, "table": self.table.to_dict(),
            "macs": self.macs, "compute_pj": self.compute_pj, "onchip_pj": self.onchip_pj,
            "dram_pj": self.dram_pj, "total_pj": self.total_pj, "dram_bytes": self.dram_bytes,
            "per_image_pj": self.total_pj / self.batch, "fused": list(self.fused),
            "unsized": list(self.unsized),
            "layers": [{**layer.to_dict(), "share": self.share(layer)} for layer in self.layers],
        }


def memory_levels(device: "DeviceProfile | None", sram: int | None) -> tuple[dict[str, int], tuple[str, int]]:
    """The levels to check and the on-chip capacity the traffic model uses.

    Returns:
        ({level: bytes}, smallest first: the device's data caches and "SRAM" when given;
         (name, bytes) of the SRAM when given, else of the largest cache).

    Raises:
        EdgeoptError: neither a device with caches nor an SRAM size, or a size <= 0.
    """
    # Instruction caches (L1i) hold no data.
    caches = {k: int(v) for k, v in (device.caches if device else {}).items() if not k.endswith("i")}
    levels = dict(sorted(caches.items(), key=lambda kv: kv[1]))
    if sram is not None:
        if isinstance(sram, bool) or not isinstance(sram, int) or sram <= 0:
            raise EdgeoptError(f"SRAM size {sram!r} is not a positive number of bytes: pass e.g. 262144 (256 KiB)")
        levels = dict(sorted({**levels, "SRAM": sram}.items(), key=lambda kv: kv[1]))
        return levels, ("SRAM", sram)
    if any(v <= 0 for v in levels.values()):
        raise EdgeoptError(f"device {device.name!r} has a cache size <= 0 ({levels}): fix the device profile")
    if not levels:
        raise EdgeoptError("no on-chip memory size: pass --sram SIZE (e.g. 256KiB) or a --device profile with caches")
    name = max(levels, key=lambda k: levels[k])
    return levels, (name, levels[name])


def model_energy(model: Model | str, device: "DeviceProfile | None" = None, *, sram: int | None = None,
                 batch: int = 1, table: EnergyTable | None = None) -> EnergyReport:
    """Per-layer memory traffic and energy of ``model`` (module doc, 1.-5.).

    Args:
        model: a Model or a reference ("zoo:seednet", a path).
        device: its caches are the levels checked; the largest is the on-chip capacity
            unless ``sram`` is given.
        sram: on-chip SRAM size, bytes (e.g. 262144); then the capacity.
        batch: batch size; MACs and activations scale with it, weights do not.
        table: pJ per operation (default :class:`EnergyTable`).

    Returns:
        an :class:`EnergyReport` (pJ, bytes).

    Raises:
        EdgeoptError: no memory size (see :func:`memory_levels`); ShapeError from the profile.
    """
    from .profile import profile

    model = load_model(model)
    table = table or EnergyTable()
    levels, capacity = memory_levels(device, sram)
    prof = profile(model, batch=batch)
    graph = _graph(model, batch)
    if [layer.name for layer in prof.layers] != [name for name, _ in graph.runtime]:
        raise EdgeoptError(f"the energy model's view of {model.name} disagrees with its profile: report this model")
    rows = _layers(graph, prof)
    cap = capacity[1]
    fits = [r.weight_bytes + r.input_bytes + r.output_bytes <= cap for r in rows]
    largest_acts = max((r.input_bytes + r.output_bytes for r in rows), default=0)
    weights_resident = sum(r.weight_bytes for r in rows) + largest_acts <= cap
    reads, writes = _activation_traffic(graph, rows, fits)
    layers = []
    for k, r in enumerate(rows):
        ws = r.weight_bytes + r.input_bytes + r.output_bytes
        dram_w = 0 if weights_resident else r.weight_bytes
        layers.append(LayerEnergy(
            name=r.name, op_type=r.op_type, precision=r.precision, macs=r.macs,
            weight_bytes=r.weight_bytes, input_bytes=r.input_bytes, output_bytes=r.output_bytes,
            fits=next((name for name, size in levels.items() if ws <= size), "DRAM"),
            on_chip=fits[k], dram_weight_bytes=dram_w, dram_read_bytes=reads[k], dram_write_bytes=writes[k],
            compute_pj=r.macs * table.mac_pj(r.precision),
            onchip_pj=ws / _WORD_BYTES * table.sram_read_pj,
            dram_pj=(dram_w + reads[k] + writes[k]) / _WORD_BYTES * table.dram_read_pj,
        ))
    return EnergyReport(
        model=model.name, batch=batch, device=device.name if device else None, levels=levels,
        capacity=capacity, weights_resident=weights_resident, table=table, layers=layers,
        fused=[name for name, node in graph.runtime if _fusible(node, graph)],
        unsized=sorted(graph.unsized),
    )


# -- comparison of variants ---------------------------------------------------------------------
@dataclass(frozen=True)
class EnergyComparison:
    """Per-layer energy of several variants of one model (fp32, int8, pruned, ...).

    Attributes:
        reports: {variant name: its EnergyReport}, the first is the baseline.
        rows: (layer label, {variant: its LayerEnergy or None}) per MAC layer, in the
            baseline's order, then layers only some variants have.
        matched_by: {variant: how its MAC layers were matched to the baseline's}: "name"
            (the same layer names: passes keep them, though ORT's quantization may
            reorder branches), "order" (renamed but as many MAC layers: the conv/matmul
            sequence survives quantization and channel pruning) or "name, partial"
            (neither; a layer missing in a variant is None).
    """

    reports: dict[str, EnergyReport]
    rows: list[tuple[str, dict[str, LayerEnergy | None]]]
    matched_by: dict[str, str]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: per-variant totals and the per-layer total energies (pJ)."""
        return {
            "matched_by": dict(self.matched_by),
            "totals_pj": {v: r.total_pj for v, r in self.reports.items()},
            "dram_pj": {v: r.dram_pj for v, r in self.reports.items()},
            "layers": [{"layer": label, "total_pj": {v: (e.total_pj if e else None) for v, e in row.items()}}
                       for label, row in self.rows],
        }


def compare_energy(models: Mapping[str, Model], device: "DeviceProfile | None" = None, *,
                   sram: int | None = None, batch: int = 1, table: EnergyTable | None = None) -> EnergyComparison:
    """:func:`model_energy` of each variant, MAC layers matched across variants.

    Args:
        models: {variant name: Model}, e.g. {"fp32": m, "int8": q, "pruned50": p}; the
            first is the baseline.

    Raises:
        EdgeoptError: no models; see :func:`model_energy`.
    """
    if not models:
        raise EdgeoptError("nothing to compare: pass at least one model variant")
    reports = {name: model_energy(m, device, sram=sram, batch=batch, table=table) for name, m in models.items()}
    mac_layers = {v: [layer for layer in r.layers if layer.macs > 0] for v, r in reports.items()}
    base = next(iter(mac_layers.values()))
    labels = [layer.name for layer in base]
    matched: dict[str, dict[str, LayerEnergy]] = {}
    how: dict[str, str] = {}
    for v, layers in mac_layers.items():
        names = [layer.name for layer in layers]
        if sorted(names) == sorted(labels) and len(set(names)) == len(names):
            matched[v], how[v] = {layer.name: layer for layer in layers}, "name"
        elif len(layers) == len(base):
            matched[v], how[v] = dict(zip(labels, layers)), "order"
        else:
            matched[v], how[v] = {layer.name: layer for layer in layers}, "name, partial"
    labels += [n for v in mac_layers for n in matched[v] if n not in set(labels)]
    rows = [(label, {v: matched[v].get(label) for v in mac_layers}) for label in dict.fromkeys(labels)]
    return EnergyComparison(reports, rows, how)


# -- graph walk ---------------------------------------------------------------------------------
@dataclass
class _Graph:
    """The runtime view shared with the profile, plus aliases and runtime tensor sizes.

    Attributes:
        runtime: (the profile's layer name, node) per runtime node, in order.
        consts: constant tensors (weights).
        outputs: graph output names.
        producer_op: {tensor: op type of the runtime node producing it}.
        float16: float16 tensors.
        int8_consts: constant tensors computed from 8-bit integer initializers (QDQ weights).
        root: {tensor: the tensor it aliases} through fused nodes (module doc, 1.).
        size: {alias root: runtime bytes}, the smallest of its aliases.
        unsized: activation tensors of unknown size.
    """

    runtime: list[tuple[str, onnx.NodeProto]]
    consts: set[str]
    outputs: set[str]
    producer_op: dict[str, str]
    float16: set[str]
    int8_consts: set[str]
    root: dict[str, str] = field(default_factory=dict)
    size: dict[str, int] = field(default_factory=dict)
    unsized: set[str] = field(default_factory=set)

    def find(self, x: str) -> str:
        """The alias root of tensor ``x``."""
        while x in self.root:
            x = self.root[x]
        return x


@dataclass(frozen=True)
class _Row:
    name: str
    op_type: str
    precision: str
    macs: int
    weight_bytes: int
    input_bytes: int
    output_bytes: int
    inputs: tuple[str, ...]  # alias roots
    outputs: tuple[str, ...]


def _graph(model: Model, batch: int) -> _Graph:
    """Shapes and constants as :func:`edgeopt.analysis.profile.profile` sees them
    (:func:`~edgeopt.analysis.graphview.graph_view`), with the aliases of fused nodes
    resolved."""
    from .graphview import graph_view, tensor_bytes

    view = graph_view(model, batch)
    g, types, consts, runtime = view.graph, view.types, view.consts, [
        (n.name or f"{n.op_type}_{i}", n) for i, n in view.runtime]
    needed = {x for _, n in runtime for x in (*n.input, *n.output) if x and x not in consts}
    graph = _Graph(
        runtime=runtime, consts=set(consts), outputs={o.name for o in g.output},
        producer_op={o: n.op_type for _, n in runtime for o in n.output if o},
        float16={x for x in needed if types.get(x, (None, 0))[1] == onnx.TensorProto.FLOAT16},
        int8_consts={x for x, sources in consts.items()
                     if any(types.get(s, (None, 0))[1] in _INT8_TYPES for s in sources)},
    )
    for _, node in runtime:
        if _fusible(node, graph):
            graph.root[node.output[0]] = graph.find(_data_inputs(node, graph)[0])
    for x in sorted(needed):
        b, r = tensor_bytes(*types.get(x, (None, 0))), graph.find(x)
        if b == 0:
            graph.unsized.add(x)
        elif r not in graph.size or b < graph.size[r]:
            graph.size[r] = b
    return graph


def _data_inputs(node: onnx.NodeProto, graph: _Graph) -> list[str]:
    return [x for x in node.input if x and x not in graph.consts]


def _fusible(node: onnx.NodeProto, graph: _Graph) -> bool:
    """A node that moves no data of its own (module doc, 1.): one activation in, one out."""
    if node.domain not in ("", "ai.onnx") or len([o for o in node.output if o]) != 1:
        return False
    if node.op_type not in _QDQ_OPS | _VIEW_OPS | _ACTIVATION_OPS:
        return False
    return len(_data_inputs(node, graph)) == 1


def _precision(node: onnx.NodeProto, graph: _Graph) -> str:
    """The precision of the layer's MACs (module doc, 2.)."""
    from .ophandlers import handler_key

    if handler_key(node.domain, node.op_type) in _INTEGER_OPS:
        return "int8"
    data = _data_inputs(node, graph)
    weights = [x for x in node.input if x in graph.consts]
    # QDQ: activations dequantized from uint8, and weights (if any) from int8 initializers
    # (a layer kept in float after a quantized one reads a DQ output but float weights).
    if data and all(graph.producer_op.get(x) == "DequantizeLinear" for x in data) and (
            not weights or any(x in graph.int8_consts for x in weights)):
        return "int8"
    return "fp16" if node.output and node.output[0] in graph.float16 else "fp32"


def _layers(graph: _Graph, prof: "ModelProfile") -> list[_Row]:
    """One row per non-fused runtime node, activations at their alias roots' sizes."""
    rows = []
    for (name, node), lp in zip(graph.runtime, prof.layers):
        if _fusible(node, graph):
            continue
        # Shape and Size read a tensor's metadata, not its data.
        reads = [] if node.op_type in _METADATA_OPS else _data_inputs(node, graph)
        ins = tuple(dict.fromkeys(graph.find(x) for x in reads))
        outs = tuple(dict.fromkeys(graph.find(x) for x in node.output if x))
        rows.append(_Row(
            name=name, op_type=lp.op_type, precision=_precision(node, graph), macs=lp.macs,
            weight_bytes=lp.weight_bytes, input_bytes=sum(graph.size.get(x, 0) for x in ins),
            output_bytes=sum(graph.size.get(x, 0) for x in outs), inputs=ins, outputs=outs,
        ))
    return rows


def _activation_traffic(graph: _Graph, rows: list[_Row], fits: list[bool]) -> tuple[list[int], list[int]]:
    """DRAM bytes read and written per layer for the activations (module doc, 4.)."""
    producer = {x: k for k, r in enumerate(rows) for x in r.outputs}
    consumers: dict[str, set[int]] = {}
    for k, r in enumerate(rows):
        for x in r.inputs:
            consumers.setdefault(x, set()).add(k)
    graph_outputs = {graph.find(x) for x in graph.outputs}

    def resident(x: str) -> bool:
        p = producer.get(x)
        if p is None or not fits[p] or x in graph_outputs or p + 1 >= len(rows):
            return False
        return consumers.get(x, set()) == {p + 1} and fits[p + 1]

    reads = [sum(graph.size.get(x, 0) for x in r.inputs if not resident(x)) for r in rows]
    writes = [sum(graph.size.get(x, 0) for x in r.outputs if not resident(x)) for r in rows]
    return reads, writes
