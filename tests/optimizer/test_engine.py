"""The optimize engine: recipes, space, Pareto front, ISA check, fallback logic, a real short
search and a real short grid through the same engine."""

from __future__ import annotations

import math

import numpy as np
import optuna
import pytest

from edgeopt.bench.isa import int8_dot_product, int8_warning
from edgeopt._util.options import parse_duration, parse_size
from edgeopt.optimizer.workers import worker_command
from edgeopt.errors import EdgeoptError
from edgeopt.optimizer import engine
from edgeopt.optimizer.config import OptimizeConfig
from edgeopt.optimizer.fallback import fallback, next_step
from edgeopt.optimizer.objective import Limits, Objective, TrialFailed
from edgeopt.optimizer.pareto import dominates, pareto_front
from edgeopt.optimizer.recipes import PRECISIONS, Recipe, grid_recipes, parse_recipe
from edgeopt.optimizer.result import summary as result_summary
from edgeopt.optimizer.space import Point, SearchSpace, default_space, grid_points, hand_picked, in_space, suggest
from edgeopt.optimizer.strategies import Grid, Sampled, make_strategy
from edgeopt.optimizer.study import best, records


# -- space ---------------------------------------------------------------------------------
def test_point_canonical_form_merges_equal_models():
    # fp16 always cleans up; calibration and float layers only mean something for int8.
    assert Point(precision="fp16", cleanup=False) == Point(precision="fp16", cleanup=True)
    assert Point(precision="int8-ort").calibration == "minmax"
    assert Point(precision="int8-dynamic", float_layers=4).float_layers == 0
    assert Point(prune=0.0, prune_scope="sensitivity").prune_scope == "global"
    assert Point(precision="int8-nncf", float_layers=2).float_layers == 2


def test_point_labels_and_params_round_trip():
    p = Point(prune=0.5, prune_scope="sensitivity", precision="int8-ort", calibration="entropy",
              float_layers=2, backend="openvino", threads=1)
    assert p.recipe_name == "pruned-50s+kd/int8-ort-entropy-2fp"
    assert p.label == "pruned-50s+kd/int8-ort-entropy-2fp@openvino t1 b1"
    assert suggest(optuna.trial.FixedTrial(p.params()), SearchSpace()) == p
    assert Point(cleanup=True).recipe_name == "fp32-clean"


def test_in_space_and_validation():
    space = SearchSpace(precisions=("fp32", "int8-nncf"), backends=("ort",), threads=(2,))
    assert in_space(Point(backend="ort", threads=2), space)
    assert not in_space(Point(backend="openvino", threads=2), space)
    assert not in_space(Point(precision="int8-ort", backend="ort", threads=2), space)
    with pytest.raises(EdgeoptError, match="unknown precision"):
        SearchSpace(precisions=("int4",))
    with pytest.raises(EdgeoptError, match=r"\[0, 1\)"):
        SearchSpace(prune=(1.0,))
    with pytest.raises(EdgeoptError, match="empty"):
        SearchSpace(backends=())


def test_hand_picked_are_the_four_single_choices():
    labels = [p.label for p in hand_picked(2, 1, ("ort", "openvino"))]
    # The libraries' own defaults, as a user gets them (on the graph as given: no cleanup).
    assert labels == ["fp32@ort t2 b1", "fp32@openvino t2 b1", "int8-ort-defaults@ort t2 b1",
                      "int8-nncf-defaults@openvino t2 b1"]
    assert [p.label for p in hand_picked(1, 4, ("ort",))] == ["fp32@ort t1 b4", "int8-ort-defaults@ort t1 b4"]
    assert not hand_picked(1, 1, ("ort",))[1].cleanup


def test_default_space_batching():
    s = default_space(2, 1, ("ort",))
    assert s.threads == (1, 2) and s.batches == (1,)
    s = default_space(4, 3, ("ort",), allow_batching=True, max_batch=16)
    assert s.threads == (1, 2, 3, 4) and s.batches == (1, 2, 3, 4, 8, 16)


