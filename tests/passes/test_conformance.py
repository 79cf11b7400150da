"""One conformance template run against every pass in the registry.

Like tests/test_backends.py for backends (and NNCF's ``tests/cross_fw/test_templates``):
each check is written once and parametrized over ``edgeopt.passes.base.names()``, so a
pass is tested the day it is registered. The cases are tiny graphs written as data (the
idea of onnx's ``onnx/backend/test/case/node/*.py``), built here with ``onnx.helper`` and
small seeded random weights; no zoo model is needed, every pass runs on some tiny graph.

For every (pass, case), with the pass's default config:

1. the input Model, its proto and (for the case loaded from a file) the file are untouched;
2. input and output names, their order and the symbolic batch dimension
   (:data:`edgeopt.shapes.BATCH_DIM`) are kept;
3. ``Model.passes`` records the pass;
4. the result passes ``onnx.checker.check_model`` (full check, with shape inference);
5. the result runs at batch 1, 3 and 32, and its outputs agree with the oracle's outputs
   of the ORIGINAL model (the ``reference`` backend, ``onnx.reference.ReferenceEvaluator``,
   runs both graphs, so only the pass is tested, not a runtime) within the pass's
   documented tolerance, ``PassSpec.tolerance`` in passes/base.py (the numbers live
   there, not here).

A pass that cannot handle a case refuses with a PassError; the refusals we know of are
listed in :data:`REFUSALS` and skip with the pass's own message. Any other error fails,
and so does a listed refusal that no longer happens (the entry is stale: remove it).
:func:`test_every_pass_runs_on_some_case` checks that no pass is refused everywhere.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeopt.backends import registry
from edgeopt.errors import PassError
from edgeopt.load import load_model
from edgeopt.shapes import BATCH_DIM, fix_input_shapes
from edgeopt.model import Model
from edgeopt.passes import base

OPSET = 17
CALIBRATION_IMAGES = 8
# Batch 1 and 3 show the batch dim stays free; 32 more images give the top-1 agreement of
# "agreement" tolerances a sample (a fraction of 4 samples would say little).
BATCHES = (1, 3, 32)


# -- cases: tiny graphs as data --------------------------------------------------------------
class _Graph:
    """A graph under construction: nodes and seeded initializers, added op by op.

    Weights are He-normal (std sqrt(2 / fan_in)) so activations keep their scale through
    the layers, as in a trained CNN; BatchNorm statistics are drawn around (0, 1) so the
    folding that cleanup does is not a no-op.
    """

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.asarray(value, np.float32), name))
        return name

    def op(self, op_type: str, inputs: list[str], out: str = "", **attrs) -> str:
        out = out or f"{op_type.lower()}{len(self.nodes)}"
        name = f"{op_type}_{len(self.nodes)}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=name, **attrs))
        return out

    def conv(self, x: str, cin: int, cout: int, k: int = 3, *, group: int = 1, stride: int = 1,
             out: str = "") -> str:
        n = len(self.nodes)
        w = self.const(f"conv{n}.w", self.rng.normal(0, np.sqrt(2 / (cin // group * k * k)),
                                                     (cout, cin // group, k, k)))
        b = self.const(f"conv{n}.b", self.rng.normal(0, 0.1, cout))
        return self.op("Conv", [x, w, b], out, kernel_shape=[k, k], pads=[k // 2] * 4,
                       strides=[stride, stride], group=group)

    def bn(self, x: str, c: int) -> str:
        n = len(self.nodes)
        params = [self.rng.uniform(0.5, 1.5, c), self.rng.normal(0, 0.1, c),
                  self.rng.normal(0, 0.1, c), self.rng.uniform(0.5, 1.5, c)]
        names = [self.const(f"bn{n}.{p}", v) for p, v in zip(("scale", "bias", "mean", "var"), params)]
        return self.op("BatchNormalization", [x, *names])

    def head(self, x: str, cin: int, classes: int, out: str) -> str:
        """GlobalAveragePool -> Flatten -> Gemm: (N, cin, H, W) -> (N, classes) scores."""
        n = len(self.nodes)
        w = self.const(f"fc{n}.w", self.rng.normal(0, np.sqrt(1 / cin), (classes, cin)))
        b = self.const(f"fc{n}.b", self.rng.normal(0, 0.1, classes))
        flat = self.op("Flatten", [self.op("GlobalAveragePool", [x])], axis=1)
        return self.op("Gemm", [flat, w, b], out=out, transB=1)

    def model(self, inputs: dict[str, tuple[int, ...]], outputs: dict[str, tuple[int, ...]],
              batch: str = BATCH_DIM) -> onnx.ModelProto:
        """The ModelProto; shapes without the batch dim, which is ``batch`` (symbolic)."""
        def info(name: str, dims: tuple[int, ...]) -> onnx.ValueInfoProto:
            return helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch, *dims])

        graph = helper.make_graph(self.nodes, "conformance", [info(n, d) for n, d in inputs.items()],
                                  [info(n, d) for n, d in outputs.items()], self.inits)
        proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
        onnx.checker.check_model(proto, full_check=True)
        return proto


def classifier() -> onnx.ModelProto:
    """conv-bn-relu-maxpool-conv-bn-relu-gap-gemm: (N, 3, 16, 16) -> logits (N, 10)."""
    g = _Graph(seed=1)
    x = g.op("Relu", [g.bn(g.conv("image", 3, 16), 16)])
    x = g.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])
    x = g.op("Relu", [g.bn(g.conv(x, 16, 32), 32)])
    g.head(x, 32, 10, "logits")
    return g.model({"image": (3, 16, 16)}, {"logits": (10,)})


def residual() -> onnx.ModelProto:
    """A residual block ending in softmax, batch dim named "batch_size" as exporters do:
    (N, 3, 12, 12) -> probabilities (N, 5)."""
    g = _Graph(seed=2)
    x = g.op("Relu", [g.conv("input", 3, 16)])
    y = g.bn(g.conv(g.op("Relu", [g.conv(x, 16, 16)]), 16, 16), 16)
    x = g.op("Relu", [g.op("Add", [x, y])])
    g.op("Softmax", [g.head(x, 16, 5, "scores")], out="probs", axis=1)
    return g.model({"input": (3, 12, 12)}, {"probs": (5,)}, batch="batch_size")


def depthwise() -> onnx.ModelProto:
    """Mobile-style: conv s2, depthwise 3x3, pointwise 1x1, ReLU6 and HardSwish:
    (N, 3, 16, 16) -> logits (N, 8)."""
    g = _Graph(seed=3)
    zero, six = g.const("zero", np.float32(0)), g.const("six", np.float32(6))
    x = g.op("Clip", [g.bn(g.conv("x", 3, 16, stride=2), 16), zero, six])
    x = g.op("Clip", [g.bn(g.conv(x, 16, 16, group=16), 16), zero, six])
    x = g.op("HardSwish", [g.conv(x, 16, 64, k=1)])  # 1024 weights: deep-compression's min_params
    g.head(x, 64, 8, "logits")
    return g.model({"x": (3, 16, 16)}, {"logits": (8,)})


def two_inputs() -> onnx.ModelProto:
    """Two images fused by Add (an RGB and a depth map): (N, 3, 8, 8), (N, 1, 8, 8) -> (N, 4)."""
    g = _Graph(seed=4)
    x = g.op("Relu", [g.op("Add", [g.conv("rgb", 3, 16), g.conv("depth", 1, 16)])])
    g.head(g.op("Relu", [g.conv(x, 16, 16)]), 16, 4, "scores")
    return g.model({"rgb": (3, 8, 8), "depth": (1, 8, 8)}, {"scores": (4,)})


def two_outputs() -> onnx.ModelProto:
    """A detector-like net with two heads, class scores then a box map:
    (N, 3, 8, 8) -> (N, 4), (N, 4, 8, 8)."""
    g = _Graph(seed=5)
    x = g.op("Relu", [g.bn(g.conv("image", 3, 16), 16)])
    x = g.op("Relu", [g.conv(x, 16, 16)])
    g.head(x, 16, 4, "scores")
    g.conv(x, 16, 4, k=1, out="boxes")
    return g.model({"image": (3, 8, 8)}, {"scores": (4,), "boxes": (4, 8, 8)})


@dataclass(frozen=True)
class Case:
    """A tiny graph and how the Model is made of it.

    Attributes:
        build: returns the ModelProto (same bytes every call: seeded).
        from_file: saved to a file and loaded with ``load_model(path)`` (checks that the
            file stays untouched); else wrapped with ``fix_input_shapes`` in memory.
    """

    build: Callable[[], onnx.ModelProto]
    from_file: bool = False

    def __str__(self) -> str:
        return self.build.__name__


CASES = [Case(classifier), Case(residual, from_file=True), Case(depthwise), Case(two_inputs),
         Case(two_outputs)]
CASE_NAMES = [str(c) for c in CASES]

# Refusals we know of: (pass, case) -> a substring of the PassError the pass raises. Only
# that refusal skips; any other error fails, and so does the pass accepting the case.
_SINGLE_INPUT = "single-input models"
REFUSALS = {
    # Calibration feeds one image tensor; which images would go with a second input is
    # not the pass's to guess.
    ("int8-static", "two_inputs"): _SINGLE_INPUT,
    ("int8-nncf", "two_inputs"): _SINGLE_INPUT,
    ("int8-ort-defaults", "two_inputs"): _SINGLE_INPUT,
    ("int8-nncf-defaults", "two_inputs"): _SINGLE_INPUT,
    ("prune", "two_inputs"): _SINGLE_INPUT,
    ("distill", "two_inputs"): _SINGLE_INPUT,
    # Distillation matches one tensor of class scores.
    ("distill", "two_outputs"): "distill classifiers only",
    ("qat", "two_inputs"): _SINGLE_INPUT,
    ("qat", "two_outputs"): "single-output classifiers",
    ("weights-ternary", "two_inputs"): _SINGLE_INPUT,
    ("weights-ternary", "two_outputs"): "single-output classifiers",
    ("weights-binary", "two_inputs"): _SINGLE_INPUT,
    ("weights-binary", "two_outputs"): "single-output classifiers",
}

# Passes that train or import NNCF (seconds each): run with -m slow.
SLOW = {"distill", "int8-nncf", "int8-nncf-defaults", "qat", "weights-ternary", "weights-binary"}
PASSES = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in base.names()]


# -- making and running the models ---------------------------------------------------------------
@lru_cache(maxsize=None)
def _proto_bytes(case: Case) -> bytes:
    return case.build().SerializeToString()


def _in_memory(case: Case) -> Model:
    proto, specs = fix_input_shapes(onnx.load_from_string(_proto_bytes(case)))
    return Model(proto=proto, inputs=specs, source=f"test:{case}")


def _make_model(case: Case, tmp_path: Path) -> tuple[Model, Path | None]:
    """A fresh Model of ``case`` (a pass that mutated a shared one would spoil the next
    tests' inputs), and its file when loaded from one."""
    if not case.from_file:
        return _in_memory(case), None
    path = tmp_path / f"{case}.onnx"
    path.write_bytes(_proto_bytes(case))
    return load_model(path), path


def _images(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Image-like float32 (N, C, H, W): a smooth 4x4 pattern upsampled, plus pixel noise.

    Natural images carry most of their energy at low spatial frequencies; pure pixel
    noise would average out in the global pooling, so every sample would get nearly the
    same scores and top-1 classes would be ties.
    """
    n, c, h, w = shape
    coarse = rng.standard_normal((n, c, 4, 4))
    smooth = coarse.repeat(-(-h // 4), axis=2).repeat(-(-w // 4), axis=3)[:, :, :h, :w]
    return (smooth + 0.5 * rng.standard_normal(shape)).astype(np.float32)


def _feeds(model: Model, batch: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {s.name: _images(s.batched(batch), rng) for s in model.inputs}


def _calibration(model: Model) -> np.ndarray:
    """Images for the first input, float32 (CALIBRATION_IMAGES, C, H, W); the inputs
    checked are drawn with other seeds, so int8 ranges are not fitted to them."""
    return _feeds(model, CALIBRATION_IMAGES, seed=100)[model.inputs[0].name]


def _run(model: Model, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return registry.get("reference").prepare(model, threads=1).run(feeds)


@lru_cache(maxsize=None)
def _oracle(case: Case, batch: int) -> tuple[dict[str, np.ndarray], tuple[np.ndarray, ...]]:
    """(feeds, the reference evaluator's outputs of the original model) at ``batch``."""
    model = _in_memory(case)  # for the file case, the graph load_model makes of the file
    feeds = _feeds(model, batch, seed=batch)
    return feeds, tuple(_run(model, feeds))


# What the template can give a pass besides the model: calibration images and, as the
# teacher, the original model itself (labels are optional and never required).
SUPPLIED = {base.CALIBRATION, base.TEACHER}


def _short_budget(name: str):
    """The pass's default config, with a training budget (``seconds``) of 3 s where it has
    one: the contract (input untouched, IO kept, outputs within the tolerance) holds for
    any budget, and the trained passes keep their best held-out weights, the start
    included, so a short run is checked against the same tolerance."""
    config, used = base.config_with(name, {"seconds": 3.0})
    return config if used else None


def _apply_or_skip(name: str, model: Model, case: Case) -> Model:
    """run_pass with the defaults; skips on a refusal listed in REFUSALS or when an optional
    third-party library the pass needs is not installed."""
    missing = set(base.get(name).requires) - SUPPLIED
    assert not missing, f"{name} requires {sorted(missing)}: teach this template to supply it"
    known = REFUSALS.get((name, str(case)))
    try:
        out = base.run_pass(name, model, _short_budget(name), calibration=_calibration(model), teacher=model)
    except PassError as e:
        if known is not None and known in str(e):
            pytest.skip(f"{name} refuses {case}: {e}")
        raise
    except ImportError as e:
        # Only a third-party library: a broken edgeopt import (a wrong registry string)
        # must fail.
        if e.name and e.name.split(".")[0] != "edgeopt":
            pytest.skip(f"{name} needs {e.name}, which is not installed: {e}")
        raise
    assert known is None, (f"{name} now handles {case} (REFUSALS expected {known!r}): "
                           f"remove the entry so the case is checked")
    return out


# -- the tolerance, as documented on Tolerance --------------------------------------------------
def _cosines(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Cosine similarity per sample (row of dim 0); 1 where both rows are all zero."""
    a = got.reshape(len(got), -1).astype(np.float64)
    b = want.reshape(len(want), -1).astype(np.float64)
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    both_zero = ~a.any(1) & ~b.any(1)
    return np.where(both_zero, 1.0, (a * b).sum(1) / np.where(norms > 0, norms, 1.0))


def _check_tolerance(tol: base.Tolerance, got: np.ndarray, want: np.ndarray, what: str) -> None:
    """Assert ``got`` (the result's output) is within ``tol`` of ``want`` (the original's)."""
    assert tol.kind in base.TOLERANCE_KINDS, f"tolerance kind {tol.kind!r} has no check here: add one"
    if tol.kind in (base.EXACT, base.RELATIVE) or (tol.kind == base.AGREEMENT and tol.rtol):
        err = float(np.abs(got.astype(np.float64) - want).max())
        bound = tol.rtol * float(np.ptp(want)) + tol.atol
        assert err <= bound, f"{what}: max abs diff {err:.3g} > {bound:.3g} ({tol})"
    if tol.kind == base.AGREEMENT:
        cos = _cosines(got, want)
        assert cos.min() >= tol.cosine, f"{what}: lowest cosine per sample {cos.min():.5f} ({tol})"
        if want.ndim == 2 and want.shape[1] >= 2:
            agree = float((got.argmax(1) == want.argmax(1)).mean())
            assert agree >= tol.top1, f"{what}: top-1 agreement {agree:.0%} ({tol})"


# -- the template ------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("name", PASSES)
def test_pass_conforms(name: str, case: Case, tmp_path: Path) -> None:
    model, path = _make_model(case, tmp_path)
    assert [vi.type.tensor_type.shape.dim[0].dim_param for vi in model.proto.graph.input] == (
        [BATCH_DIM] * len(model.inputs)), f"{case}: the Model should carry edgeopt's batch dim"
    proto_before = model.proto.SerializeToString()
    fields_before = copy.deepcopy({f.name: getattr(model, f.name) for f in dataclasses.fields(model)
                                   if f.name not in ("proto", "_bytes")})

    out = _apply_or_skip(name, model, case)

    # 1. the input is untouched
    assert model.proto.SerializeToString() == proto_before, f"{name} modified its input proto"
    assert {k: getattr(model, k) for k in fields_before} == fields_before, f"{name} modified its input Model"
    if path is not None:
        assert path.read_bytes() == _proto_bytes(case), f"{name} modified the input file"
    # 2. names, order and the symbolic batch dim are kept
    assert [s.name for s in out.inputs] == [s.name for s in model.inputs], f"{name}: inputs {out.inputs}"
    assert out.output_names == model.output_names, f"{name}: outputs {out.output_names}"
    inits = {i.name for i in out.proto.graph.initializer}
    graph_inputs = [vi for vi in out.proto.graph.input if vi.name not in inits]
    assert [vi.name for vi in graph_inputs] == [s.name for s in model.inputs], f"{name}: graph inputs differ"
    for vi in [*graph_inputs, *out.proto.graph.output]:
        dim0 = vi.type.tensor_type.shape.dim[0]
        assert dim0.dim_param == BATCH_DIM, f"{name}: {vi.name} lost its batch dim ({dim0})"
    # 3. provenance
    assert out.passes == (*model.passes, name), f"{name}: Model.passes is {out.passes}"
    # 4. a valid graph (checked before running it, so an invalid one fails with the
    # checker's message, not with whatever the evaluator makes of it)
    onnx.checker.check_model(out.proto, full_check=True)
    # 5. the result runs at every batch; its outputs, pooled over the batches, agree with
    # the original's within the documented tolerance
    pooled: dict[str, tuple[list, list]] = {o: ([], []) for o in model.output_names}
    for batch in BATCHES:
        feeds, want = _oracle(case, batch)
        got = _run(out, feeds)
        assert len(got) == len(want)
        for output, g, w in zip(model.output_names, got, want):
            what = f"{name} on {case}, output {output!r}, batch {batch}"
            assert g.shape == w.shape and g.dtype == w.dtype, (
                f"{what}: {g.shape} {g.dtype}, want {w.shape} {w.dtype}")
            assert np.isfinite(g).all(), f"{what}: not finite"
            pooled[output][0].append(g)
            pooled[output][1].append(w)
    tol = base.get(name).tolerance
    for output, (got, want) in pooled.items():
        _check_tolerance(tol, np.concatenate(got), np.concatenate(want),
                         f"{name} on {case}, output {output!r}, batches {BATCHES}")


def test_every_pass_runs_on_some_case() -> None:
    """No silent gaps: every registered pass is expected to run (not refuse) on at least
    one case, and every refusal names a registered pass and a case. With the strict
    refusal check in :func:`_apply_or_skip`, an expected run either passes or fails."""
    for name in base.names():
        runs = [c for c in CASE_NAMES if (name, c) not in REFUSALS]
        assert runs, f"pass {name} is refused on every case: add a tiny graph it can handle"
    for name, case in REFUSALS:
        assert name in base.names() and case in CASE_NAMES, f"stale refusal {(name, case)}"
    assert SLOW <= set(base.names()), f"SLOW names unregistered passes: {SLOW - set(base.names())}"


@pytest.mark.parametrize("name", base.names())
def test_tolerance_is_documented(name: str) -> None:
    tol = base.get(name).tolerance
    assert isinstance(tol, base.Tolerance)
    line = str(tol)
    assert line.startswith(tol.kind) and "\n" not in line
    assert tol.why, f"{name}: say what the tolerance rests on"
