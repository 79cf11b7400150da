"""Quantization-aware training as the optimizer's step after the fallback: when it is
tried (int8 fast but over the quality budget, the fallback did not fix it, int8 is the
cause), how many seconds it trains (from the time left, on an injected clock), and the
rows it leaves when it is not tried. Measurements are scripted; the decisions are real."""

from __future__ import annotations

import dataclasses

import optuna
import pytest

from edgeopt._util.deadline import FakeClock
from edgeopt.optimizer import builder as builder_mod
from edgeopt.optimizer.builder import ModelBuilder
from edgeopt.optimizer.fallback import fallback
from edgeopt.optimizer.objective import Limits, Objective, TrialFailed
from edgeopt.optimizer.qat_step import MIN_TRAIN_S, SHARE, proposals, qat_step, training_budget
from edgeopt.optimizer.recipes import Recipe, grid_recipes, parse_recipe
from edgeopt.optimizer.space import Point, SearchSpace
from edgeopt.optimizer.study import records

NNCF = Point(precision="int8-nncf", backend="openvino")
SPACE = SearchSpace(float_layers=(0, 1, 2))


class _Scripted:
    """An objective stand-in: each label's (ms, drop) comes from a table; a trial marked
    ``not_tried`` is stopped with its reason, as the real objective does."""

    def __init__(self, table, max_drop=1.0):
        self.table, self.max_drop, self.calls = table, max_drop, []

    def __call__(self, trial):
        point = Point(**trial.user_attrs["point"])
        if trial.user_attrs.get("not_tried"):
            trial.set_user_attr("reason", trial.user_attrs["not_tried"])
            raise optuna.TrialPruned()
        self.calls.append((point, dict(trial.user_attrs)))
        ms, drop = self.table[point.recipe_name + "@" + point.backend]
        for k, v in {"per_image_ms": ms, "p50_ms": ms, "latency_ms": ms, "drop": drop, "size_bytes": 1000,
                     "constraints": [drop - self.max_drop, -1.0, -1.0], "label": point.label}.items():
            trial.set_user_attr(k, v)
        return ms, drop


class _Builder:
    """What qat_step asks of the builder: the pass's cost beyond training (20 s here)."""

    train_seconds = 60.0  # --train-seconds

    def __init__(self):
        self.training = {}

    def estimate_seconds(self, recipe):
        return self.training_seconds(recipe) + 20.0

    def training_seconds(self, recipe):
        return self.training.get(recipe, 60.0) if recipe.spec.trained else 0.0

    def set_training(self, recipe, seconds):
        self.training[recipe] = seconds


def _study(ev, points):
    study = optuna.create_study(directions=["minimize", "minimize"])
    for p in points:
        study.enqueue_trial(p.params(), user_attrs={"point": p.to_dict(), "origin": "grid"})
    study.optimize(ev, n_trials=len(points))
    return study


def _post(study, ev, space=SPACE, left=None, enabled=True):
    """The fallback, then the qat step, as the engine runs them after the trials."""
    def run(p, attrs=None):
        study.enqueue_trial(p.params(), user_attrs={"origin": "step", "point": p.to_dict(), **(attrs or {})})
        study.optimize(ev, n_trials=1)

    log = fallback(lambda: records(study), run, space, max_drop=1.0, time_left=lambda: True)
    return log + qat_step(lambda: records(study), run, space, max_drop=1.0, builder=_Builder(),
                          left=lambda: left, eval_cost=lambda: 5.0, enabled=enabled)


def test_qat_is_tried_when_int8_is_fast_over_budget_and_the_fallback_did_not_fix_it():
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0), "int8-nncf-1fp@openvino": (1.1, 2.0),
                    "int8-nncf-2fp@openvino": (1.2, 1.5), "qat@openvino": (1.0, 0.5)})
    study = _study(ev, [Point(), NNCF])
    log = _post(study, ev)
    steps = [(p.label, attrs.get("origin"), attrs.get("train_seconds")) for p, attrs in ev.calls[2:]]
    # Both fallback steps first (neither fits), then qat on the runtime its parent was fast on,
    # trained for --train-seconds (60 s here; no time budget), measured like any trial, and chosen.
    assert steps == [("int8-nncf-1fp@openvino t1 b1", "step", None), ("int8-nncf-2fp@openvino t1 b1", "step", None),
                     ("qat@openvino t1 b1", "step", 60.0)]
    assert any(line.startswith("qat for int8-nncf@openvino t1 b1 1.00 ms (drop 3.00)") and
               line.endswith("training 60 s") for line in log)
    assert log[-1] == "  qat@openvino t1 b1: drop 0.50 points, 1.00 ms -> within budget"
    qat = records(study)[-1]
    assert qat.label == "qat@openvino t1 b1" and qat.feasible and qat.attrs["train_seconds"] == 60.0


