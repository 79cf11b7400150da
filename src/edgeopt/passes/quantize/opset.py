"""Upgrading a graph's ONNX opset when a quantizer needs a newer one than the model's.

Per-channel QuantizeLinear/DequantizeLinear (an ``axis`` attribute) exist from opset 13
on (ONNX operator changelog, QuantizeLinear-13). ONNX Runtime's ``quantize_static`` bumps
old opsets only to 11 (``quant_utils.update_opset_version``, onnxruntime 1.32), so a
per-channel QDQ graph of an opset-11/12 model is invalid: zoo:ppocr-rec (opset 12) gave
"Unrecognized attribute: axis for operator DequantizeLinear". NNCF falls back to
per-tensor weights below 13 ("ONNX models with 10 < opset version < 13 do not support
per-channel quantization"). Both get the graph converted with
``onnx.version_converter.convert_version`` first; on the Paddle exports zoo:ppocr-cls (11),
ppocr-det and ppocr-rec (12) the converted graphs give ONNX Runtime outputs identical to
the originals' (max abs difference 0).
"""

from __future__ import annotations

import onnx

from ...errors import PassError
from ..._util.errorline import error_line

# The first opset with per-channel (axis) QuantizeLinear/DequantizeLinear.
PER_CHANNEL_OPSET = 13


def onnx_opset(proto: onnx.ModelProto) -> int:
    """The graph's opset of the default ONNX domain (0 when it imports none)."""
    return max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)


def at_least(proto: onnx.ModelProto, version: int, model_name: str, hint: str,
             needs: str = "int8") -> onnx.ModelProto:
    """``proto`` if its opset is >= ``version``, else a copy converted to ``version``, with
    at least the IR version that opset needs (the converter leaves the old one).

    Args:
        hint: the fix named when the conversion fails, e.g. "pass --no-per-channel".
        needs: what needs the opset, for the message ("int8", "pass weights-int4").

    Raises:
        PassError: onnx's version converter cannot convert the graph.
    """
    current = onnx_opset(proto)
    if current >= version:
        return proto
    from onnx import version_converter

    try:
        out = version_converter.convert_version(proto, version)
    except Exception as e:
        raise PassError(
            f"{model_name} is at opset {current} and {needs} needs opset {version}, which onnx's "
            f"version converter cannot reach ({error_line(e, limit=120)}): {hint}"
        ) from e
    # ignore_unknown: a custom domain (OpenVINO's org.openvinotoolkit FakeQuantize in
    # weights-binary's XNOR graphs) has no IR version in onnx's table; the converter leaves it.
    out.ir_version = max(out.ir_version, onnx.helper.find_min_ir_version_for(list(out.opset_import),
                                                                             ignore_unknown=True))
    return out
