"""Checks of quantization config fields, raising one-line PassErrors that say the fix."""

from __future__ import annotations

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
    """Raise PassError unless ``value`` is a tuple of non-empty node names."""
    # A bare string would be read as a sequence of one-letter node names.
    if isinstance(value, str) or not all(isinstance(v, str) and v for v in value):
        raise PassError(f"{field} must be a tuple of node names, not {value!r}: pass e.g. ('Conv_0',)")
