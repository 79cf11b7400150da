"""Trials a killed search left RUNNING: failed on resume, never counted as measured, and
their point measured again (issue 15)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time

import optuna
import pytest
from optuna.trial import TrialState

from edgeopt.optimizer import stale, storage
from edgeopt.optimizer.space import Point
from edgeopt.optimizer.study import open_study, records

from hostile.harness import Sandbox
from support import run_cli

# study.ask() outside Study.optimize, as a killed process leaves a trial: Optuna warns.
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage is supposed to be used")

NAME = "s"
POINT = Point(backend="ort", threads=2, batch=1)  # the hand-picked fp32 baseline

# A search process that is SIGKILLed in the middle of its first trial (a hand-picked
# point): the trial stays RUNNING, with a heartbeat and edgeopt's process stamp.
_KILLED_SEARCH = textwrap.dedent("""
    import os, signal, sys
    import optuna
    from edgeopt.optimizer.space import Point
    from edgeopt.optimizer.stale import stamp_process
    from edgeopt.optimizer.study import open_study

    study = open_study(sys.argv[1], sys.argv[2], sampler=optuna.samplers.RandomSampler(seed=0), n_objectives=2,
                       resume=False)
    point = Point(backend="ort", threads=2, batch=1)
    study.enqueue_trial(point.params(), user_attrs={"origin": "hand-picked", "point": point.to_dict()})

    def killed(trial):
        stamp_process(trial)
        os.kill(os.getpid(), signal.SIGKILL)

    study.optimize(killed, n_trials=1)
""")


def _killed_search(url: str) -> None:
    done = subprocess.run([sys.executable, "-c", _KILLED_SEARCH, url, NAME], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr


def _open(url: str):
    return open_study(url, NAME, sampler=optuna.samplers.RandomSampler(seed=0), n_objectives=2, resume=True)


def test_a_trial_of_a_killed_process_is_failed_and_not_counted(tmp_path):
    url = storage.default_storage(tmp_path)
    _killed_search(url)
    study = _open(url)
    (running,) = study.get_trials(states=(TrialState.RUNNING,))
    assert running.user_attrs["process"]["pid"] > 0
    # Its heartbeat is seconds old (Optuna alone would wait the grace period): the pid decides.
    failed = stale.fail_stale_trials(study, storage.GRACE_S)
    assert [t.number for t in failed] == [running.number]
    assert failed[0].user_attrs["point"] == POINT.to_dict()
    (rec,) = records(study)
    assert rec.state == "failed" and rec.status == "failed" and not rec.measured
    assert "stopped before this trial finished" in rec.reason
    assert stale.fail_stale_trials(study, storage.GRACE_S) == []  # once


def _running_trial(study, **attrs):
    trial = study.ask()
    for k, v in attrs.items():
        trial.set_user_attr(k, v)
    return trial


def test_a_trial_that_never_recorded_its_process_fails_after_the_grace_period(tmp_path):
    url = storage.default_storage(tmp_path)
    study = open_study(url, NAME, sampler=optuna.samplers.RandomSampler(), n_objectives=2, resume=False)
    trial = _running_trial(study)  # as an edgeopt before the stamp left it: no heartbeat, no process
    assert stale.fail_stale_trials(study, grace_s=3600) == []  # may still be starting
    assert [t.number for t in stale.fail_stale_trials(study, grace_s=0)] == [trial.number]


def test_a_live_process_and_another_host_keep_their_trials(tmp_path):
    url = storage.default_storage(tmp_path)
    study = open_study(url, NAME, sampler=optuna.samplers.RandomSampler(), n_objectives=2, resume=False)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _running_trial(study, process={"host": stale.socket.gethostname(), "pid": live.pid})
        _running_trial(study, process={"host": "another-machine", "pid": 1})
        assert stale.fail_stale_trials(study, grace_s=0) == []
    finally:
        live.kill()
        live.wait()


def test_a_trial_whose_heartbeat_stopped_is_failed_by_optuna(tmp_path, monkeypatch):
    monkeypatch.setattr(storage, "GRACE_S", 1)
    monkeypatch.setattr(storage, "HEARTBEAT_S", 1)
    url = storage.default_storage(tmp_path)
    study = open_study(url, NAME, sampler=optuna.samplers.RandomSampler(), n_objectives=2, resume=False)
    trial = _running_trial(study, process={"host": "another-machine", "pid": 1})
    study._storage.record_heartbeat(trial._trial_id)  # what Optuna's heartbeat thread does
    time.sleep(2.2)
    assert [t.number for t in stale.fail_stale_trials(study, grace_s=3600)] == [trial.number]


@pytest.mark.slow
def test_resume_reports_the_killed_trial_failed_and_goes_on(monkeypatch, capsys, tmp_path):
    sb = Sandbox(tmp_path)
    monkeypatch.setenv("EDGEOPT_CACHE", str(sb.cache))
    sb.out.mkdir()
    _killed_search(storage.default_storage(sb.out))
    code, out, err = run_cli(monkeypatch, capsys, "optimize", str(sb.model()), "--images", str(sb.images(8)),
                             "--search", "--resume", "--study-name", NAME, "--backends", "ort", "--budget", "15s",
                             "--prune-targets", "", "--seconds", "0.05", "--out", str(sb.out))
    assert code == 0, err
    assert "marked failed" in out.replace("\n", " ")
    trials = json.loads((sb.out / "candidates.json").read_text())["trials"]
    killed = next(t for t in trials if t["number"] == 0)
    assert killed["state"] == "failed" and killed["status"] == "failed"
    # Its point was measured again, in full, by the resumed run.
    again = [t for t in trials if t["number"] > 0 and t["label"] == POINT.label]
    assert any(t["state"] == "complete" and t["duplicate_of"] is None for t in again), again
