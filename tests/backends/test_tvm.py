"""The tvm backend beyond the conformance template: disk cache, tuning flag, threads, errors.

Every test compiles into its own cache folder (``EDGEOPT_CACHE`` -> tmp_path), so a
library cached by an earlier run can never make a compile test pass by loading instead.
"""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgeopt.backends import registry
from edgeopt.errors import BackendUnavailable, EdgeoptError, ShapeError
from edgeopt.shapes import InputSpec
from edgeopt.model import Model
from edgeopt.load import load_model

from support import one_line

tvm_backend = pytest.importorskip("edgeopt.backends.tvm")
tvm_session = pytest.importorskip("edgeopt.backends.tvm.session")
if registry.get("tvm").available() is not None:
    pytest.skip(registry.get("tvm").available(), allow_module_level=True)

# Same bound as tests/test_backends.py (fp32 reorderings, not fp16/bf16 or real bugs).
RTOL_RANGE = 3e-4
ATOL = 1e-6


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    monkeypatch.delenv(tvm_backend.TRIALS_ENV, raising=False)
    return tmp_path / "tvm"


def _assert_close(got: list[np.ndarray], want: list[np.ndarray]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        assert float(np.abs(g.astype(np.float64) - w).max()) <= RTOL_RANGE * float(np.ptp(w)) + ATOL


def _tiny_conv() -> Model:
    """Conv 3->4 (3x3, pad 1) + Relu on 16x16: two kernels, compiled in about a second."""
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
             numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "b")]
    nodes = [helper.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 16, 16])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, 16, 16])], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    proto.ir_version = 8
    return Model(proto=proto, inputs=[InputSpec("x", (1, 3, 16, 16))], task="other",
                 source="tiny-conv")


def _reference(model: Model, feeds) -> list[np.ndarray]:
    return registry.get("reference").prepare(model, threads=1).run(feeds)


# -- correctness and the session's report ---------------------------------------------------
@pytest.mark.slow
def test_seednet_matches_the_reference_untuned_at_batch_1_and_2() -> None:
    model = load_model("zoo:seednet")
    session = registry.get("tvm").prepare(model, threads=1)
    assert (session.backend, session.tuned, session.tune_trials) == ("tvm", False, 0)
    for batch in (1, 2):
        feeds = model.example_feeds(batch, seed=batch)
        _assert_close(session.run(feeds), _reference(model, feeds))
    assert [b.shapes[0][0] for b in session.builds] == [1, 2]
    assert all(b.source == "compiled" and b.tune is None for b in session.builds)
    assert '"kind":"llvm"' in session.target and '"mcpu"' in session.target


def test_untuned_by_default_and_trials_from_the_environment(monkeypatch) -> None:
    assert tvm_backend.trials_from_env() == 0
    monkeypatch.setenv(tvm_backend.TRIALS_ENV, "12")
    assert tvm_backend.trials_from_env() == 12
    monkeypatch.setenv(tvm_backend.TRIALS_ENV, "many")
    with pytest.raises(BackendUnavailable) as info:
        registry.get("tvm").prepare(_tiny_conv(), threads=1)
    assert tvm_backend.TRIALS_ENV in str(info.value) and "\n" not in str(info.value)


# -- disk cache ------------------------------------------------------------------------------
def test_second_prepare_loads_the_cached_library_instead_of_compiling(own_cache, monkeypatch) -> None:
    model = _tiny_conv()
    feeds = model.example_feeds(1)
    first = tvm_backend.TvmBackend().prepare(model, threads=1)
    (build,) = first.builds
    assert build.source == "compiled" and build.path.startswith(str(own_cache))
    assert sorted(p.suffix for p in own_cache.iterdir()) == [".json", ".sha256", ".so"]  # no temp left

    def no_compile(self, shapes):
        raise AssertionError("compiled although the library is cached")

    monkeypatch.setattr(tvm_backend.TvmSession, "_compile", no_compile)
    second = tvm_backend.TvmBackend().prepare(model, threads=1)
    assert second.builds[0].source == "cache" and second.builds[0].path == build.path
    np.testing.assert_array_equal(second.run(feeds)[0], first.run(feeds)[0])
    _assert_close(second.run(feeds), _reference(model, feeds))