# -- recipes: the one vocabulary -----------------------------------------------------------------
def test_recipe_names_round_trip_and_aliases():
    for r in (Recipe(), Recipe(cleanup=True), Recipe(precision="fp16"), Recipe(precision="int8-ort", calibration="entropy"),
              Recipe(prune=0.3), Recipe(prune=0.5, prune_scope="sensitivity", precision="int8-nncf", float_layers=2),
              Recipe(prune=0.5, recover=False)):
        assert parse_recipe(r.name) == r, r.name
    assert Recipe(prune=0.3).name == "pruned-30+kd" and Recipe(prune=0.5, recover=False).name == "pruned-50"
    assert parse_recipe("int8") == Recipe(precision="int8-ort")
    assert parse_recipe("pruned50") == Recipe(prune=0.5, recover=False)
    with pytest.raises(EdgeoptError, match="unknown recipe 'int4'"):
        parse_recipe("int4")
    with pytest.raises(EdgeoptError, match="unknown recipe"):
        parse_recipe("pruned-0/fp16")


def test_every_precision_names_a_registered_pass():
    from edgeopt.passes.base import names

    assert {s.pass_name for s in PRECISIONS.values()} - {None} <= set(names())
    # Mixed precision (the fallback) exists only where a config can keep nodes in float.
    for name, spec in PRECISIONS.items():
        if spec.mixed:
            cfg = spec.config(Recipe(precision=name), ("conv1",))
            assert "conv1" in repr(cfg), name


def test_grid_is_recipes_times_backends_with_hand_picked_first():
    recipes = grid_recipes((0.3,))
    assert [r.name for r in recipes] == ["fp32", "fp32-clean", "fp16", "int8-ort", "int8-nncf", "int8-dynamic",
                                         "int8-ort-defaults", "int8-nncf-defaults", "pruned-30+kd",
                                         "pruned-30+kd/int8-nncf"]
    points = grid_points(recipes, ("ort", "openvino"), 2, 1)
    strategy = make_strategy("grid", backends=("ort", "openvino"), threads=2, batch=1, recipes=recipes,
                             space=SearchSpace(), float_layers=(1, 2))
    assert isinstance(strategy, Grid) and strategy.exhaustive and not strategy.early_stop
    seeds = strategy.seed_points()
    assert [p for p, _ in seeds[:4]] == hand_picked(2, 1, ("ort", "openvino"))
    assert {o for _, o in seeds[:4]} == {"hand-picked"} and {o for _, o in seeds[4:]} == {"grid"}
    assert sorted(p.label for p, _ in seeds) == sorted(p.label for p in points) and len(points) == 20
    assert strategy.space.float_layers == (0, 1, 2) and strategy.space.backends == ("ort", "openvino")
    sampled = make_strategy("search", backends=("ort",), threads=2, batch=1, recipes=recipes,
                            space=SearchSpace(backends=("ort",)), float_layers=())
    assert isinstance(sampled, Sampled) and sampled.early_stop and not sampled.exhaustive
    assert [p.label for p, _ in sampled.seed_points()] == ["fp32@ort t2 b1", "int8-ort-defaults@ort t2 b1"]


# -- Pareto ----------------------------------------------------------------------------------
def test_pareto_front():
    pts = ["a", "b", "c", "d", "e"]
    objs = [(1.0, 5.0), (2.0, 1.0), (2.0, 6.0), (3.0, 1.0), (1.0, 5.0)]
    # c is dominated by a; d by b; a and e are equal and both kept.
    assert pareto_front(pts, objs) == ["a", "b", "e"]
    assert dominates((1, 1), (1, 2)) and not dominates((1, 2), (2, 1)) and not dominates((1, 1), (1, 1))
    with pytest.raises(ValueError):
        pareto_front(pts, objs[:2])


# -- ISA ---------------------------------------------------------------------------------------
def test_int8_dot_product_from_flags():
    assert int8_dot_product(["avx2", "fma"]) is None
    assert int8_dot_product(["avx2", "avx_vnni"]) == "AVX-VNNI"
    assert int8_dot_product(["avx512f", "avx512_vnni", "amx_int8"]) == "AMX-INT8"
    assert int8_dot_product(["neon", "asimd", "asimddp"]) == "dot product (SDOT/UDOT)"
    assert int8_warning({"flags": ["avx512_vnni"], "arch": "x86_64"}) is None
    w = int8_warning({"flags": ["avx2"], "arch": "x86_64", "cpu_model": "Old Xeon"})
    assert w.startswith("Old Xeon has no AVX-512 VNNI") and "int8" in w
    assert "asimddp" in int8_warning({"flags": ["neon", "asimd"], "arch": "aarch64", "cpu_model": "Cortex-A72"})


