"""The measurer preprocesses the held-out images once (measure.model_inputs) when they fit
in memory, and the candidates' outputs from those samples equal the outputs from images."""

from __future__ import annotations

import dataclasses

import numpy as np

from edgeopt.data.images import ImageSet
from edgeopt.data.samples import SampleSet
from edgeopt.optimizer import measure
from edgeopt.preprocess import Preprocess
from support import outputs_model


def test_held_out_images_are_preprocessed_once_when_they_fit(monkeypatch):
    model = dataclasses.replace(outputs_model({"y": (1, 4)}), preprocess=Preprocess(size=(32, 32)))
    rng = np.random.default_rng(0)
    images = ImageSet(images=[rng.integers(0, 256, (40, 48, 3), dtype=np.uint8) for _ in range(3)],
                      names=["a", "b", "c"])
    got = measure.model_inputs(model, images)
    assert isinstance(got, SampleSet) and len(got) == 3
    assert np.array_equal(got.subset([1]).inputs["x"][0], model.preprocess(images.images[1]))
    # 3 x 3 x 32 x 32 float32 = 36,864 bytes: over a smaller limit, the images stay images.
    monkeypatch.setattr(measure, "PREPROCESSED_BYTES", 36_863)
    assert measure.model_inputs(model, images) is images
    samples = SampleSet({"x": np.zeros((2, 3, 32, 32), np.float32)})
    assert measure.model_inputs(model, samples) is samples
