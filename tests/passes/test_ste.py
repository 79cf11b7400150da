"""weights-ternary and weights-binary: the STE gradients, the TWN/BWN levels and scales on a
hand-computed tensor, the codes and metadata the pass writes, the injected clock that
bounds its training, and the exported graph against the torch student on ONNX Runtime
and OpenVINO (the XNOR graph: OpenVINO only, run as BinaryConvolution)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from edgeopt.backends import registry
from edgeopt.errors import PassError
from edgeopt.model import from_torch
from edgeopt.passes import base
from edgeopt.passes.lowbit import declared_bits, weight_bytes
from edgeopt.passes.ste import NOTE_KEY, BinaryConfig, TernaryConfig

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from edgeopt.convert import bridge  # noqa: E402
from edgeopt.passes.ste import api, network  # noqa: E402
from edgeopt.passes.ste.quantizers import QuantizeSte, SignSte, binarize, ternarize  # noqa: E402

# Two output channels of four weights, by hand:
# row 0: mean|w| = 0.425, Δ = 0.2975 -> |w| > Δ at 0.9 and 0.5, α = 0.7;
# row 1: mean|w| = 0.525, Δ = 0.3675 -> 1.0 and 1.0 kept, α = 1.0.
W = [[0.1, -0.9, 0.5, -0.2], [1.0, 1.0, -0.1, 0.0]]


def test_twn_levels_and_scales_match_the_formulas():
    codes, alpha = ternarize(torch.tensor(W))
    assert codes.tolist() == [[0, -1, 1, 0], [1, 1, 0, 0]]
    assert alpha.tolist() == pytest.approx([0.7, 1.0])


def test_bwn_levels_and_scales_match_the_formulas():
    codes, alpha = binarize(torch.tensor(W))
    assert codes.tolist() == [[1, -1, 1, -1], [1, 1, -1, 1]]  # sign(0) = +1: every code is ±1
    assert alpha.tolist() == pytest.approx([0.425, 0.525])


def test_ste_passes_the_gradient_straight_through_and_clips_it_for_binary():
    w = torch.tensor([[0.5, -1.5, 0.2, 2.0], [0.9, -0.3, 1.0, -1.2]], requires_grad=True)
    g = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]])
    QuantizeSte.apply(w, "ternary", None).backward(g)
    assert w.grad.tolist() == g.tolist()
    w.grad = None
    out = QuantizeSte.apply(w, "binary", 1.0)
    out.backward(g)
    assert w.grad.tolist() == [[1.0, 0.0, 3.0, 0.0], [5.0, 6.0, 7.0, 0.0]]  # zero where |w| > 1
    np.testing.assert_allclose(out.detach().numpy(), [[1.05, -1.05, 1.05, 1.05], [0.85, -0.85, 0.85, -0.85]], rtol=1e-6)


def test_sign_activation_is_plus_minus_one_with_the_gradient_inside_one():
    x = torch.tensor([-2.0, -0.5, 0.0, 0.3, 1.5], requires_grad=True)
    y = SignSte.apply(x)
    y.backward(torch.ones(5))
    assert y.tolist() == [-1.0, -1.0, -1.0, 1.0, 1.0]
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]


class _Tiny(nn.Module):
    """conv-BN-ReLU x 2, depthwise conv-ReLU, 1x1 conv-ReLU, pool, linear-ReLU, linear: 6
    layers with weights."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.ReLU(), nn.Conv2d(16, 16, 1), nn.ReLU(),
            nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.head = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 5))

    def forward(self, x):
        return self.head(self.features(x))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    module = _Tiny().eval()
    with torch.no_grad():  # BatchNorm statistics that fold into something other than identity
        for bn in (module.features[1], module.features[4]):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    images = np.random.default_rng(0).standard_normal((48, 3, 8, 8)).astype(np.float32)
    return from_torch(module, torch.from_numpy(images[:1])), images


@pytest.fixture
def ticking(monkeypatch):
    """A clock on which a training step takes 0.05 s and an evaluation 0.2 s."""
    from edgeopt._util.deadline import FakeClock
    from edgeopt.passes.distill import training

    clock, counts = FakeClock(), {"steps": 0}
    step, evaluate = training._Run._step, training._Run._evaluate

    def slow_step(self, idx):
        clock.advance(0.05)
        counts["steps"] += 1
        return step(self, idx)

    def slow_evaluate(self, *args):
        clock.advance(0.2)
        return evaluate(self, *args)

    monkeypatch.setattr(training._Run, "_step", slow_step)
    monkeypatch.setattr(training._Run, "_evaluate", slow_evaluate)
    clock.counts = counts
    return clock


def _codes(proto: onnx.ModelProto) -> dict[str, np.ndarray]:
    return {t.name: numpy_helper.to_array(t).astype(np.int8) for t in proto.graph.initializer
            if t.data_type in (onnx.TensorProto.INT2, onnx.TensorProto.INT4)}