# -- CLI parsing -------------------------------------------------------------------------------
def test_parse_duration_and_size():
    assert parse_duration("10m") == 600 and parse_duration("90s") == 90 and parse_duration("45") == 45
    assert parse_duration("1.5h") == 5400
    assert parse_size("2MB") == 2_000_000 and parse_size("1KiB") == 1024 and parse_size("300") == 300
    for bad in ("", "-1m", "ten", "0"):
        with pytest.raises(EdgeoptError, match="bad duration"):
            parse_duration(bad)
    with pytest.raises(EdgeoptError, match="bad size"):
        parse_size("2 parsecs")


def test_worker_command_resumes_with_the_time_left():
    cmd = worker_command(["optimize", "m.onnx", "--search", "--budget", "10m"], 300.4)
    assert cmd[1:3] == ["-m", "edgeopt.cli"]
    assert cmd[3:8] == ["optimize", "m.onnx", "--search", "--budget", "10m"]
    assert cmd[-4:] == ["--resume", "--trials-only", "--budget", "300s"]  # Click keeps the last --budget


# -- fallback logic on a study with scripted measurements ---------------------------------------
class _Scripted:
    """An objective stand-in: each point's (ms, drop) comes from a table."""

    def __init__(self, table, max_drop=1.0):
        self.table = table
        self.max_drop = max_drop
        self.calls = []

    def __call__(self, trial):
        point = Point(**trial.user_attrs["point"])
        self.calls.append(point)
        ms, drop = self.table[point.recipe_name]
        c = [drop - self.max_drop, -1.0, -1.0]
        for k, v in {"per_image_ms": ms, "p50_ms": ms, "latency_ms": ms, "drop": drop,
                     "constraints": c, "size_bytes": 1000, "label": point.label}.items():
            trial.set_user_attr(k, v)
        return ms, drop


def _study_with(objective, points):
    study = optuna.create_study(directions=["minimize", "minimize"])
    for p in points:
        study.enqueue_trial(p.params(), user_attrs={"point": p.to_dict(), "origin": "sampled"})
    study.optimize(objective, n_trials=len(points))
    return study


def _fallback(study, objective, space):
    def run(p):
        study.enqueue_trial(p.params(), user_attrs={"origin": "fallback", "point": p.to_dict()})
        study.optimize(objective, n_trials=1)

    return fallback(lambda: records(study), run, space, max_drop=objective.max_drop, time_left=lambda: True)


def test_fallback_keeps_worst_layers_float_until_within_budget():
    table = {"fp32": (2.0, 0.0), "int8-nncf": (1.0, 3.0), "int8-nncf-1fp": (1.1, 1.5),
             "int8-nncf-2fp": (1.2, 0.5), "int8-nncf-4fp": (1.4, 0.0)}
    ev = _Scripted(table)
    study = _study_with(ev, [Point(), Point(precision="int8-nncf")])
    log = _fallback(study, ev, SearchSpace(float_layers=(0, 1, 2, 4)))
    tried = [p.float_layers for p in ev.calls[2:]]
    assert tried == [1, 2]  # stops at the first k within the budget
    assert "drop 3.00 points > 1" in log[0]
    assert log[-1].strip().startswith("2 in float: drop 0.50") and log[-1].endswith("within budget")
    assert best(records(study)).label == "int8-nncf-2fp@ort t1 b1"


def test_fallback_steps_are_proposed_as_soon_as_a_fast_int8_trial_breaks_the_budget():
    table = {"fp32": (2.0, 0.0), "int8-nncf": (1.0, 3.0), "int8-nncf-1fp": (1.1, 1.5), "int8-nncf-2fp": (1.2, 0.5),
             "int8-ort": (2.5, 3.0)}
    ev = _Scripted(table)
    space = SearchSpace(float_layers=(0, 1, 2, 4))
    study = _study_with(ev, [Point(), Point(precision="int8-nncf"), Point(precision="int8-ort")])
    recs = records(study)
    by = {r.point.recipe_name: r for r in recs}
    assert next_step(by["int8-nncf"], recs, space, max_drop=1.0) == Point(precision="int8-nncf", float_layers=1)
    assert next_step(by["int8-ort"], recs, space, max_drop=1.0) is None  # slower than fp32: no reason
    assert next_step(by["fp32"], recs, space, max_drop=1.0) is None
    study = _study_with(ev, [Point(), Point(precision="int8-nncf"), Point(precision="int8-nncf", float_layers=1),
                             Point(precision="int8-nncf", float_layers=2)])
    recs = records(study)
    one = next(r for r in recs if r.point.float_layers == 1)
    two = next(r for r in recs if r.point.float_layers == 2)
    assert next_step(one, recs, space, max_drop=1.0) is None  # 2 is measured already
    assert next_step(two, recs, space, max_drop=1.0) is None  # within the budget


