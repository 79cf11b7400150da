"""Inputs that are not images: SampleSet, folders of .npy/.npz samples and of audio files,
and one line for every bad folder or file."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

import edgeopt
from edgeopt.data.audio import load_audio_folder, read_audio, write_audio
from edgeopt.data.feeds import calibration_data, sample_feeds
from edgeopt.data.inputs import folder_kind, load_inputs
from edgeopt.data.sample_folder import load_sample_folder
from edgeopt.data.samples import SampleSet
from edgeopt.errors import DataError
from edgeopt.evaluate.runner import predict_outputs

from support import TINY_W, no_batch_axis, one_line, reshape_to_one_row, tiny_model, two_inputs_and_state


def _load(proto, tmp_path, **kwargs):
    path = tmp_path / "model.onnx"
    path.write_bytes(proto.SerializeToString())
    return edgeopt.load_model(str(path), **kwargs)


def _waveform_model(tmp_path, length=800, rate=None, labels=None):
    """(N, 1, length) -> global average -> (N, 1): a 1-D model, with its sample rate and
    labels as metadata when given."""
    from onnx import TensorProto, helper

    proto = tiny_model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)],
                       [("x", TensorProto.FLOAT, [None, 1, length])], [("y", TensorProto.FLOAT, [None, 1])],
                       [("axes", np.array([2], np.int64))], opset=18)
    for key, value in (("sample_rate", rate), ("labels", labels and "\n".join(labels))):
        if value:
            proto.metadata_props.add(key=key, value=str(value))
    return _load(proto, tmp_path)


@pytest.fixture
def state_model(tmp_path):
    return _load(two_inputs_and_state(), tmp_path)


# -- SampleSet ------------------------------------------------------------------------------
def test_sample_set_split_subset_and_labels():
    s = SampleSet({"x": np.arange(10.0).reshape(10, 1)}, labels=list(range(10)), classes=["a"])
    calib, held = s.split(0.3)
    assert len(calib) == 3 and len(held) == 7
    assert sorted(calib.names + held.names) == s.names
    assert held.classes == ["a"] and held.label_array.dtype == np.int64
    np.testing.assert_array_equal(held.inputs["x"][:, 0], held.label_array)
    assert SampleSet({"x": np.zeros((2, 1))}, labels=["ab", "c"]).label_array is None  # strings
    with pytest.raises(DataError, match="both per-sample and fixed") as err:
        SampleSet({"x": np.zeros((2, 1))}, fixed={"x": np.zeros(1)})
    one_line(err)


def test_feeds_put_samples_on_each_batch_axis(state_model):
    a = np.arange(20, dtype=np.float32).reshape(5, 4)
    h = np.arange(6, dtype=np.float32).reshape(2, 1, 3)
    feeds = list(sample_feeds(SampleSet({"a": a, "b": -a}, fixed={"h": h}), state_model, 2))
    assert [n for _, n in feeds] == [2, 2, 1]
    first = feeds[0][0]
    np.testing.assert_array_equal(first["a"], a[:2])
    assert first["h"].shape == (2, 2, 3)  # the state repeated along its batch axis 1
    np.testing.assert_array_equal(first["h"][:, 1], h[:, 0])


def test_a_fixed_batch_fills_the_last_pass(tmp_path):
    m = _load(reshape_to_one_row(), tmp_path)
    feeds = list(sample_feeds(SampleSet({"x": np.ones((3, 2, 2))}), m, 8))
    assert [(f["x"].shape, n) for f, n in feeds] == [((1, 2, 2), 1)] * 3


def test_calibration_data_by_model(tmp_path, state_model):
    wave = _waveform_model(tmp_path)
    calib = calibration_data(wave, SampleSet({"x": np.ones((3, 1, 800))}))
    assert isinstance(calib, np.ndarray) and calib.shape == (3, 1, 800) and calib.dtype == np.float32
    a = np.zeros((3, 4), np.float32)
    calib = calibration_data(state_model, SampleSet({"a": a, "b": a}, fixed={"h": np.zeros((2, 1, 3))}))
    assert sorted(calib) == ["a", "b", "h"]


def test_the_passes_refuse_a_calibration_they_cannot_use(tmp_path, state_model):
    from edgeopt.errors import PassError
    from edgeopt.passes.base import check_calibration

    a = np.zeros((3, 4), np.float32)
    calib = calibration_data(state_model, SampleSet({"a": a, "b": a}, fixed={"h": np.zeros((2, 1, 3))}))
    with pytest.raises(PassError, match="calibrates single-input models.*int8-dynamic or fp16") as err:
        check_calibration(state_model, calib, "int8-static")
    one_line(err)
    nobatch = _load(no_batch_axis(), tmp_path)
    with pytest.raises(PassError, match="input 'x' .* has no batch axis") as err:
        check_calibration(nobatch, np.zeros((3, 4), np.float32), "int8-static")
    one_line(err)
    ok = check_calibration(_waveform_model(tmp_path), np.ones((3, 1, 800)), "int8-static")
    assert ok.shape == (3, 1, 800) and ok.dtype == np.float32


# -- .npy / .npz folders ----------------------------------------------------------------------
def test_npz_folder_with_a_fixed_state_and_json_labels(tmp_path, state_model):
    root = tmp_path / "samples"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in (1, 2, 10):
        np.savez(root / f"s{i}.npz", a=rng.standard_normal(4), b=rng.standard_normal((1, 4)))  # both forms
    np.savez(root / "fixed.npz", h=np.ones((2, 1, 3)))
    (root / "labels.json").write_text(json.dumps({"s1": [0.5, 1.0], "s2": [1, 2], "s10": [3, 4]}))
    (root / "README.txt").write_text("not a sample")
    s = load_sample_folder(root, state_model)
    assert s.names == ["s1", "s2", "s10"]  # natural order
    assert s.inputs["a"].shape == (3, 4) and s.inputs["b"].dtype == np.float32
    assert s.fixed["h"].shape == (2, 1, 3)
    np.testing.assert_allclose(s.label_array, [[0.5, 1.0], [1, 2], [3, 4]])
    y, = predict_outputs(state_model, "ort", s)
    np.testing.assert_allclose(y, (s.inputs["a"] + s.inputs["b"]) @ TINY_W + 2.0, rtol=1e-5, atol=1e-5)


def test_npy_folder_with_class_subfolders_and_labels_npy(tmp_path):
    m = _waveform_model(tmp_path, labels=["quiet", "loud"])
    root = tmp_path / "by_class"
    for cls, level in (("loud", 1.0), ("quiet", 0.1)):
        (root / cls).mkdir(parents=True)
        for i in range(2):
            np.save(root / cls / f"{i}.npy", np.full((1, 800), level, np.float32))
    s = load_sample_folder(root, m)
    assert s.classes == ["quiet", "loud"]  # the model's label order, not the folders'
    assert s.labels == [1, 1, 0, 0] and s.names[0] == "loud/0"
    flat = tmp_path / "flat"
    flat.mkdir()
    for i in range(3):
        np.save(flat / f"{i}.npy", np.zeros(800, np.float32).reshape(1, 800))
    np.save(flat / "labels.npy", np.array([2, 0, 1]))
    assert load_sample_folder(flat, m).labels == [2, 0, 1]


def _bad(tmp_path, files: dict, model):
    root = tmp_path / "bad"
    root.mkdir(exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, dict):
            np.savez(path, **content)
        else:
            np.save(path, content)
    with pytest.raises(DataError) as err:
        load_sample_folder(root, model)
    return one_line(err)


@pytest.mark.parametrize("files, needle", [
    ({"a.npy": b"not numpy"}, "a.npy is not a readable .npy file"),
    ({"a.npz": b"PK broken"}, "a.npz is not a readable .npz file"),
    ({"a.npy": np.zeros((1, 799), np.float32)}, "holds 1x799 for input 'x', which takes 1x800 per sample"),
    ({}, None),  # a bool sample for a float input reads (see below)
    ({"a.npz": {"y": np.zeros((1, 800))}}, "holds y, not per-sample inputs"),
    ({"a.npy": np.zeros((1, 800)), "b/c.npy": np.zeros((1, 800))}, "next to class sub-folders"),
    ({"c/a.npy": np.zeros((1, 800))}, "sub-folder(s) c"),
    ({"a.npy": np.zeros((1, 800)), "labels.json": b"[1]"}, "holds a list, not an object"),
    ({"a.npy": np.zeros((1, 800)), "labels.json": b"{\"b\": 1}"}, "no label for 1 sample(s), e.g. 'a'"),
    ({"a.npy": np.zeros((1, 800)), "labels.npy": np.arange(2)}, "holds 2 rows for 1 samples"),
    ({"a.npy": np.zeros((1, 800)), "fixed.npz": {"h": np.zeros(3)}}, "holds 'h', not an input"),
    ({"notes.txt": b"x"}, "no sample file (.npy .npz)"),
])
def test_bad_sample_folders_get_one_line(tmp_path, files, needle):
    m = _waveform_model(tmp_path, labels=["quiet", "loud"])
    if needle is None:  # bool -> float32 is a safe cast: the folder reads
        root = tmp_path / "ok"
        root.mkdir()
        np.save(root / "a.npy", np.zeros((1, 800), bool))
        assert load_sample_folder(root, m).inputs["x"].dtype == np.float32
        return
    assert needle in _bad(tmp_path, files, m)


def test_float_samples_for_an_integer_input_are_refused(tmp_path):
    from onnx import TensorProto, helper

    proto = tiny_model([helper.make_node("Cast", ["ids"], ["y"], to=TensorProto.FLOAT)],
                       [("ids", TensorProto.INT64, [None, 3])], [("y", TensorProto.FLOAT, [None, 3])])
    m = _load(proto, tmp_path)
    assert "holds float64 for input 'ids', which takes int64" in _bad(tmp_path, {"a.npy": np.zeros(3)}, m)


def test_a_npy_file_for_a_model_with_several_inputs_is_refused(tmp_path, state_model):
    msg = _bad(tmp_path, {"a.npy": np.zeros(4)}, state_model)
    assert "is one array" in msg and "numpy.savez" in msg
    msg = _bad(tmp_path, {"a.npy": np.zeros(4), "x.npz": {"a": np.zeros(4)}}, state_model)
    assert "no array for input(s) b, h" in msg or "is one array" in msg


def test_a_missing_folder_and_a_file(tmp_path, state_model):
    with pytest.raises(DataError, match="not found") as err:
        load_sample_folder(tmp_path / "nope", state_model)
    one_line(err)
    f = tmp_path / "f.npy"
    np.save(f, np.zeros(3))
    with pytest.raises(DataError, match="is a file, not a folder") as err:
        load_sample_folder(f, state_model)
    one_line(err)


# -- audio -----------------------------------------------------------------------------------
def _tone(freq, seconds, rate, amp=0.5):
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


@pytest.mark.parametrize("ext", [".wav", ".flac"])
def test_audio_round_trip_resample_cut_and_pad(tmp_path, ext):
    path = write_audio(tmp_path / f"tone{ext}", _tone(440, 0.5, 8000), 8000)
    up = read_audio(path, 16000, 16000)  # 0.5 s at 8 kHz -> 8000 samples at 16 kHz, then silence
    assert up.shape == (16000,) and up.dtype == np.float32
    assert np.abs(up[8100:]).max() == 0.0
    # The resampled tone is still 440 Hz: its spectrum peaks there (1 Hz bins over 1 s).
    spectrum = np.abs(np.fft.rfft(up[:8000], n=16000))
    assert abs(int(spectrum.argmax()) - 440) <= 1
    np.testing.assert_allclose(np.abs(up[:8000]).max(), 0.5, atol=2e-3)  # 16-bit PCM, filter ripple
    cut = read_audio(path, 8000, 1000)
    np.testing.assert_allclose(cut, _tone(440, 0.5, 8000)[:1000], atol=1 / 32768 + 1e-6)


def test_stereo_is_mixed_to_mono(tmp_path):
    import soundfile

    left, right = _tone(300, 0.1, 8000), np.zeros(800, np.float32)
    soundfile.write(tmp_path / "st.wav", np.stack([left, right], 1), 8000, subtype="FLOAT")
    np.testing.assert_allclose(read_audio(tmp_path / "st.wav", 8000, 800), left / 2, atol=1e-6)


def test_audio_folder_at_the_models_rate_with_class_labels(tmp_path):
    m = _waveform_model(tmp_path, length=800, rate=8000, labels=["low", "high"])
    for cls, freq in (("low", 200), ("high", 2000)):
        for i in range(2):
            write_audio(tmp_path / "clips" / cls / f"{i}.wav", _tone(freq, 0.2, 16000), 16000)
    (tmp_path / "clips" / "notes.txt").write_text("x")
    s = load_audio_folder(tmp_path / "clips", m)
    # Sub-folders in natural order; their indices are the model's labels' positions.
    assert s.inputs["x"].shape == (4, 1, 800) and s.labels == [1, 1, 0, 0]
    assert s.names == ["high/0", "high/1", "low/0", "low/1"] and s.classes == ["low", "high"]
    assert load_inputs(tmp_path / "clips", m).names == s.names
    y, = predict_outputs(m, "ort", s)
    np.testing.assert_allclose(y[:, 0], s.inputs["x"].mean(axis=(1, 2)), atol=1e-6)


@pytest.mark.parametrize("content, needle", [
    (b"RIFF not really", "is not a readable audio file"),
    (b"", "is not a readable audio file"),
])
def test_bad_audio_files_get_one_line(tmp_path, content, needle):
    m = _waveform_model(tmp_path)
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "broken.wav").write_bytes(content)
    with pytest.raises(DataError, match=needle) as err:
        load_audio_folder(tmp_path / "clips", m)
    assert "broken.wav" in one_line(err)


def test_audio_for_a_model_that_takes_no_waveform_is_refused(tmp_path, state_model):
    write_audio(tmp_path / "clips" / "a.wav", _tone(440, 0.1, 16000), 16000)
    with pytest.raises(DataError, match="audio files feed one waveform input") as err:
        load_audio_folder(tmp_path / "clips", state_model)
    one_line(err)


def test_folder_kind_tells_images_samples_and_audio_apart(tmp_path):
    from PIL import Image

    (tmp_path / "img" / "cat").mkdir(parents=True)
    Image.new("RGB", (4, 4)).save(tmp_path / "img" / "cat" / "a.png")
    (tmp_path / "npy").mkdir()
    np.save(tmp_path / "npy" / "a.npy", np.zeros(3))
    write_audio(tmp_path / "wav" / "a.flac", np.zeros(10), 16000)
    assert [folder_kind(tmp_path / k) for k in ("img", "npy", "wav")] == ["images", "samples", "audio"]
    np.save(tmp_path / "img" / "cat" / "b.npy", np.zeros(3))
    with pytest.raises(DataError, match="mixes images and samples files") as err:
        folder_kind(tmp_path / "img")
    one_line(err)