def test_qat_is_not_tried_when_int8_is_not_faster_or_the_fallback_fixed_it():
    # int8 over the budget but not 5% faster than the best feasible trial: nothing to win.
    # (The fallback still tries a step: it has no such margin.)
    ev = _Scripted({"fp32@ort": (1.02, 0.0), "int8-nncf@openvino": (1.0, 3.0), "int8-nncf-1fp@openvino": (1.1, 1.5)})
    study = _study(ev, [Point(), NNCF])
    log = _post(study, ev)
    assert [p.recipe_name for p, _ in ev.calls] == ["fp32", "int8-nncf", "int8-nncf-1fp"]
    assert log[-1] == "  no longer faster than the best feasible trial: stopping"
    # The fallback found a mixed-precision model that fits and is within 5% of whole int8:
    # qat could not be named faster than it.
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0), "int8-nncf-1fp@openvino": (1.04, 0.5)})
    study = _study(ev, [Point(), NNCF])
    log = _post(study, ev)
    assert [p.recipe_name for p, _ in ev.calls] == ["fp32", "int8-nncf", "int8-nncf-1fp"]
    assert not any(line.startswith("qat") for line in log)
    # ... but one that fits 10% slower than whole int8 leaves qat something to win.
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0), "int8-nncf-1fp@openvino": (1.1, 0.5),
                    "qat@openvino": (1.0, 2.5)})
    study = _study(ev, [Point(), NNCF])
    log = _post(study, ev)
    assert [p.recipe_name for p, _ in ev.calls][-1] == "qat"
    assert log[-1].startswith("  qat@openvino t1 b1: drop 2.50 points, 1.00 ms (")


def test_qat_is_not_tried_when_the_float_recipe_breaks_the_budget():
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "pruned-50+kd@ort": (1.0, 4.0), "pruned-50+kd/int8-nncf@openvino": (0.5, 4.2)})
    study = _study(ev, [Point(), Point(prune=0.5), dataclasses.replace(NNCF, prune=0.5)])
    log = _post(study, ev)
    assert len(ev.calls) == 3  # neither a fallback step nor qat
    assert log[-1] == ("qat not tried for pruned-50+kd/int8-nncf@openvino t1 b1: its fp32 version already drops "
                       "4.00, int8 is not the cause")


def test_qat_waits_for_the_fallback_and_can_be_turned_off():
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0)})
    study = _study(ev, [Point(), NNCF])
    wanted, log = proposals(records(study), SPACE, max_drop=1.0, builder=_Builder(), left=None, eval_cost=5.0)
    assert wanted == [] and log == ["qat waits: the fallback has steps left for int8-nncf@openvino t1 b1"]
    # No fallback steps in the space: qat is next at once.
    wanted, _ = proposals(records(study), SearchSpace(float_layers=(0,)), max_drop=1.0, builder=_Builder(),
                          left=None, eval_cost=5.0)
    assert [p.point.label for p in wanted] == ["qat@openvino t1 b1"] and wanted[0].parents == ("int8-nncf@openvino t1 b1",)
    ev.table.update({"int8-nncf-1fp@openvino": (1.1, 2.0), "int8-nncf-2fp@openvino": (1.2, 1.5)})
    log = _post(study, ev, enabled=False)
    assert log[-1] == "qat off: qat@openvino t1 b1 not tried (--qat turns it on)" and len(ev.calls) == 4


