"""The trained-on-first-use cache: weights checksummed and checked on load, training
deterministic, on a tiny network (no zoo training here)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest
import torch

import edgeopt
from edgeopt.errors import ModelLoadError
from edgeopt.zoo.trained import (TrainRecord, deterministic, load_or_train, pinned_isa_env, train_pinned,
                                 weights_checksum)


def _build() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(64, 3))


def _train(seed: int = 0) -> tuple[torch.nn.Module, TrainRecord]:
    """A few Adam steps on random data, everything from ``seed``."""
    with deterministic(seed) as gen:
        net = _build()
        x, y = torch.randn(32, 1, 6, 6, generator=gen), torch.randint(0, 3, (32,), generator=gen)
        opt = torch.optim.Adam(net.parameters(), lr=1e-2)
        for i in torch.randperm(32, generator=gen).split(8):
            loss = torch.nn.functional.cross_entropy(net(x[i]), y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    record = TrainRecord(name="tiny", key="k", test_accuracy=0.0, train_accuracy=0.0, train_seconds=0.0,
                         params=sum(p.numel() for p in net.parameters()), n_train=32, n_test=0,
                         torch_version=torch.__version__, recipe={})
    return net, record


def _equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_is_deterministic_and_leaves_the_callers_state_alone():
    threads, flag = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    rng = torch.random.get_rng_state()
    first, _ = _train(0)
    assert _equal(first, _train(0)[0])
    assert not _equal(first, _train(1)[0])
    assert weights_checksum(first.state_dict()) == weights_checksum(_train(0)[0].state_dict())
    assert (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()) == (threads, flag)
    assert torch.equal(torch.random.get_rng_state(), rng)
    with deterministic(0):
        assert torch.get_num_threads() == 1 and torch.are_deterministic_algorithms_enabled()


def test_checksum_covers_names_values_and_dtypes():
    net = _build()
    state = net.state_dict()
    base = weights_checksum(state)
    assert len(base) == 64
    changed = {k: v.clone() for k, v in state.items()}
    changed["3.bias"][0] += 1e-6
    assert weights_checksum(changed) != base
    assert weights_checksum({k.replace("3.", "4."): v for k, v in state.items()}) != base
    assert weights_checksum({k: v.double() for k, v in state.items()}) != base


def test_weights_are_checked_on_load_and_a_mismatch_retrains_with_a_warning(tmp_path):
    path = tmp_path / "tiny-k.pt"
    calls = []

    def train():
        calls.append(1)
        return _train(0)

    net, record = load_or_train(path, _build, train)
    saved = json.loads(path.with_suffix(".json").read_text())
    assert calls == [1] and saved["weights_sha256"] == record.weights_sha256 == weights_checksum(net.state_dict())
    again, _ = load_or_train(path, _build, train)  # a cache hit: no training
    assert calls == [1] and _equal(again, net)
    # Other weights under the same record: never loaded, retrained with a warning.
    torch.save(_build().state_dict(), path)
    with pytest.warns(UserWarning, match="do not match the checksum"):
        fixed, _ = load_or_train(path, _build, train)
    assert calls == [1, 1] and _equal(fixed, net)
    assert weights_checksum(torch.load(path, weights_only=True)) == saved["weights_sha256"]
    # A record written before checksums is a mismatch too.
    legacy = {k: v for k, v in saved.items() if k != "weights_sha256"}
    path.with_suffix(".json").write_text(json.dumps(legacy))
    with pytest.warns(UserWarning, match="checksum"):
        load_or_train(path, _build, train)
    assert calls == [1, 1, 1]


def tiny_named(name: str, *, progress: bool = True) -> tuple[torch.nn.Module, TrainRecord]:
    """train_pinned's target in the child: the tiny training, with what the child saw."""
    if name == "broken":
        raise RuntimeError("no such model")
    net, record = _train(0)
    seen = {k: os.environ.get(k) for k in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR")}
    return net, dataclasses.replace(record, name=name, recipe={"env": seen, "capability": torch.backends.cpu
                                                               .get_cpu_capability()},
                                    weights_sha256=weights_checksum(net.state_dict()))


def test_isa_pinning_is_avx2_on_x86_and_nothing_elsewhere():
    pinned = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
    assert pinned_isa_env("AVX512") == pinned_isa_env("AVX2") == pinned
    assert pinned_isa_env("DEFAULT") == pinned_isa_env("SVE256") == {}


def test_training_in_a_pinned_child_process(monkeypatch, capfd):
    src = str(Path(edgeopt.__file__).resolve().parents[1])
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([src, str(Path(__file__).parent)]))
    net, record = train_pinned(_build, "test_trained:tiny_named", "tiny", progress=False)
    pinned = pinned_isa_env(torch.backends.cpu.get_cpu_capability())
    assert record.name == "tiny" and record.recipe["env"] == {k: pinned.get(k) for k in record.recipe["env"]}
    if pinned:
        assert record.recipe["capability"] == "AVX2"
    # The network handed back holds exactly the child's weights.
    assert weights_checksum(net.state_dict()) == record.weights_sha256 and not net.training
    with pytest.raises(ModelLoadError, match="child process failed"):
        train_pinned(_build, "test_trained:tiny_named", "broken", progress=False)
    assert "no such model" in capfd.readouterr().err
