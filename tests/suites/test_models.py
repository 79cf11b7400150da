"""A suite's models: loaded and built once per run, each load and build charged to the budget."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from edgeopt._util.deadline import Deadline, FakeClock
from edgeopt.suites.catalog import Variant
from edgeopt.suites.models import ScaledEstimates, Skip, SuiteModels

FP32, INT8 = Variant("fp32", "fp32"), Variant("int8", "int8")


class _Zoo:
    """load() and build() on an injected clock: load_s per load, build_s per MB built."""

    def __init__(self, clock: FakeClock, load_s: float = 0.5, build_s_per_mb: float = 2.0, size: int = 2**20):
        self.clock, self.load_s, self.build_s_per_mb, self.size = clock, load_s, build_s_per_mb, size
        self.loads: list[str] = []
        self.builds: list[str] = []

    def load(self, ref: str):
        self.loads.append(ref)
        self.clock.advance(self.load_s)
        return SimpleNamespace(name=ref, size_bytes=self.size)

    def build(self, base, recipe: str):
        self.builds.append(base.name)
        self.clock.advance(self.build_s_per_mb * base.size_bytes / 2**20)
        return SimpleNamespace(name=f"{base.name}-{recipe}", size_bytes=base.size_bytes // 4)


def _models(zoo: _Zoo, budget_s: float, monkeypatch, **kw) -> tuple[SuiteModels, Deadline]:
    deadline = Deadline(budget_s, clock=zoo.clock)
    models = SuiteModels(zoo.load, deadline, ScaledEstimates(), **kw)
    monkeypatch.setattr(models, "_build", zoo.build)
    return models, deadline


def test_each_model_is_loaded_and_built_once_per_run(monkeypatch) -> None:
    zoo = _Zoo(FakeClock())
    models, _ = _models(zoo, 100.0, monkeypatch)
    for ref in ("zoo:a", "zoo:b"):  # wave 1-2 visits, then wave 3 revisits fp32 and int8
        models.get(ref, FP32)
    for ref in ("zoo:a", "zoo:b"):
        assert models.get(ref, FP32).name == ref
        assert models.get(ref, INT8).name == f"{ref}-int8"
    assert zoo.loads == ["zoo:a", "zoo:b"] and zoo.builds == ["zoo:a", "zoo:b"]
    assert zoo.clock.now == pytest.approx(2 * 0.5 + 2 * 2.0)


def test_a_spent_budget_loads_and_builds_nothing(monkeypatch) -> None:
    zoo = _Zoo(FakeClock())
    models, _ = _models(zoo, 10.0, monkeypatch)
    models.get("zoo:a", FP32)
    zoo.clock.advance(10.0)
    why = models.get("zoo:a", INT8)  # fp32 is cached, but the build is not started
    assert isinstance(why, Skip) and why == "skipped: the budget was spent before this cell"
    assert isinstance(models.get("zoo:b", FP32), Skip)
    assert zoo.loads == ["zoo:a"] and zoo.builds == []


def test_a_build_that_cannot_fit_is_skipped_from_the_runs_own_builds(monkeypatch) -> None:
    zoo = _Zoo(FakeClock(), build_s_per_mb=4.0)
    models, deadline = _models(zoo, 20.0, monkeypatch)
    models.get("zoo:a", INT8)  # 0.5 s load + 4 s build: now measured
    zoo.size = 2 * 2**20  # a model twice the size: its build should take ~8 s
    zoo.clock.advance(20.0 - 0.5 - 4.0 - 8.5)  # 8.5 s left: the load fits, the build (+1 s) does not
    why = models.get("zoo:b", INT8)
    assert isinstance(why, Skip) and "the build int8 takes ~8.0 s here" in why and "8.0 s left" in why
    assert zoo.loads == ["zoo:a", "zoo:b"] and zoo.builds == ["zoo:a"]
    assert deadline.remaining() == pytest.approx(8.0)


def test_least_recently_used_models_leave_the_cache_past_its_bytes(monkeypatch) -> None:
    zoo = _Zoo(FakeClock())
    models, _ = _models(zoo, 100.0, monkeypatch, cache_bytes=2 * 2**20)
    for ref in ("zoo:a", "zoo:b", "zoo:a", "zoo:c", "zoo:a", "zoo:b"):
        models.get(ref, FP32)
    # a and b fit; c pushed out b (a was used more recently), so b is loaded again
    assert zoo.loads == ["zoo:a", "zoo:b", "zoo:c", "zoo:b"]


def test_a_model_that_cannot_be_built_is_a_reason_not_a_skip(monkeypatch) -> None:
    from edgeopt.errors import EdgeoptError

    zoo = _Zoo(FakeClock())
    models, _ = _models(zoo, 100.0, monkeypatch)

    def broken(base, recipe):
        raise EdgeoptError("int8 needs calibration data: pass --calibration")
    monkeypatch.setattr(models, "_build", broken)
    why = models.get("zoo:a", INT8)
    assert why == "zoo:a int8: int8 needs calibration data: pass --calibration" and not isinstance(why, Skip)


def test_scaled_estimates() -> None:
    est = ScaledEstimates()
    assert est.estimate("prepare ort", 10) is None and est.largest("load") is None
    est.record("prepare ort", 1000, 2.0)
    est.record("prepare ort", 4000, 1.0)
    assert est.estimate("prepare ort", 2000) == pytest.approx(4.0)  # the worst s/byte, scaled
    assert est.estimate("prepare ort", 1) == pytest.approx(1.0)  # never below the fastest step
    assert est.largest("prepare ort") == 2.0