def test_training_seconds_come_from_the_time_left():
    # min(default, SHARE x (left - overhead - timing)), at least MIN_TRAIN_S, else not tried.
    assert training_budget(None, overhead=20, timing=5, default=60) == (60, "")
    assert training_budget(500, overhead=20, timing=5, default=60) == (60, "")
    assert training_budget(85, overhead=20, timing=5, default=60) == (SHARE * 60, "")
    need = 20 + 5 + MIN_TRAIN_S / SHARE
    assert training_budget(need, overhead=20, timing=5, default=60) == (MIN_TRAIN_S, "")
    assert training_budget(need - 1, overhead=20, timing=5, default=60) == (
        None, f"not tried: qat needs ~{need:.0f} s, {need - 1:.0f} s left")


def test_a_qat_that_does_not_fit_the_time_left_is_a_row_with_its_reason():
    # Through the real objective, on an injected clock: 40 s left cannot hold the pass's
    # 20 s overhead, 5 s of timing and 10 s of training at half the rest: a pruned row says so.
    clock = FakeClock(1000.0)
    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0)})
    study = _study(ev, [Point(), NNCF])

    class _NoBuild(_Builder):
        def known_failure(self, recipe):
            return None

        def build(self, recipe):
            raise RuntimeError(f"built with {self.training[recipe]:.1f} s of training")

    builder = _NoBuild()
    objective = Objective(builder, measurer=None, space=SearchSpace(float_layers=(0,)), limits=Limits(max_drop=1.0),
                          trials_end=1040.0, clock=clock)

    def run(p, attrs):
        study.enqueue_trial(p.params(), user_attrs={"origin": "qat", "point": p.to_dict(), **attrs})
        study.optimize(objective, n_trials=1, catch=(TrialFailed,))

    def step():
        return qat_step(lambda: records(study), run, SearchSpace(float_layers=(0,)), max_drop=1.0, builder=builder,
                        left=lambda: objective.trials_end - clock(), eval_cost=lambda: 5.0)

    log = step()
    row = records(study)[-1]
    assert row.label == "qat@openvino t1 b1" and row.state == "pruned" and row.origin == "qat"
    assert row.reason == "not tried: qat needs ~45 s, 40 s left" and builder.training == {}
    assert log[-1] == "  qat@openvino t1 b1: pruned (not tried: qat needs ~45 s, 40 s left)"
    # Once tried (any state), it is not proposed again; a fresh study with 85 s left trains
    # 30 s (half of 85 - 20 - 5), and the objective builds it with those seconds.
    before = len(records(study))
    step()
    assert len(records(study)) == before
    study = _study(ev, [Point(), NNCF])
    objective.trials_end = 1085.0
    step()
    row = records(study)[-1]
    assert row.state == "failed" and row.reason == "RuntimeError: built with 30.0 s of training"
    assert row.attrs["train_seconds"] == 30.0 and builder.training == {Recipe(precision="qat"): 30.0}


def test_the_builder_trains_qat_for_the_seconds_it_was_given(monkeypatch):
    from edgeopt._util.onnxgraph import copy_proto
    from edgeopt.load import load_model
    from edgeopt.passes.qat import NOTE_KEY

    configs = []

    def fake(name, model, config=None, **kwargs):
        configs.append((name, config, kwargs.get("labels")))
        proto = copy_proto(model.proto)
        proto.metadata_props.add(key=NOTE_KEY, value="held-out agreement 90% -> 97% in 12 s")
        return dataclasses.replace(model, proto=proto, passes=(*model.passes, name))

    monkeypatch.setattr(builder_mod, "run_pass", fake)
    import numpy as np

    labels = np.zeros(4, dtype=np.int64)
    b = ModelBuilder(load_model("zoo:seednet"), calibration=None, labels=labels)
    qat = parse_recipe("qat")
    assert qat == Recipe(precision="qat") and qat.name == "qat" and not qat.cleanup
    assert qat not in grid_recipes() and "qat" not in SearchSpace().precisions
    assert b.training_seconds(qat) == 60.0 and b.training_seconds(Recipe(precision="int8-ort")) == 0.0
    b.set_training(qat, 12.5)
    guess = b.estimate_seconds(qat) - 12.5  # the pass's overhead, guessed before any build
    assert guess > 0
    b.build(qat)
    (name, config, given), = configs
    assert name == "qat" and config.seconds == 12.5 and given is labels  # labels: trained with them
    assert b.notes(qat) == ["qat held-out agreement 90% -> 97% in 12 s"]
    assert b.estimate_seconds(qat) == 0.0  # built
    assert b.estimate_seconds(Recipe(prune=0.3, precision="qat")) == pytest.approx(
        b.estimate_seconds(Recipe(prune=0.3)) + 60.0 + b._cost("qat overhead"))


