"""The torch backends that choose the convolution algorithm: oneDNN, NNPACK, im2col + GEMM.

Each backend must really take its path: the tests read the aten kernels from a
``torch.profiler`` trace (the session's ``conv_paths``, and a second trace of a batch-3
run made here), check the counts against the architectures, and compare outputs with a
float64 copy of the module (an oracle that no fp32 conv algorithm shares).
"""

from __future__ import annotations

import copy
from functools import cache

import numpy as np
import pytest
import torch
from torch import nn

from edgeopt.backends import registry, torch_conv
from edgeopt.backends.torch_conv import NNPACK_KERNEL, ONEDNN_KERNEL
from edgeopt.errors import BackendUnavailable
from edgeopt.model import Model, from_torch
from edgeopt.load import load_model

from support import one_line

SLOW = "aten::_slow_conv2d_forward"
DILATED = "aten::slow_conv_dilated2d"
BACKENDS = ["torch-onednn", "torch-nnpack", "torch-im2col"]
MODELS = ["seednet", "mobilenetv2-digits"]

# Real counts, from the architectures: seednet has 3 plain convs (7x7, 6x6, 5x5).
# mobilenetv2-digits has 25 Conv2d: the 3x3 stem, the first block's depthwise + 1x1
# projection, 7 blocks of 1x1 expansion + 3x3 depthwise + 1x1 projection, and the last
# 1x1; 8 are depthwise, which NNPACK cannot run (no groups), so they take im2col.
EXPECTED_PATHS = {
    ("seednet", "torch-onednn"): {ONEDNN_KERNEL: 3},
    ("seednet", "torch-nnpack"): {NNPACK_KERNEL: 3},
    ("seednet", "torch-im2col"): {SLOW: 3},
    ("mobilenetv2-digits", "torch-onednn"): {ONEDNN_KERNEL: 25},
    ("mobilenetv2-digits", "torch-nnpack"): {NNPACK_KERNEL: 17, SLOW: 8},
    ("mobilenetv2-digits", "torch-im2col"): {SLOW: 25},
}

# As in test_backends: fp32 algorithms reorder sums (NNPACK's Winograd/FFT transforms
# more than the others: <= 1.1e-6 of the output range on these models, measured against
# float64); 3e-4 of the range still catches a wrong padding or stride, which moves
# outputs by O(1).
RTOL_RANGE = 3e-4
ATOL = 1e-6


@pytest.fixture(scope="module", autouse=True)
def _restore_torch_state():
    """Thread count and conv switches are process-global: put them back for later tests."""
    threads = torch.get_num_threads()
    mkldnn, nnpack = _switches()
    yield
    torch.set_num_threads(threads)
    torch.backends.mkldnn.set_flags(_enabled=mkldnn, _fp32_precision=None)
    torch.backends.nnpack.set_flags(nnpack)


def _switches() -> tuple[bool, bool]:
    """ATen's (oneDNN, NNPACK) convolution switches."""
    return torch._C._get_mkldnn_enabled(), torch._C._get_nnpack_enabled()


@cache
def _model(name: str) -> Model:
    return load_model(f"zoo:{name}")


def _snapshot(module: nn.Module) -> dict:
    """What a backend must not change: layout, classes, tensors, hooks, mode."""
    return {
        "repr": repr(module),
        "classes": [type(m) for m in module.modules()],
        "state": {k: v.clone() for k, v in module.state_dict().items()},
        "hooks": [len(m._forward_hooks) + len(m._forward_pre_hooks) for m in module.modules()],
        "training": [m.training for m in module.modules()],
    }


@cache
def _prepared(name: str) -> tuple[dict, dict]:
    """(snapshot of the model's module before any prepare, {backend: session at 1 thread})."""
    model = _model(name)
    before = _snapshot(model.torch_module)
    sessions = {b: registry.get(b).prepare(model, threads=1) for b in BACKENDS}
    return before, sessions


def _oracle(name: str, feeds: dict[str, np.ndarray]) -> np.ndarray:
    module = copy.deepcopy(_model(name).torch_module).double()
    with torch.no_grad():
        return module(torch.from_numpy(feeds["input"]).double()).numpy()


# -- the path each backend takes --------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_conv_paths_show_the_intended_kernel(name: str, backend: str) -> None:
    session = _prepared(name)[1][backend]
    want = EXPECTED_PATHS[(name, backend)]
    assert session.conv_paths == want
    n_convs = sum(isinstance(m, nn.Conv2d) for m in _model(name).torch_module.modules())
    assert sum(session.conv_paths.values()) == n_convs
    own = registry.get(backend).kernels
    assert session.path_share == pytest.approx(
        sum(n for k, n in want.items() if k in own) / n_convs)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_timed_runs_take_the_same_path_at_batch_3(name: str, backend: str) -> None:
    """The profile of prepare is at batch 1; ATen's own choice depends on the batch (NNPACK
    from 16, oneDNN's small-input rule), so check a later run at another batch size."""
    session = _prepared(name)[1][backend]
    paths = torch_conv._profile_conv_paths(session, _model(name).example_feeds(3))
    assert paths == EXPECTED_PATHS[(name, backend)]
    assert not torch.autograd._profiler_enabled()


def test_without_forcing_torch_picks_other_paths() -> None:
    """Why the layers are forced: with oneDNN on, ATen runs the stem and the 1x1 convs of
    mobilenetv2-digits at batch 1 on one thread with im2col; with oneDNN off, it takes
    NNPACK only from batch 16. (If this fails, torch changed its heuristics: revisit the
    module docstring of torch_conv.)"""
    mobilenet, seednet = _model("mobilenetv2-digits"), _model("seednet")
    session = registry.get("torch").prepare(mobilenet, threads=1)
    assert torch_conv._profile_conv_paths(session, mobilenet.example_feeds(1)) == {
        SLOW: 17, ONEDNN_KERNEL: 8}
    session = registry.get("torch").prepare(seednet, threads=1)
    with torch_conv.conv_flags(mkldnn=False, nnpack=True):
        assert torch_conv._profile_conv_paths(session, seednet.example_feeds(15)) == {SLOW: 3}
        assert torch_conv._profile_conv_paths(session, seednet.example_feeds(16)) == {
            NNPACK_KERNEL: 3}


