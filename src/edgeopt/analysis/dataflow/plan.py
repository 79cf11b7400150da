"""Latency and energy of the best tilings on an accelerator, per layer and per model:
:class:`Hardware`, :func:`estimate`, :func:`plan_layer`, :func:`plan_model` and their
reports (roofline latency; Horowitz's energies, see :mod:`edgeopt.analysis.dataflow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ...errors import EdgeoptError
from ..energy.table import EnergyTable
from .convs import model_convs
from .layer import ConvLayer
from .search import Choice, best_tiling
from .traffic import ORDERS, floor_traffic

if TYPE_CHECKING:
    from ...model import Model

# Horowitz, ISSCC 2014 (45 nm), pJ: per 32-bit access and per MAC by word width in bytes;
# the one copy of the table is edgeopt.analysis.energy.EnergyTable.
_HOROWITZ = EnergyTable()
DRAM_PJ_PER_32BIT = _HOROWITZ.dram_read_pj
SRAM_PJ_PER_32BIT = _HOROWITZ.sram_read_pj
MAC_PJ = {4: _HOROWITZ.mac_pj("fp32"), 2: _HOROWITZ.mac_pj("fp16"), 1: _HOROWITZ.mac_pj("int8")}
# Nominal figures of a small edge device (a few GB/s of LPDDR, ~10 GMAC/s). They are round
# placeholders, not measurements: pass a device profile or explicit values for real ones.
DEFAULT_BANDWIDTH_GBS = 4.0
DEFAULT_MAC_RATE_GMACS = 10.0


@dataclass(frozen=True)
class Hardware:
    """The accelerator the dataflow runs on.

    Attributes:
        buffer_bytes: on-chip buffer for the three tiles, bytes.
        bandwidth_gbs: off-chip bandwidth, GB/s (1e9 bytes/s).
        mac_rate_gmacs: MAC throughput, GMAC/s (GFLOP/s / 2).
        bytes_per_word: 4 (fp32), 2 (fp16) or 1 (int8); every operand uses it.
        dram_pj: energy of one 32-bit off-chip access, pJ (Horowitz 2014: 640).
        sram_pj: energy of one 32-bit on-chip buffer access, pJ (Horowitz 2014, 8 KB: 5).
        mac_pj: energy of one MAC, pJ; None: :data:`MAC_PJ` for the word width.

    Raises:
        EdgeoptError: a non-positive figure or a word width other than 1, 2, 4.
    """

    buffer_bytes: int
    bandwidth_gbs: float = DEFAULT_BANDWIDTH_GBS
    mac_rate_gmacs: float = DEFAULT_MAC_RATE_GMACS
    bytes_per_word: int = 4
    dram_pj: float = DRAM_PJ_PER_32BIT
    sram_pj: float = SRAM_PJ_PER_32BIT
    mac_pj: float | None = None

    def __post_init__(self) -> None:
        if self.bytes_per_word not in MAC_PJ:
            raise EdgeoptError(f"bytes per word {self.bytes_per_word} is not 1, 2 or 4 (int8, fp16, fp32)")
        for what in ("buffer_bytes", "bandwidth_gbs", "mac_rate_gmacs", "dram_pj", "sram_pj"):
            if not getattr(self, what) > 0:
                raise EdgeoptError(f"{what}={getattr(self, what)!r} must be positive")
        if self.mac_pj is not None and not self.mac_pj > 0:
            raise EdgeoptError(f"mac_pj={self.mac_pj!r} must be positive")

    @property
    def mac_energy_pj(self) -> float:
        """pJ per MAC at this word width (the override when given)."""
        return self.mac_pj if self.mac_pj is not None else MAC_PJ[self.bytes_per_word]


@dataclass(frozen=True)
class Estimate:
    """Latency and energy of one layer under one order's best tiling.

    Attributes:
        choice: the tiling and traffic.
        offchip_bytes: off-chip words x bytes per word.
        buffer_bytes: the tiling's buffer requirement, bytes.
        compute_ms: MACs / MAC rate, ms.
        memory_ms: off-chip bytes / bandwidth, ms.
        energy_uj: DRAM + SRAM + MAC energy, microjoules (package doc).
    """

    choice: Choice
    offchip_bytes: int
    buffer_bytes: int
    compute_ms: float
    memory_ms: float
    energy_uj: float

    @property
    def latency_ms(self) -> float:
        """max(compute, memory): transfers overlap compute."""
        return max(self.compute_ms, self.memory_ms)

    @property
    def bound(self) -> str:
        """"memory" when the off-chip transfers take longer than the MACs, else "compute"."""
        return "memory" if self.memory_ms > self.compute_ms else "compute"


def estimate(layer: ConvLayer, choice: Choice, hw: Hardware) -> Estimate:
    """Latency and energy of ``layer`` run with ``choice`` on ``hw`` (package doc)."""
    words = choice.traffic.total
    width = hw.bytes_per_word / 4  # Horowitz's memory figures are per 32-bit access
    sram_accesses = 2 * layer.macs + words
    energy_pj = (words * hw.dram_pj * width + sram_accesses * hw.sram_pj * width
                 + layer.macs * hw.mac_energy_pj)
    return Estimate(
        choice=choice,
        offchip_bytes=words * hw.bytes_per_word,
        buffer_bytes=sum(choice.traffic.buffer_words) * hw.bytes_per_word,
        compute_ms=layer.macs / (hw.mac_rate_gmacs * 1e9) * 1e3,
        memory_ms=words * hw.bytes_per_word / (hw.bandwidth_gbs * 1e9) * 1e3,
        energy_uj=energy_pj * 1e-6,
    )


@dataclass(frozen=True)
class LayerPlan:
    """The three orders' best tilings and estimates for one layer, and the winner (fewest
    off-chip bytes; ties: lower latency, then IR, OR, WR order).

    Attributes:
        layer: the convolution.
        orders: {"IR" | "OR" | "WR": its best tiling's estimate}.
        floor_bytes: the compulsory off-chip bytes (:func:`floor_traffic`).
    """

    layer: ConvLayer
    orders: dict[str, Estimate]
    floor_bytes: int

    @property
    def winner(self) -> str:
        """The order with the fewest off-chip bytes."""
        names = list(ORDERS)
        return min(names, key=lambda o: (self.orders[o].offchip_bytes, self.orders[o].latency_ms, names.index(o)))

    @property
    def tied(self) -> list[str]:
        """Every order with the winner's off-chip bytes (one name when the winner is alone)."""
        low = self.best.offchip_bytes
        return [o for o in ORDERS if self.orders[o].offchip_bytes == low]

    @property
    def best(self) -> Estimate:
        """The winner's estimate."""
        return self.orders[self.winner]


def plan_layer(layer: ConvLayer, hw: Hardware) -> LayerPlan:
    """Best tiling of each order for ``layer`` on ``hw``, with estimates.

    Raises:
        EdgeoptError: the buffer cannot hold the smallest tiles.
    """
    return LayerPlan(layer, {
        order: estimate(layer, best_tiling(layer, order, hw.buffer_bytes, hw.bytes_per_word), hw)
        for order in ORDERS
    }, floor_traffic(layer).total * hw.bytes_per_word)


@dataclass(frozen=True)
class ModelPlan:
    """Per-conv plans of a model and the convs that were not modelled.

    Attributes:
        model: display name.
        hardware: the accelerator assumed.
        layers: one plan per modelled conv, in graph order.
        skipped: "layer: reason" for each conv left out.
    """

    model: str
    hardware: Hardware
    layers: list[LayerPlan]
    skipped: list[str] = field(default_factory=list)

    def total_bytes(self, order: str | None = None) -> int:
        """Off-chip bytes of every layer under ``order``, or each layer's winner (None)."""
        return sum((p.orders[order] if order else p.best).offchip_bytes for p in self.layers)

    @property
    def latency_ms(self) -> float:
        """Sum of the winners' latencies (layers run one after the other), ms."""
        return sum(p.best.latency_ms for p in self.layers)

    @property
    def energy_uj(self) -> float:
        """Sum of the winners' energies, microjoules."""
        return sum(p.best.energy_uj for p in self.layers)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: hardware, per-layer shapes, each order's tiling, traffic and estimates."""
        def est(e: Estimate) -> dict[str, Any]:
            t = e.choice.traffic
            return {"perm": "".join(e.choice.perm), "tiling": [e.choice.tiling.tm, e.choice.tiling.tn,
                                                              e.choice.tiling.tr, e.choice.tiling.tc],
                    "input_reads": t.input_reads, "weight_reads": t.weight_reads,
                    "output_reads": t.output_reads, "output_writes": t.output_writes,
                    "buffer_words": list(t.buffer_words), "offchip_bytes": e.offchip_bytes,
                    "buffer_bytes": e.buffer_bytes, "compute_ms": e.compute_ms, "memory_ms": e.memory_ms,
                    "latency_ms": e.latency_ms, "bound": e.bound, "energy_uj": e.energy_uj}

        hw = self.hardware
        return {
            "model": self.model,
            "hardware": {"buffer_bytes": hw.buffer_bytes, "bandwidth_gbs": hw.bandwidth_gbs,
                         "mac_rate_gmacs": hw.mac_rate_gmacs, "bytes_per_word": hw.bytes_per_word,
                         "dram_pj": hw.dram_pj, "sram_pj": hw.sram_pj, "mac_pj": hw.mac_energy_pj},
            "layers": [{"name": p.layer.name, "shape": p.layer.describe(), "macs": p.layer.macs,
                        "winner": p.winner, "tied": p.tied, "floor_bytes": p.floor_bytes, "orders": {o: est(e) for o, e in p.orders.items()}}
                       for p in self.layers],
            "totals": {"offchip_bytes": {o: self.total_bytes(o) for o in ORDERS},
                       "floor_bytes": sum(p.floor_bytes for p in self.layers),
                       "offchip_bytes_winners": self.total_bytes(), "latency_ms": self.latency_ms,
                       "energy_uj": self.energy_uj},
            "skipped": list(self.skipped),
        }



def plan_model(model: "Model", hw: Hardware) -> ModelPlan:
    """:func:`plan_layer` for every conv of ``model`` (see :func:`model_convs`).

    Raises:
        EdgeoptError: the buffer cannot hold the smallest tiles of some conv, or the
            profile cannot infer the model's shapes.
    """
    convs, skipped = model_convs(model)
    return ModelPlan(model.name, hw, [plan_layer(layer, hw) for layer in convs], skipped)
