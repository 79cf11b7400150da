"""Checks of quantization config fields, raising one-line PassErrors that say the fix."""

from __future__ import annotations

import onnx

from ...errors import PassError

QTYPES = ("uint8", "int8")


def check_choice(field: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise PassError unless ``value`` is one of ``choices``."""
    if value not in choices:
        raise PassError(f"{field} {value!r} is unknown: choose from {', '.join(choices)}")


def check_positive(field: str, value: int) -> None:
    """Raise PassError unless ``value`` >= 1."""
    if value < 1:
        raise PassError(f"{field} must be at least 1, not {value}: pass a positive count")


def check_names(field: str, value: tuple[str, ...]) -> None:
    """Raise PassError unless ``value`` is a tuple of non-empty names (nodes or op types)."""
    # A bare string would be read as a sequence of one-letter names.
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise PassError(f"{field} must be a tuple of names, not {value!r}: pass e.g. ('Conv_0',) "
                        f"or, on the command line, a comma-separated list")


def check_op_types(proto: onnx.ModelProto, op_types: tuple[str, ...], supported: set[str],
                   model_name: str, pass_name: str) -> None:
    """Raise PassError unless every op type is one the quantizer supports and at least one
    is in the graph (else quantizing would change nothing)."""
    unknown = sorted(set(op_types) - supported)
    if unknown:
        raise PassError(f"op types {unknown} cannot be quantized by {pass_name}: choose "
                        f"--int8-op-types from {', '.join(sorted(supported))}")
    present = {n.op_type for n in proto.graph.node}
    wanted = set(op_types)
    if wanted & {"Gemm", "MatMul"}:
        # Dynamic quantization rewrites Gemm as MatMul: either name finds fully connected layers.
        wanted |= {"Gemm", "MatMul"}
    if not present & wanted:
        raise PassError(
            f"{model_name} has no {'/'.join(op_types)} nodes to quantize: choose --int8-op-types "
            f"among its ops ({', '.join(sorted(present & supported)) or 'none quantizable'})"
        )