def test_fallback_skips_int8_when_the_float_model_is_already_over_budget():
    table = {"pruned-50+kd": (1.0, 4.0), "pruned-50+kd/int8-nncf": (0.5, 4.2), "fp32": (2.0, 0.0)}
    ev = _Scripted(table)
    study = _study_with(ev, [Point(), Point(prune=0.5), Point(prune=0.5, precision="int8-nncf")])
    log = _fallback(study, ev, SearchSpace())
    assert len(ev.calls) == 3 and "int8 is not the cause" in log[0]


def test_failing_points_are_penalised_not_retried_forever():
    # A point whose pass fails completes with the worst values (so TPE moves away) and
    # counts as idle; the record says failed with the pass's reason. Another point built on
    # the same failed prefix is answered from the record without building again.
    class _Builder:
        def __init__(self):
            self.builds, self.failed = 0, None

        def known_failure(self, recipe):
            return self.failed if recipe.prune == 0.5 else None

        def estimate_seconds(self, recipe):
            return 0.0

        def build(self, recipe):
            self.builds += 1
            self.failed = "pass prune failed: IndexError: index 3 is out of bounds"
            raise IndexError("index 3 is out of bounds")  # a library's own exception

    builder = _Builder()
    ev = Objective(builder, measurer=None, space=SearchSpace(), limits=Limits(max_drop=1.0), trials_end=None)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for p in (Point(prune=0.5), Point(prune=0.5, precision="int8-nncf")):
        study.enqueue_trial(p.params(), user_attrs={"point": p.to_dict(), "origin": "sampled"})
    study.optimize(ev, n_trials=2)
    assert [t.values for t in study.trials] == [[1e9, 100.0], [1e9, 100.0]]
    first, second = records(study)
    assert first.state == "failed" and first.reason == "IndexError: index 3 is out of bounds"
    assert not first.feasible and first.status == "failed"
    assert second.state == "failed" and "pass prune failed" in second.reason
    assert builder.builds == 1 and ev.idle == 2


def test_a_trial_that_does_not_fit_the_time_left_is_not_started():
    # On an injected clock: a trial needs its build estimate plus the largest measuring time
    # seen (5 s before any); it starts only when that ends before the trials' end.
    from edgeopt._util.deadline import FakeClock

    class _Builder:
        def __init__(self, clock):
            self.clock, self.built = clock, []

        def known_failure(self, recipe):
            return None

        def estimate_seconds(self, recipe):
            return 20.0 if recipe.precision == "int8-nncf" else 3.0

        def build(self, recipe):
            self.built.append(recipe.precision)
            self.clock.advance(3.0)
            raise RuntimeError("stop after the build: measuring is tested elsewhere")

    clock = FakeClock(1000.0)
    builder = _Builder(clock)
    ev = Objective(builder, measurer=None, space=SearchSpace(), limits=Limits(max_drop=1.0),
                   trials_end=1000.0 + 15.0, clock=clock)
    study = optuna.create_study(directions=["minimize", "minimize"])
    for p in (Point(precision="int8-nncf"), Point(), Point(precision="int8-ort")):
        study.enqueue_trial(p.params(), user_attrs={"point": p.to_dict(), "origin": "sampled"})
    study.optimize(ev, n_trials=3, catch=(TrialFailed,))
    big, fp32, int8 = records(study)
    # 20 + 5 s > 15 s left: not started; 3 + 5 s fit the 15 s and then the 12 s left.
    assert big.state == "pruned" and big.reason == "out of budget: needs about 25 s, 15 s left"
    assert fp32.state == "failed" and int8.state == "failed"
    assert builder.built == ["fp32", "int8-ort"] and clock.now == 1006.0
    clock.advance(2.0)  # 7 s left: 3 + 5 s no longer fit
    study.enqueue_trial(Point().params(), user_attrs={"point": Point(prune=0.5).to_dict(), "origin": "sampled"})
    study.optimize(ev, n_trials=1, catch=(TrialFailed,))
    last = records(study)[-1]
    assert last.state == "pruned" and last.reason == "out of budget: needs about 8 s, 7 s left"
    assert builder.built == ["fp32", "int8-ort"]


