"""The suites: which models, precisions, backends, threads and batches each seed study ran
(:mod:`edgeopt.suites.run` describes them and runs one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import EdgeoptError

ALL_CPUS = 0
"""A thread count in a spec meaning "every logical CPU of this machine"."""

@dataclass(frozen=True)
class Variant:
    """A precision of the suite's models: a recipe built on each, and where it runs.

    Attributes:
        name: the name in the suite's tables ("fp32", "int8", ...).
        recipe: the recipe's name in the optimizer's vocabulary
            (:func:`edgeopt.optimizer.recipes.parse_recipe`; calibration images are the
            built-in demo photos and scans).
        backends: backends this variant runs on (None: the suite's); int8 graphs have
            no PyTorch module, so they run on ONNX runtimes only.
    """

    name: str
    recipe: str = "fp32"
    backends: tuple[str, ...] | None = None


FP32 = Variant("fp32")
INT8 = Variant("int8", "int8-ort", ("ort", "openvino"))


# suite.json files written before variants named recipes listed their passes instead.
_RECIPE_OF_PASSES = {(): "fp32", ("cleanup", "int8-static"): "int8-ort"}


def recipe_of(variant: dict[str, Any]) -> str:
    """The recipe name of a variant as suite.json stores it (older files list its passes).

    Raises:
        EdgeoptError: passes that no recipe names.
    """
    if "recipe" in variant:
        return variant["recipe"]
    passes = tuple(variant["passes"])
    if passes not in _RECIPE_OF_PASSES:
        raise EdgeoptError(f"suite.json variant {variant['name']!r} applies passes {list(passes)} that no "
                           f"recipe names: re-run the suite")
    return _RECIPE_OF_PASSES[passes]


@dataclass(frozen=True)
class SuiteSpec:
    """One study.

    Attributes:
        name: the NAME of ``edgeopt suite NAME``.
        title: heading of the report.
        source: the seed study it reproduces, and what it measured.
        models: zoo references.
        backends: registry names (None: every timed backend registered).
        threads: thread counts (:data:`ALL_CPUS` = the machine's logical CPUs).
        batches: batch sizes, increasing.
        metric: "ms_per_image" (p50 latency / batch; the Raspberry Pi study's unit, at its mean) or
            "images_per_s" (the NNPACK study's unit).
        variants: precisions.
        min_runs: timed runs a cell aims for (the seed studies ran 100 forward passes).
    """

    name: str
    title: str
    source: str
    models: tuple[str, ...]
    backends: tuple[str, ...] | None
    threads: tuple[int, ...]
    batches: tuple[int, ...]
    metric: str
    variants: tuple[Variant, ...] = (FP32,)
    min_runs: int = 100


SUITES: dict[str, SuiteSpec] = {s.name: s for s in (
    SuiteSpec(
        "seed-rpi", "zoo:seednet on every runtime, batch 1 to 256",
        "seed Raspberry Pi 3 study: a small CNN on Caffe, TensorFlow and MXNet builds, batch 1..256, "
        "100 forward passes each, mean time per image",
        ("zoo:seednet",), None, (1, 2), (1, 2, 4, 8, 16, 32, 64, 128, 256), "ms_per_image",
    ),
    SuiteSpec(
        "seed-nnpack", "conv algorithms on the classic ImageNet networks, images/s vs batch",
        "seed MXNet NNPACK study: AlexNet, VGG-16, Inception-BN, Inception v3, ResNet-50, ResNet-152 "
        "with and without NNPACK, random images, images/s vs batch",
        ("zoo:alexnet", "zoo:vgg16", "zoo:inception-bn", "zoo:inception-v3", "zoo:resnet50", "zoo:resnet152"),
        ("torch-onednn", "torch-nnpack", "torch-im2col", "ort", "openvino"), (ALL_CPUS,), (1, 2, 4, 8, 16),
        "images_per_s",
    ),
    SuiteSpec(
        "mobile", "lightweight networks at batch 1, fp32 and int8",
        "the seeds' lightweight networks (MobileNets, ShuffleNet, SqueezeNet) for embedded CPUs",
        ("zoo:mobilenet-v1", "zoo:mobilenet-v2", "zoo:mobilenet-v3-small", "zoo:mobilenet-v3-large",
         "zoo:shufflenet-v2", "zoo:squeezenet1.1"),
        None, (ALL_CPUS,), (1,), "ms_per_image", (FP32, INT8),
    ),
)}


def get_suite(name: str) -> SuiteSpec:
    """The suite called ``name``.

    Raises:
        EdgeoptError: unknown name (the message lists the suites).
    """
    try:
        return SUITES[name]
    except KeyError:
        raise EdgeoptError(f"no suite {name!r}: choose one of {', '.join(SUITES)}") from None
