"""The optimizer's one builder: prefix memo, disk cache, and failures remembered by prefix."""

from __future__ import annotations

import pytest

from edgeopt.errors import PassError
from edgeopt.load import load_model
from edgeopt.optimizer import builder as builder_mod
from edgeopt.optimizer.builder import ModelBuilder
from edgeopt.optimizer.recipes import Recipe


@pytest.fixture(scope="module")
def seednet():
    return load_model("zoo:seednet")


def test_a_failed_prefix_fails_every_recipe_built_on_it(seednet, tmp_path):
    b = ModelBuilder(seednet, calibration=None, cache_dir=tmp_path)
    with pytest.raises(PassError, match="pass prune failed"):
        b.build(Recipe(prune=0.5))  # pruning needs calibration images
    assert b.known_failure(Recipe(prune=0.5, precision="int8-nncf")).startswith("pass prune failed")
    assert b.known_failure(Recipe(precision="fp16")) is None
    # Another process on the same cache knows it too, without building anything.
    other = ModelBuilder(seednet, calibration=None, cache_dir=tmp_path)
    assert other.known_failure(Recipe(prune=0.5)).startswith("pass prune failed")
    assert other.estimate_seconds(Recipe(prune=0.5)) == pytest.approx(other._cost("distill"))


def test_a_library_exception_becomes_a_pass_failure(seednet, monkeypatch):
    def broken(name, model, config=None, **kwargs):
        raise IndexError("index 3 is out of bounds for axis 0 with size 3")

    monkeypatch.setattr(builder_mod, "run_pass", broken)
    b = ModelBuilder(seednet, calibration=None)
    with pytest.raises(PassError, match=r"pass cleanup failed: IndexError: index 3 is out of bounds"):
        b.build(Recipe(precision="fp16"))
    assert b.known_failure(Recipe(precision="fp16")).startswith("pass cleanup failed")


def test_prefixes_are_built_once(seednet, monkeypatch):
    calls = []
    real = builder_mod.run_pass

    def counting(name, model, config=None, **kwargs):
        calls.append(name)
        return real(name, model, config, **kwargs)

    monkeypatch.setattr(builder_mod, "run_pass", counting)
    b = ModelBuilder(seednet, calibration=None)
    b.build(Recipe(precision="fp16"))
    b.build(Recipe(cleanup=True))
    b.build(Recipe(precision="fp16"))
    assert calls == ["cleanup", "fp16"]


def test_recovery_gets_the_needed_agreement_and_its_summary_is_a_note(seednet, monkeypatch):
    import dataclasses

    from edgeopt._util.onnxgraph import copy_proto
    from edgeopt.passes.distill import NOTE_KEY

    configs = {}

    def fake(name, model, config=None, **kwargs):
        configs[name] = config
        proto = copy_proto(model.proto)
        if name == "distill":
            proto.metadata_props.add(key=NOTE_KEY, value="stopped at 9 s: held-out agreement 41% plateaued")
        return dataclasses.replace(model, proto=proto, passes=(*model.passes, name))

    monkeypatch.setattr(builder_mod, "run_pass", fake)
    b = ModelBuilder(seednet, calibration=None, need_agreement=99.0)
    b.build(Recipe(prune=0.5, precision="fp16"))
    assert configs["distill"].need_agreement == 99.0
    assert b.notes(Recipe(prune=0.5, precision="fp16")) == [
        "distillation stopped at 9 s: held-out agreement 41% plateaued"]
    assert b.notes(Recipe(prune=0.3)) == []  # not built
    assert b.notes(Recipe(precision="fp16")) == []  # nothing distilled
