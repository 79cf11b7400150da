"""Parsing of option values given as text: comma-separated lists, durations, sizes.

The command line passes these strings; the functions here turn them into numbers or
raise :class:`~edgeopt.errors.EdgeoptError` with a one-line message that names the
option (``what``) and shows a valid example.
"""

from __future__ import annotations

import re
from typing import Sequence

from ..errors import EdgeoptError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "kib": 1024, "mib": 1024 ** 2,
               "gib": 1024 ** 3}


def csv_items(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated list ("ort, openvino," -> 2 items)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def csv_ints(text: str, what: str) -> list[int]:
    """Positive integers from "1,2,4".

    Args:
        what: the option's name for the message, e.g. "--batch".

    Raises:
        EdgeoptError: an item is not an integer, is <= 0, or the list is empty.
    """
    try:
        vals = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or any(v <= 0 for v in vals):
        raise EdgeoptError(f"bad {what} {text!r}: give positive integers separated by commas, e.g. 1,2,4")
    return vals


def csv_floats(text: str, what: str) -> list[float]:
    """Fractions strictly between 0 and 1 from "0.3,0.5".

    Args:
        what: the option's name for the message, e.g. "--prune-targets".

    Raises:
        EdgeoptError: an item is not a number, is outside (0, 1), or the list is empty.
    """
    try:
        vals = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        vals = []
    if not vals or any(not 0 < v < 1 for v in vals):
        raise EdgeoptError(f"bad {what} {text!r}: give fractions between 0 and 1 separated by commas, e.g. 0.3,0.5")
    return vals


def _parse_quantity(text: str, pattern: re.Pattern, units: dict[str, float], default_unit: str,
                    what: str, example: str) -> float:
    m = pattern.match(text or "")
    if not m or float(m.group(1)) <= 0:
        raise EdgeoptError(f"bad {what} {text!r}: give {example}")
    return float(m.group(1)) * units[(m.group(2) or default_unit).lower()]


def parse_duration(text: str) -> float:
    """Seconds from "90", "90s", "10m", "1.5h" (no unit: seconds).

    Raises:
        EdgeoptError: not a positive duration.
    """
    return _parse_quantity(text, _DURATION, _DURATION_UNITS, "s", "duration", "e.g. 600, 90s, 10m or 1h")


def parse_size(text: str) -> int:
    """Bytes from "2000000", "2MB", "500kB", "1.5MiB" (kB/MB/GB are powers of 1000,
    KiB/MiB/GiB powers of 1024; no unit: bytes).

    Raises:
        EdgeoptError: not a positive size.
    """
    return int(_parse_quantity(text, _SIZE, _SIZE_UNITS, "b", "size", "bytes or e.g. 500kB, 2MB, 1.5MiB"))


def parse_options(items: Sequence[str] | None, what: str) -> dict[str, object]:
    """{key: value} from repeated ``KEY=VALUE`` options: true/false become booleans,
    numbers ints or floats, a comma-separated value a list of strings, anything else a
    string (e.g. ``--task-option pairs=true --task-option outputs=landmarks``).

    Raises:
        EdgeoptError: an item without "=" or with an empty key.
    """
    out: dict[str, object] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise EdgeoptError(f"bad {what} {item!r}: give KEY=VALUE, e.g. pairs=true or scale=48")
        out[key.strip()] = _option_value(value.strip())
    return out


def _option_value(text: str) -> object:
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    if "," in text:
        return [v.strip() for v in text.split(",") if v.strip()]
    return text