def test_a_cached_library_changed_since_it_was_written_is_refused(own_cache) -> None:
    model = _tiny_conv()
    (build,) = tvm_backend.TvmBackend().prepare(model, threads=1).builds
    assert stat.S_IMODE(own_cache.stat().st_mode) == 0o700
    lib = Path(build.path)
    raw = bytearray(lib.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    lib.write_bytes(bytes(raw))
    with pytest.raises(EdgeoptError) as info:
        tvm_backend.TvmBackend().prepare(model, threads=1)
    msg = one_line(info.value)
    assert str(lib) in msg and f"delete the folder {own_cache}" in msg
    assert lib.read_bytes() == bytes(raw), "the refused library is left for the user to look at"


def test_a_cached_library_without_a_manifest_is_compiled_again(own_cache) -> None:
    model = _tiny_conv()
    (build,) = tvm_backend.TvmBackend().prepare(model, threads=1).builds
    lib = Path(build.path)
    manifest = lib.with_name(lib.name + ".sha256")
    manifest.unlink()  # as an edgeopt before the manifests left it
    (again,) = tvm_backend.TvmBackend().prepare(model, threads=1).builds
    assert again.source == "compiled" and manifest.is_file()
    assert tvm_backend.TvmBackend().prepare(model, threads=1).builds[0].source == "cache"


def test_cache_key_separates_batch_trials_and_model() -> None:
    model = _tiny_conv()
    session = tvm_backend.TvmBackend(cache=False).prepare(model, threads=1)
    one, three = ((1, 3, 16, 16),), ((3, 3, 16, 16),)
    assert session.cache_path(one) is None  # cache=False
    key = session.cache_key(one)
    assert key == session.cache_key(one) and key != session.cache_key(three)
    session.tune_trials = 8  # the key reads the session's budget
    assert session.cache_key(one) != key


# -- threads ---------------------------------------------------------------------------------
def test_thread_count_is_read_back_from_the_runtime() -> None:
    model = _tiny_conv()
    one = tvm_backend.TvmBackend(cache=False).prepare(model, threads=1)
    two = tvm_backend.TvmBackend(cache=False).prepare(model, threads=2)
    # Sessions share the OS thread's pool: each run sets the pool to its own count.
    two.run(model.example_feeds(1))
    assert two.runtime_threads() == 2
    one.run(model.example_feeds(1))
    assert one.runtime_threads() == 1
    assert (one.threads, two.threads) == (1, 2)


# -- errors ----------------------------------------------------------------------------------
def test_a_model_tvm_cannot_import_gives_a_one_line_reason() -> None:
    graph = helper.make_graph(
        [helper.make_node("NoSuchOp", ["x"], ["y"])], "bad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model = Model(proto=proto, inputs=[InputSpec("x", (1, 2), layout="")], source="bad")
    with pytest.raises(BackendUnavailable) as info:
        tvm_backend.TvmBackend(cache=False).prepare(model, threads=1)
    msg = str(info.value)
    assert "\n" not in msg and "NoSuchOp" in msg and "use the ort backend" in msg


def test_feeds_that_do_not_fit_raise_shape_error() -> None:
    session = tvm_backend.TvmBackend(cache=False).prepare(_tiny_conv(), threads=1)
    with pytest.raises(ShapeError, match="takes \\['x'\\]"):
        session.run({"image": np.zeros((1, 3, 16, 16), np.float32)})
    with pytest.raises(ShapeError, match="fed 1x3x16x17 float32, the model takes Nx3x16x16"):
        session.run({"x": np.zeros((1, 3, 16, 17), np.float32)})
    with pytest.raises(ShapeError, match="float64"):
        session.run({"x": np.zeros((1, 3, 16, 16))})


def test_tuning_refuses_the_tvm_ffi_that_segfaults(monkeypatch) -> None:
    monkeypatch.setattr(tvm_session, "versions",
                        lambda: {"apache-tvm": "0.27.0.post1", "apache-tvm-ffi": "0.1.15.post2"})
    with pytest.raises(BackendUnavailable, match="apache-tvm-ffi>=0.1.14,<0.1.15"):
        tvm_backend.TvmBackend(tune_trials=4, cache=False).prepare(_tiny_conv(), threads=1)


# -- tuning ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_tiny_metaschedule_run_via_the_environment_is_reported_as_tuned(monkeypatch) -> None:
    """4 trials on the 2-kernel model through EDGEOPT_TVM_TRIALS (~10 s, mostly the
    measuring worker's start-up); the result must still match the reference."""
    monkeypatch.setenv(tvm_backend.TRIALS_ENV, "4")
    model = _tiny_conv()
    # How long tuning takes is this machine's load, not a property to assert here.
    session = registry.get("tvm").prepare(model, threads=1)
    assert (session.tuned, session.tune_trials) == (True, 4)
    tune = session.builds[0].tune
    assert tune is not None and tune.strategy == "replay-trace"
    assert 1 <= tune.tasks_tuned <= tune.tasks
    assert '"num-cores":1' in session.target
    feeds = model.example_feeds(2, seed=3)
    _assert_close(session.run(feeds), _reference(model, feeds))
    assert session.builds[1].tune is not None  # a new batch size is tuned too
