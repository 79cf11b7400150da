"""Preprocess refuses values that would divide by zero, broadcast wrongly or crop nothing."""

from __future__ import annotations

import math

import pytest

from edgeopt.preprocess import Preprocess


@pytest.mark.parametrize("fields, needle", [
    (dict(std=(0.0, 0.0, 0.0)), "std 0,0,0 is not all > 0"),
    (dict(std=(-1.0, 1.0, 1.0)), "std -1,1,1 is not all > 0"),
    (dict(std=(math.inf,)), "std inf is not all > 0"),
    (dict(mean=(math.nan, 0.0, 0.0)), "mean nan,0,0 is not all finite"),
    (dict(mean=(0.5, 0.5)), "mean 0.5,0.5 has 2 values, RGB images have 3 channels"),
    (dict(channels="GRAY", mean=(0.5, 0.5, 0.5)), "mean 0.5,0.5,0.5 has 3 values, GRAY images have 1 channel"),
    (dict(resize_short=0), "resize_short 0 is not a size in pixels"),
    (dict(resize_short=-5), "resize_short -5 is not a size in pixels"),
])
def test_values_outside_their_range_are_refused(fields, needle):
    with pytest.raises(ValueError, match="^" + needle.replace(".", r"\.")):
        Preprocess(size=(8, 8), **fields)


@pytest.mark.parametrize("fields", [dict(), dict(mean=(0.5,), std=(0.25,)), dict(channels="GRAY", mean=(0.3,)),
                                    dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), resize_short=1)])
def test_valid_values_are_kept(fields):
    assert Preprocess(size=(8, 8), **fields).size == (8, 8)