def test_the_search_enqueues_qat_as_soon_as_its_trials_call_for_it():
    # engine._qat_early runs after each trial of a sampled strategy: the qat trial is
    # enqueued once, trained within the trials' time left on the run's clock.
    from types import SimpleNamespace

    from edgeopt.optimizer import engine

    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0), "int8-nncf-1fp@openvino": (1.1, 2.0),
                    "int8-nncf-2fp@openvino": (1.2, 1.5)})
    study = _study(ev, [Point(), NNCF, dataclasses.replace(NNCF, float_layers=1)])
    clock = FakeClock(1000.0)
    objective = SimpleNamespace(measurer=SimpleNamespace(too_small=""), trials_end=1100.0, eval_cost=5.0,
                                limits=Limits(max_drop=1.0))
    run = SimpleNamespace(post=False, config=SimpleNamespace(qat=True), objective=objective, clock=clock,
                          strategy=SimpleNamespace(space=SPACE), builder=_Builder(), qat_queued=set())

    def waiting():
        return [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.WAITING]

    engine._qat_early(run, study)
    assert waiting() == []  # the fallback's 2fp step is still to come
    study.enqueue_trial(dataclasses.replace(NNCF, float_layers=2).params(),
                        user_attrs={"point": dataclasses.replace(NNCF, float_layers=2).to_dict(), "origin": "fallback"})
    study.optimize(ev, n_trials=1)
    engine._qat_early(run, study)
    engine._qat_early(run, study)  # once only
    (queued,) = waiting()
    assert queued.user_attrs["origin"] == "qat" and queued.user_attrs["point"]["precision"] == "qat"
    assert queued.user_attrs["train_seconds"] == pytest.approx(SHARE * (100.0 - 20.0 - 5.0))
    run.post, run.qat_queued = True, set()  # after the trials, the post-step decides instead
    engine._qat_early(run, study)
    assert len(waiting()) == 1


def test_trials_the_search_enqueued_but_did_not_run_are_run_before_the_post_steps():
    # A qat trial enqueued right before the trials stopped would otherwise be run by the
    # fallback's first post-step trial in place of its own point.
    from types import SimpleNamespace

    from edgeopt.optimizer import engine

    ev = _Scripted({"fp32@ort": (2.0, 0.0), "int8-nncf@openvino": (1.0, 3.0), "qat@openvino": (1.0, 0.5)})
    ev.best, ev.trials_end, ev.idle = None, None, 0
    study = _study(ev, [Point(), NNCF])
    qat = Point(precision="qat", backend="openvino")
    study.enqueue_trial(qat.params(), user_attrs={"origin": "qat", "point": qat.to_dict(), "train_seconds": 30.0})
    bar = SimpleNamespace(advance=lambda: None, describe=lambda text: None)
    run = SimpleNamespace(study=study, objective=ev, deadline=None, strategy=SimpleNamespace(exhaustive=True),
                          config=SimpleNamespace(budget=None), clock=FakeClock(0.0))
    engine._drain(run, bar)
    last = records(study)[-1]
    assert last.label == "qat@openvino t1 b1" and last.feasible and last.attrs["train_seconds"] == 30.0
    engine._drain(run, bar)  # nothing left waiting: no trial
    assert len(records(study)) == 3
    # The post-step then has nothing to try, and says what qat did during the trials.
    log = qat_step(lambda: records(study), None, SearchSpace(float_layers=(0,)), max_drop=1.0, builder=_Builder(),
                   left=lambda: None, eval_cost=lambda: 5.0)
    assert log == ["qat@openvino t1 b1: drop 0.50 points, 1.00 ms -> within budget (during the trials)"]
