"""The variants ``edgeopt energy --compare`` sets beside a model: int8, fp16, prunedNN.

:func:`build_variants` runs the compression passes that make them; the energy model
(:mod:`edgeopt.analysis.energy`) then compares them layer by layer. It is kept apart from
the optimizer's candidate recipes for now, with a plain signature (a Model and a list of
names in, a dict of Models out) so it can become one of those recipes.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from ..data.images import demo_orientation_set
from ..errors import EdgeoptError
from ..passes.base import run_pass
from ..passes.prune import PruneConfig, prune_model

if TYPE_CHECKING:
    import numpy as np

    from ..model import Model

_PRUNED = re.compile(r"^pruned(\d{1,2})$")
_CALIBRATION_IMAGES = 16


def parse_variant_names(compare: str) -> list[str]:
    """The variant names of a ``--compare`` value ("int8, pruned50"), lower-cased, in
    order, duplicates dropped.

    Raises:
        EdgeoptError: a name is not int8, fp16 or prunedNN with NN in 1..99.
    """
    names = [v.strip().lower() for v in compare.split(",") if v.strip()]
    for name in names:
        m = _PRUNED.match(name)
        if name not in ("int8", "fp16") and not (m and 0 < int(m.group(1)) < 100):
            raise EdgeoptError(f"unknown variant {name!r} in --compare: choose from int8, fp16, prunedNN "
                               f"(NN% of the MACs removed, 1-99), e.g. int8,pruned50")
    return list(dict.fromkeys(names))


def build_variants(model: "Model", names: list[str]) -> dict[str, "Model"]:
    """{"original": model, name: variant, ...} for names "int8", "fp16", "prunedNN".

    int8 is ONNX Runtime static QDQ quantization and prunedNN is l1 channel pruning of NN%
    of the MACs (:func:`edgeopt.passes.prune.prune_model`), both calibrated on the first
    16 images of ``edgeopt.demo_images()[1]`` through the model's preprocessing.

    Raises:
        EdgeoptError: the model has no preprocessing (calibration needs it); PassError
            when a pass cannot handle the model.
    """
    variants = {"original": model}
    calibration = None
    for name in names:
        if name == "fp16":
            variants[name] = run_pass("fp16", model)
            continue
        if calibration is None:
            calibration = _calibration(model)
        if name == "int8":
            variants[name] = run_pass("int8-static", model, None, calibration=calibration)
        else:
            fraction = int(_PRUNED.match(name).group(1)) / 100
            variants[name] = prune_model(model, PruneConfig(target_macs=fraction), calibration)[0]
    return variants


def _calibration(model: "Model") -> "np.ndarray":
    if model.preprocess is None:
        raise EdgeoptError(f"{model.name} has no image preprocessing, needed to calibrate int8 and pruning: "
                           f"use a zoo model or drop --compare")
    # demo_images()[1]: the calibration part of the built-in demonstration data.
    return demo_orientation_set("calibration").tensor(model.preprocess)[:_CALIBRATION_IMAGES]
