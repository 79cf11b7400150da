"""Reading the detection evaluator's options, which arrive as numbers or as command-line text."""

from __future__ import annotations

from typing import Any, Mapping

from ....errors import DataError

_TRUE, _FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off"}


def number(options: Mapping[str, Any], key: str, default: float, *, lo: float, hi: float,
           integer: bool = False) -> float:
    """Option ``key`` as a number in [lo, hi] (``default`` when absent).

    Raises:
        DataError: not a number, or out of range (the message names the option).
    """
    value = options.get(key, default)
    try:
        x = float(value)
        if integer and x != int(x):
            raise ValueError
    except (TypeError, ValueError):
        raise DataError(f"option {key}={value!r} is not {'an integer' if integer else 'a number'}: "
                        f"give e.g. {key}={default:g}") from None
    if not lo <= x <= hi:
        raise DataError(f"option {key}={x:g} is outside [{lo:g}, {hi:g}]: give e.g. {key}={default:g}")
    return int(x) if integer else x


def flag(options: Mapping[str, Any], key: str, default: bool) -> bool:
    """Option ``key`` as a boolean (true/false, yes/no, 1/0, on/off).

    Raises:
        DataError: another value.
    """
    value = options.get(key, default)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE | _FALSE:
        return text in _TRUE
    raise DataError(f"option {key}={value!r} is not true or false: give e.g. {key}={str(default).lower()}")


def choice(options: Mapping[str, Any], key: str, default: str, allowed: tuple[str, ...]) -> str:
    """Option ``key`` as one of ``allowed``.

    Raises:
        DataError: another value.
    """
    value = str(options.get(key, default))
    if value not in allowed:
        raise DataError(f"option {key}={value!r} is unknown: choose one of {', '.join(allowed)}")
    return value
