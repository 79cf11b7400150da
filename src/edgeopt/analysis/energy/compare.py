"""Comparison of variants of one model (fp32, int8, pruned, ...): per-layer energy with
the MAC layers matched across the variants.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

from ...errors import EdgeoptError
from .layers import EnergyReport, LayerEnergy, model_energy
from .table import EnergyTable

if TYPE_CHECKING:
    from ...model import Model
    from ..device import DeviceProfile


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
        """JSON-ready dict: per-variant totals (energies in pJ: all, DRAM, weight DRAM;
        weight bytes) and the per-layer total energies (pJ)."""
        return {
            "matched_by": dict(self.matched_by),
            "totals_pj": {v: r.total_pj for v, r in self.reports.items()},
            "dram_pj": {v: r.dram_pj for v, r in self.reports.items()},
            "dram_weight_pj": {v: r.dram_weight_pj for v, r in self.reports.items()},
            "weight_bytes": {v: r.weight_bytes for v, r in self.reports.items()},
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
