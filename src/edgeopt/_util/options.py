"""Parsing and checking of option values: comma-separated lists, durations, sizes, and
the valid range of a number.

The command line passes these strings; the functions here turn them into numbers or
raise :class:`~edgeopt.errors.EdgeoptError` with a one-line message that names the
option (``what``) and shows a valid example.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Sequence, TypeVar

from ..errors import EdgeoptError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|kib|mib|gib)?\s*$", re.IGNORECASE)
_DURATION_UNITS = {"ms": 0.001, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
_SIZE_UNITS = {"b": 1, "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "kib": 1024, "mib": 1024 ** 2,
               "gib": 1024 ** 3}


def csv_items(text: str) -> list[str]:
    """The non-empty, stripped items of a comma-separated list ("ort, openvino," -> 2 items)."""
    return [v.strip() for v in text.split(",") if v.strip()]


def csv_list(text: str, what: str, example: str) -> list[str]:
    """The items of a comma-separated list that must name at least one thing.

    Args:
        what: the option's name for the message, e.g. "--passes".
        example: a valid value for the message, e.g. "cleanup,int8-static".

    Raises:
        EdgeoptError: the list is empty ("", ",,", " , ").
    """
    items = csv_items(text)
    if not items:
        raise EdgeoptError(f"{what} {text!r} names nothing: give a comma-separated list, e.g. {example}")
    return items


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
                    what: str, example: str, *, allow_zero: bool = False) -> float:
    m = pattern.match(text or "")
    if not m or float(m.group(1)) < 0 or (float(m.group(1)) == 0 and not allow_zero):
        raise EdgeoptError(f"bad {what} {text!r}: give {example}")
    return float(m.group(1)) * units[(m.group(2) or default_unit).lower()]


DURATION_SYNTAX = "90s, 10m, 1h, 500ms or plain seconds"
"""How every duration option is written, as help texts and messages say it."""


def parse_duration(text: str, what: str | None = None, *, allow_zero: bool = False) -> float:
    """Seconds from "90", "90s", "10m", "1.5h", "500ms" (no unit: seconds).

    Args:
        what: the option's name for the message, e.g. "--budget".
        allow_zero: accept 0 (an option where 0 means "none", e.g. --cooldown).

    Raises:
        EdgeoptError: not a duration, negative, or 0 without ``allow_zero``, e.g.
            "bad --budget duration 'ten': give e.g. 90s, 10m, 1h, 500ms or plain seconds (more than 0)".
    """
    example = f"e.g. {DURATION_SYNTAX}" + ("" if allow_zero else " (more than 0)")
    return _parse_quantity(text, _DURATION, _DURATION_UNITS, "s", "duration" if what is None else f"{what} duration",
                           example, allow_zero=allow_zero)


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


Number = TypeVar("Number", int, float)


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric option: any of ``gt``/``ge`` (lower bound, exclusive
    or inclusive) and ``lt``/``le`` (upper bound), in the option's unit. NaN and
    infinities are never valid: no option of edgeopt means "unbounded" by ``inf``."""

    gt: float | None = None
    ge: float | None = None
    lt: float | None = None
    le: float | None = None

    def contains(self, value: float) -> bool:
        """Whether ``value`` is finite and within the bounds."""
        return (math.isfinite(value)
                and (self.gt is None or value > self.gt) and (self.ge is None or value >= self.ge)
                and (self.lt is None or value < self.lt) and (self.le is None or value <= self.le))

    def describe(self, integer: bool = False) -> str:
        """The range in words, e.g. "a value > 0", "an integer >= 1", "a value in (0, 1)"."""
        noun = "an integer" if integer else "a value"
        low = (f"({self.gt:g}" if self.gt is not None else f"[{self.ge:g}" if self.ge is not None else None)
        high = (f"{self.lt:g})" if self.lt is not None else f"{self.le:g}]" if self.le is not None else None)
        if low and high:
            return f"{noun} in {low}, {high}"
        if low:
            return f"{noun} {'>' if self.gt is not None else '>='} {low[1:]}"
        if high:
            return f"{noun} {'<' if self.lt is not None else '<='} {high[:-1]}"
        return noun

    def check(self, value: Number, what: str, example: object) -> Number:
        """``value`` when it is within the bounds.

        Args:
            what: the option's name for the message, e.g. "--max-drop".
            example: a valid value for the message, e.g. 1.0.

        Raises:
            EdgeoptError: NaN, an infinity, or a value outside the bounds, e.g.
                "--max-drop nan is not a number: give a value in [0, 100], e.g. 1".
        """
        if self.contains(value):
            return value
        problem = ("is not a number" if math.isnan(value) else "is not finite" if math.isinf(value)
                   else "is out of range")
        raise EdgeoptError(f"{what} {_shown(value)} {problem}: give {self.describe(isinstance(value, int))}, "
                           f"e.g. {_shown(example)}")


def _shown(value: object) -> str:
    """A number as the user would type it: 0.0001 not 1e-04 where short, -1 not -1.0."""
    return f"{value:g}" if isinstance(value, float) else str(value)