def test_fallback_not_needed():
    ev = _Scripted({"fp32": (2.0, 0.0), "int8-nncf": (1.0, 0.2)})
    study = _study_with(ev, [Point(), Point(precision="int8-nncf")])
    log = _fallback(study, ev, SearchSpace())
    assert log[0].startswith("not needed") and len(ev.calls) == 2


# -- a real, short search and a real, short grid, through the one engine -----------------------
@pytest.fixture(scope="module")
def digits_data():
    import edgeopt
    from edgeopt.data.digits import digits_set

    model = edgeopt.load_model("zoo:seednet-digits")
    test = digits_set("test").subset(range(0, 359, 3))
    calib = digits_set("train").subset(range(0, 1438, 12))
    return model, test, calib


def test_time_spent_before_optimize_counts_against_the_budget(digits_data):
    # A budget the command's start-up already spent: no trial starts, and the run says so.
    from edgeopt._util.deadline import FakeClock

    model, test, calib = digits_data
    cfg = OptimizeConfig(strategy="search", budget_s=30, backends=("ort",), threads=1, reserve_s=3)
    with pytest.raises(EdgeoptError, match="within the budget of 30 s: give a larger --budget"):
        engine.optimize(model, test, calibration=calib, config=cfg, progress=False, clock=FakeClock(),
                        spent_s=30.0)


@pytest.mark.slow
def test_search_on_trained_digits_model(tmp_path, one_torch_thread, digits_data):
    model, test, calib = digits_data
    space = SearchSpace(prune=(0.0,), precisions=("fp32", "int8-ort", "int8-dynamic"),
                        backends=("ort",), threads=(1,), float_layers=(0, 1))
    cfg = OptimizeConfig(strategy="search", budget_s=30, space=space, threads=1, backends=("ort",), min_runs=5,
                         min_time_s=0.2, max_time_s=0.5, confirm_rounds=2, reserve_s=10)
    res = engine.optimize(model, test, calibration=calib, config=cfg, out_dir=tmp_path, progress=False)
    # How closely the budget holds is tested on an injected clock
    # (test_a_trial_that_does_not_fit_the_time_left_is_not_started), not on this machine's load.
    assert 0 < res.elapsed_s and res.strategy == "search"
    labels = {t.label for t in res.trials}
    assert {"fp32@ort t1 b1", "int8-ort-defaults@ort t1 b1"} <= labels  # hand-picked, even outside the space
    assert res.baseline.label == "fp32@ort t1 b1" and res.baseline.drop == 0.0
    assert res.task == "classify" and res.quality_metric == "top-1 agreement and accuracy"
    assert res.original_accuracy > 95
    assert res.winner.feasible and res.winner.drop <= 1.0
    assert res.speedup_vs_hand_picked >= 1.0 or res.winner is res.hand_picked_best
    assert set(res.confirm_ms) == {"winner", "hand_picked", "baseline"}
    # The front is non-dominated and made of feasible trials.
    front = res.pareto
    assert front and all(t.feasible for t in front)
    for a in front:
        assert not any(pareto_front_dominates(b, a) for b in front)
    assert (tmp_path / "study.db").exists() and any((tmp_path / "cache").glob("*.onnx"))
    # The same study again: refused without --resume; resumed, the old trials are kept.
    with pytest.raises(EdgeoptError, match="--resume"):
        engine.optimize(model, test, calibration=calib, config=cfg, out_dir=tmp_path, progress=False)
    import dataclasses

    again = engine.optimize(model, test, calibration=calib, out_dir=tmp_path, progress=False,
                            config=dataclasses.replace(cfg, resume=True, budget_s=25))
    assert {t.number for t in res.trials} <= {t.number for t in again.trials}
    assert len(again.trials) > len(res.trials)
    # Outputs: the summary names the winner's settings and the ISA finding is recorded.
    summary = result_summary(again)
    assert summary["machine"]["flags"] == res.machine["flags"]
    assert summary["winner"] == again.winner.label and summary["strategy"] == "search"
    assert np.isfinite(summary["speedup_vs_baseline"])


