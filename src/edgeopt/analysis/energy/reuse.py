"""Weight reuse: operations per weight byte (the TPU paper's figure) and what it implies
for the compute : weight-DRAM energy ratio.

Source: Jouppi et al., "In-Datacenter Performance Analysis of a Tensor Processing Unit",
ISCA 2017, Table 1 (ops per weight byte).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...errors import EdgeoptError
from ...load import load_model
from ..profile import ModelProfile, profile
from .table import WORD_BYTES, EnergyTable

if TYPE_CHECKING:
    from ...model import Model

# Jouppi et al., ISCA 2017, Table 1 ("TPU Ops / Weight Byte"), the figures the seed quotes.
# Server batch sizes are included in these (each weight byte is reused across the batch).
TPU_OPS_PER_WEIGHT_BYTE = {"CNN0": 2888, "CNN1": 1750, "LSTM0": 64, "LSTM1": 96}
# Seed 002: compute : memory energy with every weight from DRAM, "2:1 and 2.5:1" (CNN0,
# CNN1), "1:10 and 1:7" (LSTM0, LSTM1).
SEED_COMPUTE_TO_WEIGHT_DRAM = {"CNN0": 2.0, "CNN1": 2.5, "LSTM0": 1 / 10, "LSTM1": 1 / 7}


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
    return (ops_per_byte / ops_per_mac) * t.mac_pj(precision) / (t.dram_read_pj / WORD_BYTES)


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
