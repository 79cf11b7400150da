"""The energy table: pJ per operation and per 32-bit memory access, and the seed's ratios.

Sources: Horowitz, "Computing's energy problem (and what we can do about it)", ISSCC 2014
(45 nm, 0.9 V energy table, also Table I of Han et al., "EIE", ISCA 2016). The seed
article (002, after Song Han) says one DRAM access costs about 200 multiply-adds and 128
on-chip SRAM accesses; with this table it is 640 / (3.7 + 0.9) = 139 fp32 MACs and
640 / 5 = 128 SRAM reads (:func:`seed_claims`).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Mapping

from ...errors import EdgeoptError
from ..._util.userfile import read_user_text

PRECISIONS = ("fp32", "fp16", "int32", "int8")
# Seed 002: "one DRAM access costs 200 multiply-adds and 128 on-chip memory accesses".
SEED_DRAM_PER_MAC = 200.0
SEED_DRAM_PER_SRAM = 128.0
WORD_BYTES = 4  # the table's memory energies are per 32-bit access


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
    text = read_user_text(path, what="energy table")
    try:
        data = json.loads(text)
    except ValueError as e:
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
