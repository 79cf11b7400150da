"""The conditions of a measurement reach the trial records, candidates.json and deploy.json."""

from __future__ import annotations

import json
from types import SimpleNamespace

from edgeopt import load_model
from edgeopt.bench.harness import BenchResult
from edgeopt.optimizer.measure import QualityVerdict, measured_attrs
from edgeopt.optimizer.result import deploy_record
from edgeopt.optimizer.space import Point
from edgeopt.optimizer.study import TrialRecord

COND = {"other_cpu_pct": 48.5, "steal_pct": 0.0, "load1_start": 6.2, "pinned": True, "throttled": None}


def test_conditions_flow_from_the_bench_result_to_trials_and_deploy():
    bench = BenchResult(backend="ort", backend_version="1", model="m", model_sha256="ab", batch=1, threads=2,
                        latencies_ms=[2.0, 1.0, 3.0], conditions=dict(COND))
    model = load_model("zoo:seednet")
    attrs = measured_attrs(bench, QualityVerdict(0.0, {}, ""), model, Point(), "p50")
    assert attrs["conditions"] == COND and attrs["p50_ms"] == 2.0
    trial = TrialRecord(number=3, point=Point(), state="complete", feasible=True, attrs=json.loads(json.dumps(attrs)))
    assert trial.to_dict()["conditions"] == COND

    result = SimpleNamespace(winner=trial, winner_model=model, model=SimpleNamespace(source="zoo:seednet",
                             source_sha256="cd"), speedup_vs_baseline=1.0, speedup_vs_hand_picked=1.0,
                             hand_picked_best=trial, float_layers={}, strategy="grid", study_name="s",
                             tie=[], tie_breaker="passes", decision="only contender", speedup_interval=(1.0, 1.0),
                             machine={"cpu_model": "where it was measured"})
    deploy = deploy_record(result, "model.onnx")
    assert deploy["conditions"] == COND and deploy["machine"] == {"cpu_model": "where it was measured"}
    assert deploy["decision"] == {"tie": [], "tie_breaker": "passes", "reason": "only contender",
                                  "speedup_interval": [1.0, 1.0]}
    trial.attrs.pop("conditions")  # a trial stored before conditions were recorded
    assert trial.to_dict()["conditions"] is None and deploy_record(result, "model.onnx")["conditions"] is None
