"""Per-layer accounting: the bytes each layer touches, where they fit, the DRAM traffic
that follows and the energy (rules 3-5 of :mod:`edgeopt.analysis.energy`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import EdgeoptError
from ...load import load_model
from ..profile import profile
from .graph import activation_traffic, build_graph, fusible, layer_rows
from .table import WORD_BYTES, EnergyTable

if TYPE_CHECKING:
    from ...model import Model
    from ..device import DeviceProfile


@dataclass(frozen=True)
class LayerEnergy:
    """Traffic and energy of one layer (package doc, 1.-5.), for the whole batch.

    Attributes:
        name, op_type: as in the profile's LayerProfile.
        precision: "fp32", "fp16" or "int8": what its MACs compute in (package doc, 2.;
            fp32 for weight-only low-bit weights, dequantized before the MACs).
        macs: multiply-accumulates.
        weight_bytes: stored bytes of its weights, at their declared or packed width.
        input_bytes, output_bytes: runtime bytes of its activation inputs and outputs.
        fits: the smallest level holding the working set ("L1d", "L2", "L3", "SRAM", ...),
            or "DRAM" when none does.
        on_chip: the working set fits the capacity the traffic model uses.
        dram_weight_bytes: weight bytes read from DRAM.
        dram_read_bytes, dram_write_bytes: activation bytes read from / written to DRAM.
        compute_pj, onchip_pj, dram_pj: energy, pJ.
        weight_bits: bits per element of its largest weight tensor as counted (32, 8, 4,
            ...; :attr:`edgeopt.analysis.profile.LayerProfile.weight_bits`), None without weights.
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
    weight_bits: int | None = None

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
        weights_resident: the model's weights stay on chip across inferences (package doc, 4.).
        table: the energy table used.
        layers: one row per layer (fused nodes excluded), in topological order.
        fused: names of the nodes treated as fused (package doc, 1.).
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

    @property
    def weight_bytes(self) -> int:
        """Weight bytes of all layers (a weight read by two layers counts twice), bytes."""
        return sum(layer.weight_bytes for layer in self.layers)

    @property
    def dram_weight_pj(self) -> float:
        """DRAM energy of the weight reads alone (0 when the weights stay resident), pJ."""
        return sum(layer.dram_weight_bytes for layer in self.layers) / WORD_BYTES * self.table.dram_read_pj

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
            "dram_pj": self.dram_pj, "dram_weight_pj": self.dram_weight_pj, "total_pj": self.total_pj,
            "dram_bytes": self.dram_bytes, "weight_bytes": self.weight_bytes,
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
    """Per-layer memory traffic and energy of ``model`` (package doc, 1.-5.).

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

    model = load_model(model)
    table = table or EnergyTable()
    levels, capacity = memory_levels(device, sram)
    prof = profile(model, batch=batch)
    graph = build_graph(model, batch)
    if [layer.name for layer in prof.layers] != [name for name, _ in graph.runtime]:
        raise EdgeoptError(f"the energy model's view of {model.name} disagrees with its profile: report this model")
    rows = layer_rows(graph, prof)
    cap = capacity[1]
    fits = [r.weight_bytes + r.input_bytes + r.output_bytes <= cap for r in rows]
    largest_acts = max((r.input_bytes + r.output_bytes for r in rows), default=0)
    weights_resident = sum(r.weight_bytes for r in rows) + largest_acts <= cap
    reads, writes = activation_traffic(graph, rows, fits)
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
            onchip_pj=ws / WORD_BYTES * table.sram_read_pj,
            dram_pj=(dram_w + reads[k] + writes[k]) / WORD_BYTES * table.dram_read_pj,
            weight_bits=r.weight_bits,
        ))
    return EnergyReport(
        model=model.name, batch=batch, device=device.name if device else None, levels=levels,
        capacity=capacity, weights_resident=weights_resident, table=table, layers=layers,
        fused=[name for name, node in graph.runtime if fusible(node, graph)],
        unsized=sorted(graph.unsized),
    )