@pytest.mark.slow
def test_grid_on_trained_digits_model_uses_the_same_engine(tmp_path, one_torch_thread, digits_data):
    model, test, calib = digits_data
    recipes = (Recipe(), Recipe(precision="int8-ort"), Recipe(precision="int8-dynamic"))
    cfg = OptimizeConfig(recipes=recipes, backends=("ort",), threads=1, min_runs=5, min_time_s=0.2,
                         max_time_s=0.5, confirm_rounds=2, float_layers=())
    res = engine.optimize(model, test, calibration=calib, config=cfg, out_dir=tmp_path, progress=False)
    assert res.strategy == "grid" and res.storage == "memory" and not (tmp_path / "study.db").exists()
    # Every point measured in full, the hand-picked ones first, no early stop, no repeat.
    assert [t.label for t in res.trials] == ["fp32@ort t1 b1", "int8-ort@ort t1 b1", "int8-dynamic@ort t1 b1"]
    assert [t.origin for t in res.trials] == ["hand-picked", "grid", "grid"]  # the library defaults: not in this grid
    assert all(t.measured for t in res.trials)
    assert res.baseline.label == "fp32@ort t1 b1" and res.baseline.feasible
    assert res.winner.feasible and set(res.confirm_ms) == {"winner", "hand_picked", "baseline"}
    for t in res.trials:
        assert (t.status == "accepted") == (t.reason == "")
    summary = result_summary(res)
    assert summary["strategy"] == "grid" and summary["budget_s"] is None
    # 120 held-out images cannot show 99% agreement at 95% confidence: said, and no fallback
    # runs (no layer kept in float could make a candidate pass).
    too_small = "120 images cannot show 99% at 95% confidence (it takes 268): give more images or a larger --max-drop"
    assert summary["fallback"] == [f"not run: {too_small}"] and too_small in res.notes
    assert res.winner is res.baseline


def pareto_front_dominates(b, a) -> bool:
    return dominates((b.per_image_ms, b.drop), (a.per_image_ms, a.drop))


# -- inputs that are not images, graphs that fix their batch ----------------------------------
def test_a_graph_that_fixes_its_batch_is_optimized_at_that_batch(tmp_path):
    """The issue's crash: a literal Reshape to (1, -1) packed a batch of 8 into one row. Now
    the engine finds it (graph and batch-2 run), measures at batch 1 with a note, and every
    candidate runs."""
    import edgeopt
    from edgeopt.data.samples import SampleSet

    from support import TINY_W, reshape_to_one_row

    path = tmp_path / "fixed.onnx"
    path.write_bytes(reshape_to_one_row().SerializeToString())
    model = edgeopt.load_model(str(path))
    x = np.random.default_rng(0).standard_normal((40, 2, 2)).astype(np.float32)
    samples = SampleSet({"x": x})
    recipes = (Recipe(), Recipe(precision="fp16"), Recipe(precision="int8-ort"))
    space = SearchSpace(prune=(0.0,), precisions=("fp32", "fp16", "int8-ort"), backends=("ort",), threads=(1,),
                        batches=(1, 8))
    cfg = OptimizeConfig(recipes=recipes, backends=("ort",), threads=1, batch=8, space=space, min_runs=3,
                         min_time_s=0.05, max_time_s=0.2, confirm_rounds=1, float_layers=())
    res = engine.optimize(model, samples, config=cfg, progress=False)
    assert res.config.batch == 1 and res.config.space.batches == (1,)
    assert any("runs at batch 1 only" in n and "flatten_batch1" in n and "not 1, 8" in n for n in res.notes)
    assert [t.label for t in res.trials] == ["fp32@ort t1 b1", "fp16@ort t1 b1", "int8-ort@ort t1 b1"]
    assert all(t.measured for t in res.trials), [t.reason for t in res.trials]
    assert res.task == "classify" and res.baseline.drop == 0.0  # (N, 3) scores
    # The reference the candidates were judged against is the model's true answer.
    ref = engine.Measurer(res.model, samples.subset(range(12)), threads=1).reference[0]
    np.testing.assert_allclose(ref, x[:12].reshape(12, 4) @ TINY_W, rtol=1e-5, atol=1e-6)
