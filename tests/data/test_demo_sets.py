"""The demonstration's 516-image evaluation set and the 472-image held-out set (issue 16)."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from edgeopt.data.demo_sets import concat, demo_evaluation_set, held_out_orientation_set
from edgeopt.data.images import ImageSet, demo_orientation_set
from edgeopt.errors import DataError
from edgeopt.optimizer.confidence import wilson_lower


def _digests(s: ImageSet) -> set[str]:
    return {hashlib.sha256(im.tobytes() + str(im.shape).encode()).hexdigest() for im in s.images}


@pytest.fixture(scope="module")
def sets() -> tuple[ImageSet, ImageSet]:
    return demo_evaluation_set(), held_out_orientation_set()


def test_the_demo_set_can_show_99_percent_and_starts_with_the_real_crops(sets):
    demo, _ = sets
    real = demo_orientation_set("evaluation")
    assert len(demo) == 516 and demo.names[:132] == real.names
    assert Counter(demo.labels) == {k: 129 for k in range(4)}
    # One flip in 516 still shows >= 99% at 95% confidence; the 132 alone could not.
    assert wilson_lower(515, 516) >= 0.99 > wilson_lower(132, 132)
    assert len(set(demo.names)) == 516


def test_the_held_out_set_shares_no_image_or_name_with_the_demo(sets):
    demo, held = sets
    assert len(held) == 472 and Counter(held.labels) == {k: 118 for k in range(4)}
    assert Counter(n.split("-")[0] for n in held.names) == {"page": 84, "text": 132, "synth": 216, "notes": 40}
    assert not set(held.names) & set(demo.names)
    assert not _digests(held) & _digests(demo)
    assert not _digests(held) & _digests(demo_orientation_set("calibration"))


def test_the_sets_are_the_same_on_every_call(sets):
    again = held_out_orientation_set()
    assert again.names == sets[1].names and _digests(again) == _digests(sets[1])


def test_concat_refuses_mixed_labels_and_classes():
    a = ImageSet(images=[demo_orientation_set().images[0]], labels=[0], classes=["0", "90", "180", "270"])
    b = ImageSet(images=list(a.images), labels=None)
    with pytest.raises(DataError, match="label all or none"):
        concat(a, ImageSet(images=list(a.images), labels=None, classes=a.classes))
    with pytest.raises(DataError, match="different classes"):
        concat(a, b)
    both = concat(a, a)
    assert len(both) == 2 and both.labels == [0, 0] and both.classes == a.classes
