"""Trials left RUNNING by a process that died (SIGKILL, the OOM killer, a power cut).

Optuna's heartbeat (:func:`edgeopt.optimizer.storage.open_storage`) marks a running trial
stale once its process has been silent for the grace period, and Optuna fails stale
trials (``optuna.storages.fail_stale_trials``) before each new trial. Two cases remain:
a search killed seconds before ``--resume`` on the same machine (its last heartbeat is
still fresh), and a trial from an edgeopt before heartbeats (no heartbeat ever, so Optuna
never calls it stale). So each trial also records the host and process running it
(:func:`stamp_process`); on resume (:func:`fail_stale_trials`) a trial of this host whose
process is gone fails at once, and one that never recorded a process fails once it
started longer than the grace period ago.
"""

from __future__ import annotations

import datetime
import os
import socket
import warnings
from typing import Any

PROCESS_ATTR = "process"


def stamp_process(trial: Any) -> None:
    """Record on ``trial`` (a user attribute) the host and process id running it."""
    trial.set_user_attr(PROCESS_ATTR, {"host": socket.gethostname(), "pid": os.getpid()})


def _process_gone(stamp: Any) -> bool:
    """True when ``stamp`` names a process of this host that no longer runs."""
    if not isinstance(stamp, dict) or stamp.get("host") != socket.gethostname():
        return False  # another machine: its heartbeat decides
    pid = stamp.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    if pid == os.getpid():
        return True  # this process runs no trial yet: the pid was reused after the old one died
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # another user's live process
        return False
    return False


def fail_stale_trials(study: Any, grace_s: float) -> list[Any]:
    """Fail the trials of ``study`` whose process is gone; call it before this process
    runs any trial of the study (a resumed search, a new worker).

    A running trial is stale when its heartbeat is older than the storage's grace period
    (Optuna's rule), when its process (:func:`stamp_process`) ran on this host and is gone,
    or when it never recorded a process and started more than ``grace_s`` seconds ago.

    Args:
        study: an Optuna study.
        grace_s: seconds; see above.

    Returns:
        the FrozenTrials this call failed, as they were while running (their user
        attributes say what they were measuring).
    """
    import optuna
    from optuna.trial import TrialState

    running = {t.number: t for t in study.get_trials(deepcopy=True, states=(TrialState.RUNNING,))}
    if not running:
        return []
    with warnings.catch_warnings():  # fail_stale_trials is marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    now = datetime.datetime.now()  # Optuna records datetime_start as local naive time
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        stamp = t.user_attrs.get(PROCESS_ATTR)
        never_stamped = (stamp is None and t.datetime_start is not None
                         and (now - t.datetime_start).total_seconds() > grace_s)
        if _process_gone(stamp) or never_stamped:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
    # What failed now (not what another live process finished meanwhile), as it was running.
    failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return [t for n, t in sorted(running.items()) if n in failed]