# -- outputs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_float64_at_batch_1_and_3(name: str, backend: str) -> None:
    session = _prepared(name)[1][backend]
    for batch in (1, 3, 1):
        feeds = _model(name).example_feeds(batch, seed=batch)
        (got,) = session.run(feeds)
        want = _oracle(name, feeds)
        assert got.shape == want.shape and got.dtype == np.float32
        err = float(np.abs(got.astype(np.float64) - want).max())
        assert err <= RTOL_RANGE * float(np.ptp(want)) + ATOL, f"batch {batch}: {err:.3g}"


@pytest.mark.parametrize("name", MODELS)
def test_the_model_is_not_changed(name: str) -> None:
    before, sessions = _prepared(name)
    for session in sessions.values():
        session.run(_model(name).example_feeds(2))
    after = _snapshot(_model(name).torch_module)
    assert after["repr"] == before["repr"]
    assert after["classes"] == before["classes"]
    assert after["hooks"] == before["hooks"]
    assert after["training"] == before["training"]
    assert after["state"].keys() == before["state"].keys()
    assert all(torch.equal(after["state"][k], v) for k, v in before["state"].items())
    # The forcing backends run a copy whose layers changed class; im2col runs the module.
    for backend in ("torch-onednn", "torch-nnpack"):
        assert sessions[backend]._module is not _model(name).torch_module
    assert sessions["torch-im2col"]._module is _model(name).torch_module


def test_runs_restore_the_conv_switches_even_when_forward_fails() -> None:
    session = _prepared("seednet")[1]["torch-im2col"]
    before = _switches()
    session.run(_model("seednet").example_feeds(1))
    assert _switches() == before
    with pytest.raises(RuntimeError):
        session.run({"input": np.zeros((1, 3, 88, 88), np.float32)})
    assert _switches() == before
    assert torch._C._get_onednn_allow_tf32() is None or not torch._C._get_onednn_allow_tf32()


# -- refusals ---------------------------------------------------------------------------------
def _tiny(module: nn.Module, shape: tuple[int, ...], name: str) -> Model:
    return from_torch(module, torch.zeros(shape), source=name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_refuses_a_model_without_a_torch_module(backend: str) -> None:
    model = _model("seednet").derive(_model("seednet").proto, "test-pass")
    assert model.torch_module is None
    with pytest.raises(BackendUnavailable) as info:
        registry.get(backend).prepare(model, threads=1)
    msg = one_line(info.value)
    assert "did not come from PyTorch" in msg and "use the ort or openvino backend" in msg


@pytest.mark.parametrize("backend", BACKENDS)
def test_refuses_a_model_without_convolutions(backend: str) -> None:
    model = _tiny(nn.Sequential(nn.Flatten(), nn.Linear(16, 4)), (1, 1, 4, 4), "mlp")
    with pytest.raises(BackendUnavailable) as info:
        registry.get(backend).prepare(model, threads=1)
    msg = one_line(info.value)
    assert msg.startswith(f"{backend}: ") and "has no convolution" in msg
    assert "use the torch backend" in msg


def test_nnpack_refuses_when_no_conv_can_use_it_and_the_others_run_it() -> None:
    module = nn.Sequential(
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(),
        nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.ReLU(),
        nn.Conv2d(4, 8, 3, padding=2, dilation=2),
    )
    model = _tiny(module, (1, 4, 12, 12), "dw-dilated")
    with pytest.raises(BackendUnavailable) as info:
        registry.get("torch-nnpack").prepare(model, threads=1)
    assert one_line(info.value) == (
        "torch-nnpack: none of the 3 convolutions of dw-dilated can use NNPACK "
        "(2 depthwise, 1 dilated): use torch-onednn or torch-im2col")
    onednn = registry.get("torch-onednn").prepare(model, threads=1)
    assert onednn.conv_paths == {ONEDNN_KERNEL: 3} and onednn.path_share == 1.0
    # ATen's im2col family: the dilated conv has its own im2col + GEMM kernel.
    im2col = registry.get("torch-im2col").prepare(model, threads=1)
    assert im2col.conv_paths == {SLOW: 2, DILATED: 1} and im2col.path_share == 1.0


def test_nnpack_refuses_when_the_torch_build_lacks_it(monkeypatch) -> None:
    monkeypatch.setattr(torch.backends.nnpack, "is_available", lambda: False)
    backend = registry.get("torch-nnpack")
    assert "no NNPACK" in backend.available()
    with pytest.raises(BackendUnavailable, match="no NNPACK"):
        backend.prepare(_model("seednet"), threads=1)


# -- threads ----------------------------------------------------------------------------------
def test_nnpack_refuses_a_thread_count_its_pool_does_not_have() -> None:
    """torch sizes NNPACK's pool once per process (see torch_conv._nnpack_pool_threads)."""
    backend = registry.get("torch-nnpack")
    pool = torch_conv._nnpack_pool_threads or 1
    first = backend.prepare(_model("seednet"), threads=pool)
    assert torch_conv._nnpack_pool_threads == pool and first.nnpack_threads == pool
    other = 2 if pool == 1 else 1
    with pytest.raises(BackendUnavailable, match=f"thread pool has {pool} thread\\(s\\) in this process, not {other}"):
        backend.prepare(_model("seednet"), threads=other)
