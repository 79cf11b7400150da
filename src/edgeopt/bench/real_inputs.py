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

A large folder is not held whole: the first samples that fit :data:`MAX_BYTES` of input
tensors are used (at least one), and the record says how many of how many (benchmark_app
itself fills only as many inputs as it has infer requests).
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

MAX_BYTES = 128 * 2**20
"""Input tensor bytes of the samples kept for timing (each worker process holds them, and
the batches made from them, once more)."""


@dataclass(frozen=True)
class RealInputs:
    """The samples a cell is timed on, read from a folder.

    Attributes:
        samples: one array per model input, (N, *sample shape) at the input's dtype
            (images already through the model's preprocess), and the fixed inputs.
        source: where they came from (the folder, as the user gave it).
        kind: "images", "samples" (.npy/.npz) or "audio".
        in_folder: how many the folder holds (N or more: see :data:`MAX_BYTES`).
    """

    samples: SampleSet
    source: str
    kind: str
    in_folder: int

    def __len__(self) -> int:
        return len(self.samples)

    def feeds(self, model: "Model", batch: int, limit: int | None = None) -> list[dict[str, np.ndarray]]:
        """The ceil(N/b) feeds of ``model`` at ``batch`` b, cycling over the samples (module
        docstring), or the first ``limit`` of them; each holds exactly b samples on each
        input's batch axis.

        Raises:
            DataError: the samples do not fit the model (:func:`edgeopt.data.feeds.check_samples`).
        """
        n = len(self.samples)
        count = math.ceil(n / batch) if limit is None else min(limit, math.ceil(n / batch))
        order = np.arange(count * batch) % n
        wrapped = SampleSet(inputs={k: v[order] for k, v in self.samples.inputs.items()}, fixed=self.samples.fixed)
        return [feed for feed, _ in sample_feeds(wrapped, model, batch)]

    def summary(self) -> dict[str, Any]:
        """{"kind", "source", "samples": N used, "in_folder"}: what a run records about its inputs."""
        return {"kind": self.kind, "source": self.source, "samples": len(self), "in_folder": self.in_folder}

    def record(self, batch: int) -> dict[str, Any]:
        """What a cell's result says about its inputs: :meth:`summary` and "batches", the
        feeds cycled at ``batch``."""
        return {**self.summary(), "batches": math.ceil(len(self) / batch)}


def real_inputs(model: "Model", data: "ImageSet | SampleSet", *, source: str, kind: str,
                max_bytes: int = MAX_BYTES) -> RealInputs:
    """The inputs of ``data`` as ``model`` takes them: images through ``model.preprocess``
    into its one input (:func:`edgeopt.data.feeds.calibration_data`), samples as they are;
    the first of them that fit ``max_bytes`` of input tensors (at least one).

    Args:
        model: the model to time (its inputs and preprocess).
        data: what :func:`edgeopt.data.inputs.load_inputs` read.
        source: the folder, for the record; kind: "images", "samples" or "audio".
        max_bytes: input tensor bytes to keep (:data:`MAX_BYTES`).

    Raises:
        DataError: images for a model with more than one input or without a batch-first
            one, or samples that do not fit it; EdgeoptError: images for a model without
            preprocessing.
    """
    specs = {s.name: s for s in model.inputs}
    if isinstance(data, SampleSet):
        per_sample = sum(np.dtype(specs[k].dtype).itemsize * v[0].size for k, v in data.inputs.items() if k in specs)
    else:
        if len(model.inputs) != 1 or model.inputs[0].batch_axis != 0:
            raise DataError(f"{model.name} has inputs {[s.describe() for s in model.inputs]}; images feed one "
                            f"batch-first input: pass --inputs DIR of .npy/.npz samples instead")
        spec = model.inputs[0]
        per_sample = np.dtype(spec.dtype).itemsize * math.prod(spec.sample_shape)
    keep = min(len(data), max(1, max_bytes // max(per_sample, 1)))
    kept = data if keep == len(data) else data.subset(range(keep))
    if isinstance(kept, SampleSet):
        samples = kept
    else:
        samples = SampleSet(inputs={spec.name: calibration_data(model, kept).astype(spec.dtype, copy=False)})
    check_samples(samples, model)  # now, not in a worker process
    return RealInputs(samples, source, kind, in_folder=len(data))
