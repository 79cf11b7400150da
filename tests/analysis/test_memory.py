"""The memory a run needs, estimated before allocating, and the refusal of what does not fit."""

from __future__ import annotations

import onnx
import pytest

from edgeopt.analysis import memory
from edgeopt.analysis.profile import profile
from edgeopt.errors import ShapeError
from edgeopt.load import load_model
from hostile.harness import conv_model
from support import one_line


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(conv_model(), str(path))
    return load_model(str(path))


def test_the_estimate_scales_the_batch_1_peak(model):
    one = profile(model, batch=1).peak_activation_bytes
    need = memory.run_memory(model, 8)
    assert need.input_bytes == 8 * 3 * 16 * 16 * 4
    assert need.activation_bytes == 8 * one and need.profiled
    assert need.total == model.size_bytes + 8 * one
    # The scaled peak bounds the peak counted at that batch.
    assert profile(model, batch=8).peak_activation_bytes <= need.activation_bytes


def test_a_batch_that_does_not_fit_is_refused_with_the_one_that_does(model, monkeypatch):
    per_item = profile(model, batch=1).peak_activation_bytes
    monkeypatch.setattr(memory, "available_memory", lambda: model.size_bytes + 100 * per_item)
    assert memory.check_fits(model, 100).total <= model.size_bytes + 100 * per_item
    with pytest.raises(ShapeError) as e:
        memory.check_fits(model, 101)
    msg = one_line(e)
    assert "at batch 101 needs at least" in msg and "x 101x3x16x16" in msg and "(batch 100 would fit)" in msg
    assert msg.endswith("use a smaller --batch or input --shape")


def test_inputs_that_alone_exceed_the_memory_are_refused_without_profiling(model, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 1 << 20)
    monkeypatch.setattr("edgeopt.analysis.profile.profile", lambda *a, **k: pytest.fail("profiled"))
    with pytest.raises(ShapeError) as e:
        memory.check_fits(model, 10**8, fix="use a smaller --max-batch")
    assert "peak activations" not in one_line(e) and "--max-batch" in str(e.value)


def test_no_check_when_the_memory_cannot_be_read(model, monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    assert memory.check_fits(model, 10**8).input_bytes == 10**8 * 3 * 16 * 16 * 4


def test_a_board_s_memory_is_checked_not_this_machine_s(model, monkeypatch):
    per_item = profile(model, batch=1).peak_activation_bytes
    monkeypatch.setattr(memory, "available_memory", lambda: 10**12)  # the workstation has plenty
    with pytest.raises(ShapeError) as e:
        memory.check_fits(model, 8, available=model.size_bytes + 4 * per_item, where="on the smallest rpi4 board")
    msg = one_line(e)
    assert "available on the smallest rpi4 board (batch 4 would fit)" in msg
    assert memory.check_fits(model, 4, available=model.size_bytes + 4 * per_item).batch == 4
