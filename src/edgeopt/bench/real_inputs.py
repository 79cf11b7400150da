"""Real inputs to time a model on (``edgeopt bench --images DIR`` / ``--inputs DIR``), cycled
through the runs as the tools users know do: OpenVINO's benchmark_app fills its infer
requests from the ``-i`` files in turn, onnxruntime_perf_test cycles over its test data
sets, TFLite's benchmark_model takes ``--input_layer_value_files``.

The N samples are put in batches of b with wrap-around (batch k holds samples
``(k*b + j) mod N``, j < b), ceil(N/b) batches, so one pass over the batches feeds every
sample at least once and every run gets a full batch of b; run r is fed batch r mod
ceil(N/b). The batches are made once per cell, before the session is prepared: building
them is not timed, and their memory is in the cell's baseline resident set size, not in
the increment the model costs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.feeds import calibration_data, check_samples, sample_feeds
from ..data.samples import SampleSet
from ..errors import DataError

if TYPE_CHECKING:
    from ..data.images import ImageSet
    from ..model import Model


@dataclass(frozen=True)
class RealInputs:
    """The samples a cell is timed on, read from a folder.

    Attributes:
        samples: one array per model input, (N, *sample shape) at the input's dtype
            (images already through the model's preprocess), and the fixed inputs.
        source: where they came from (the folder, as the user gave it).
        kind: "images", "samples" (.npy/.npz) or "audio".
    """

    samples: SampleSet
    source: str
    kind: str

    def __len__(self) -> int:
        return len(self.samples)

    def feeds(self, model: "Model", batch: int) -> list[dict[str, np.ndarray]]:
        """The ceil(N/b) feeds of ``model`` at ``batch`` b, cycling over the samples (module
        docstring); each holds exactly b samples on each input's batch axis.

        Raises:
            DataError: the samples do not fit the model (:func:`edgeopt.data.feeds.check_samples`).
        """
        n = len(self.samples)
        order = np.arange(math.ceil(n / batch) * batch) % n
        wrapped = SampleSet(inputs={k: v[order] for k, v in self.samples.inputs.items()}, fixed=self.samples.fixed)
        return [feed for feed, _ in sample_feeds(wrapped, model, batch)]

    def summary(self) -> dict[str, Any]:
        """{"kind", "source", "samples": N}: what a run records about its inputs."""
        return {"kind": self.kind, "source": self.source, "samples": len(self)}

    def record(self, batch: int) -> dict[str, Any]:
        """What a cell's result says about its inputs: :meth:`summary` and "batches", the
        feeds cycled at ``batch``."""
        return {**self.summary(), "batches": math.ceil(len(self) / batch)}


def real_inputs(model: "Model", data: "ImageSet | SampleSet", *, source: str, kind: str) -> RealInputs:
    """The inputs of ``data`` as ``model`` takes them: images through ``model.preprocess``
    into its one input (:func:`edgeopt.data.feeds.calibration_data`), samples as they are.

    Args:
        model: the model to time (its inputs and preprocess).
        data: what :func:`edgeopt.data.inputs.load_inputs` read.
        source: the folder, for the record; kind: "images", "samples" or "audio".

    Raises:
        DataError: images for a model with more than one input or without a batch-first
            one, or samples that do not fit it; EdgeoptError: images for a model without
            preprocessing.
    """
    if isinstance(data, SampleSet):
        samples = data
    else:
        if len(model.inputs) != 1 or model.inputs[0].batch_axis != 0:
            raise DataError(f"{model.name} has inputs {[s.describe() for s in model.inputs]}; images feed one "
                            f"batch-first input: pass --inputs DIR of .npy/.npz samples instead")
        spec = model.inputs[0]
        samples = SampleSet(inputs={spec.name: calibration_data(model, data).astype(spec.dtype, copy=False)})
    check_samples(samples, model)  # now, not in a worker process
    return RealInputs(samples, source, kind)