@pytest.mark.parametrize("name,config,levels,bits", [
    ("weights-ternary", TernaryConfig(seconds=1.0), {-1, 0, 1}, 2),
    ("weights-binary", BinaryConfig(seconds=1.0), {-1, 1}, 1),
])
def test_pass_stores_codes_in_the_right_set_declares_their_bits_and_keeps_the_budget(
        tiny, ticking, name, config, levels, bits):
    model, images = tiny
    spec = base.get(name)
    out = spec.load()[0](model, config, images, clock=ticking)
    codes = _codes(out.proto)
    # convs 2 and 4 and the first Linear; the first conv, the depthwise conv 3 and the
    # classifier stay float32.
    assert len(codes) == 3 and all(set(np.unique(q).tolist()) <= levels for q in codes.values())
    assert all(q.dtype == np.int8 for q in codes.values())
    assert {t.data_type for t in out.proto.graph.initializer if t.name in codes} == {onnx.TensorProto.INT2}
    assert declared_bits(out.proto) == dict.fromkeys(codes, bits)
    floats = [t for t in out.proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 2]
    assert sorted(tuple(t.dims) for t in floats) == [(5, 16), (8, 3, 3, 3), (16, 1, 3, 3)]
    assert weight_bytes(out.proto) < weight_bytes(model.proto) / 3
    # 1 s of 0.05 s steps and 0.2 s evaluations: the clock ends within the budget.
    assert ticking.now <= 1.0 and 1 <= ticking.counts["steps"] <= 16
    note = next(p.value for p in out.proto.metadata_props if p.key == NOTE_KEY)
    assert "held-out agreement" in note and out.passes[-1] == name


def _student(model, kind: str, xnor: bool = False):
    """The untrained STE student of the pass (the depthwise conv quantized too) and its
    chosen layers: no training needed to compare the export with it."""
    student = network.fold(bridge.to_torch(model))
    example = torch.zeros(model.inputs[0].shape)
    chosen = network.select(student, example, True, ()).chosen
    return network.swap_in(student, chosen, kind, binary_input=xnor).eval(), chosen


def _run(backend: str, model, x: np.ndarray) -> np.ndarray:
    return registry.get(backend).prepare(model, threads=1).run({model.inputs[0].name: x})[0]


@pytest.mark.parametrize("kind,config", [("ternary", TernaryConfig()), ("binary", BinaryConfig()),
                                         ("ternary", TernaryConfig(storage_bits=4))])
def test_export_runs_on_ort_and_openvino_and_matches_the_torch_student(tiny, kind, config):
    model, images = tiny
    student, chosen = _student(model, kind)
    with torch.no_grad():
        want = student(torch.from_numpy(images)).numpy()
    proto = api.export_trained(student, chosen, model, config, kind, "test")
    out = base.finish(model, proto, "test")
    scale = np.abs(want).max()
    np.testing.assert_allclose(_run("ort", out, images), want, atol=2e-5 * scale)
    if config.storage_bits == 4 and registry.get("openvino").available() is None:
        np.testing.assert_allclose(_run("openvino", out, images), want, atol=2e-5 * scale)


def test_xnor_export_runs_as_binary_convolution_on_openvino(tiny):
    model, images = tiny
    ov = pytest.importorskip("openvino")
    student, chosen = _student(model, "binary", xnor=True)
    with torch.no_grad():
        want = student(torch.from_numpy(images)).numpy()
    proto = api.export_trained(student, chosen, model, BinaryConfig(activations="binary"), "binary", "test")
    assert [n.domain for n in proto.graph.node if n.op_type == "FakeQuantize"] == ["org.openvinotoolkit"] * 2
    # the ±1 codes of both binary-input convs behind a Cast (see export._as_cast); the
    # depthwise conv and the Linear keep α behind DequantizeLinear.
    ops = [n.op_type for n in proto.graph.node]
    assert ops.count("Cast") == 2 and ops.count("DequantizeLinear") == 2
    out = base.finish(model, proto, "test")
    np.testing.assert_allclose(_run("openvino", out, images), want, atol=2e-5 * np.abs(want).max())
    core = ov.Core()
    read = core.read_model(out.serialized(), b"")
    read.reshape([1, *model.inputs[0].shape[1:]])  # BinaryConvolution has no dynamic-shape kernel
    compiled = core.compile_model(read, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    types = [op.get_rt_info()["layerType"].astype(str) for op in compiled.get_runtime_model().get_ordered_ops()]
    assert types.count("BinaryConvolution") == 2, types  # the 3x3 and the 1x1; the depthwise has groups


def test_refusals_are_one_line(tiny):
    model, images = tiny
    with pytest.raises(PassError, match="exclude names no Conv2d/Linear"):
        base.run_pass("weights-ternary", model, TernaryConfig(exclude=("nope",)), images)
    with pytest.raises(PassError, match="storage_bits must be 2"):
        TernaryConfig(storage_bits=3)
    with pytest.raises(PassError, match="activations must be one of"):
        BinaryConfig(activations="ternary")
    assert json.dumps(BinaryConfig().__dict__)  # serialisable into reports
