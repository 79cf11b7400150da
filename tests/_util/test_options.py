"""Option values: the valid range of a number (Bounds) and lists that must name something."""

from __future__ import annotations

import math

import pytest

from edgeopt._util.options import Bounds, csv_list
from edgeopt.errors import EdgeoptError


@pytest.mark.parametrize("bounds, inside, outside", [
    (Bounds(gt=0), [1e-9, 5, 1e6], [0, -1]),
    (Bounds(ge=0, le=100), [0, 1.5, 100], [-0.1, 100.1]),
    (Bounds(gt=0, lt=1), [0.5], [0, 1]),
    (Bounds(ge=2, le=16), [2, 16], [1, 17]),
])
def test_bounds_hold_their_interval_and_never_nan_or_inf(bounds, inside, outside):
    assert all(bounds.contains(v) for v in inside)
    assert not any(bounds.contains(v) for v in [*outside, math.nan, math.inf, -math.inf])


@pytest.mark.parametrize("bounds, value, example, message", [
    (Bounds(ge=0, le=100), math.nan, 1.0, "--x nan is not a number: give a value in [0, 100], e.g. 1"),
    (Bounds(gt=0), math.inf, 120.0, "--x inf is not finite: give a value > 0, e.g. 120"),
    (Bounds(gt=0), -1.0, 50, "--x -1 is out of range: give a value > 0, e.g. 50"),
    (Bounds(ge=1), 0, 3, "--x 0 is out of range: give an integer >= 1, e.g. 3"),
    (Bounds(ge=0, lt=1), 1.0, 0.05, "--x 1 is out of range: give a value in [0, 1), e.g. 0.05"),
])
def test_bounds_name_the_option_the_range_and_an_example(bounds, value, example, message):
    with pytest.raises(EdgeoptError) as e:
        bounds.check(value, "--x", example)
    assert str(e.value) == message


def test_bounds_pass_a_valid_value_through():
    assert Bounds(gt=0).check(2.5, "--x", 1) == 2.5


@pytest.mark.parametrize("text", ["", ",,", " , "])
def test_a_list_that_names_nothing_is_refused(text):
    with pytest.raises(EdgeoptError, match=r"^--passes .* names nothing: .*e\.g\. cleanup"):
        csv_list(text, "--passes", "cleanup")


def test_a_list_keeps_its_items():
    assert csv_list(" cleanup, ,fp16 ", "--passes", "cleanup") == ["cleanup", "fp16"]
