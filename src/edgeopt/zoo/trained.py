"""Zoo models trained here on first use: the weights cache (read them, or train and write
them: ``<cache>/zoo/<name>-<key>.pt`` plus ``.json``), the deterministic training context
and one epoch of mini-batch training (used by :mod:`edgeopt.zoo.digits` and
:mod:`edgeopt.zoo.audio_events`).

The ``.pt`` holds a ``state_dict`` (``torch.save``, read with ``weights_only=True``); the
``.json`` beside it the :class:`TrainRecord`, with the weights' checksum
(:func:`weights_checksum`), checked on every load: weights that do not match their record
are retrained with a warning, never loaded. Both files are written to a temp file and
renamed, the JSON second: a ``.pt`` without its ``.json`` is not a cache hit, so a crash
between the two writes retrains rather than loads weights with no record.

Determinism (:func:`deterministic`): the same recipe should give the same weights on every
machine, or baselines move between machines (seednet-digits measured 98.33% on an AVX-512
CPU and 98.89% with torch limited to AVX2 (``ATEN_CPU_CAPABILITY=avx2
ONEDNN_MAX_CPU_ISA=AVX2``) on the same one, before this). Training runs seeded (every
generator from the recipe's seed, inside ``torch.random.fork_rng``), in a fixed data
order, on one thread (a parallel reduction sums in an order that depends on the thread
count), with ``torch.use_deterministic_algorithms(True)``. Torch's vectorized kernels,
oneDNN's convolutions and MKL's GEMM dispatch on the CPU's ISA, fixed only when torch
starts: :func:`train_pinned` trains in a child process pinned to the AVX2 paths
(:func:`pinned_isa_env`), so every x86 CPU with AVX2 or AVX-512 computes alike: on the
AVX-512 dev machine a pinned training gave bit-for-bit the weights of one limited to AVX2,
run to run, on one or two threads and on one core (taskset); unpinned AVX-512 weights
differ. oneDNN stays on: turning it off (torch's own convolutions) made a training step of
the audio net 2.7x slower (716 vs 261 ms at one thread) and its first-use training 250 s
instead of 95 s. Left open: oneDNN may also block its kernels by the CPU's cache sizes,
and other architectures (ARM NEON) may differ in the last bits; the checksum in the
record makes any such difference visible. Cost: one thread instead of all cores, AVX2
instead of AVX-512 kernels (254 vs 261 ms per step: no measurable loss), plus one
interpreter start (~3 s).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib
import io
import json
import os
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

from ..errors import ModelLoadError
from .._util.atomic import atomic_write_bytes
from .._util.cache import private_dir

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class TrainRecord:
    """What training a zoo model produced (the JSON beside the cached weights).

    Attributes:
        name: zoo name.
        key: cache key (the recipe's ``key()``).
        test_accuracy: top-1 accuracy in % of the trained PyTorch network on the test part.
        train_accuracy: top-1 accuracy in % on the (unaugmented) train part.
        train_seconds: wall-clock training time in s (on the machine that trained it).
        params: trainable parameters.
        n_train, n_test: samples in each part.
        torch_version: torch that trained it.
        recipe: the recipe as a JSON-ready dict.
        weights_sha256: :func:`weights_checksum` of the trained weights ("" until
            :func:`load_or_train` sets it).
    """

    name: str
    key: str
    test_accuracy: float
    train_accuracy: float
    train_seconds: float
    params: int
    n_train: int
    n_test: int
    torch_version: str
    recipe: dict
    weights_sha256: str = ""

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def weights_checksum(state: dict[str, "torch.Tensor"]) -> str:
    """sha256 hex digest of a ``state_dict``: every entry's name, dtype, shape and bytes, in
    order (independent of ``torch.save``'s container format, so equal weights from two
    machines or torch versions give one checksum)."""
    h = hashlib.sha256()
    for name, tensor in state.items():
        t = tensor.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes())
    return h.hexdigest()


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Run torch on one intra-op thread inside the block, then restore the count.

    Why: the weights then do not depend on the core count, and on shared cores a 2-thread
    OpenMP team waiting for a busy core was measured 2-7x slower than one thread.
    """
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@contextlib.contextmanager
def deterministic(seed: int) -> Iterator["torch.Generator"]:
    """Training as reproducible as torch allows (see the module docstring): one thread,
    ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the caller's RNG state
    is left alone), deterministic algorithms; all restored afterwards.

    Yields:
        a ``torch.Generator`` seeded with ``seed``, for the data order and augmentation.
    """
    import torch

    was, warn_only = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    with one_thread(), torch.random.fork_rng(devices=[]):
        torch.use_deterministic_algorithms(True)
        try:
            torch.manual_seed(seed)
            yield torch.Generator().manual_seed(seed)
        finally:
            torch.use_deterministic_algorithms(was, warn_only=warn_only)


def load_or_train(path: Path, build: Callable[[], "torch.nn.Module"],
                  train: Callable[[], tuple["torch.nn.Module", TrainRecord]]) -> tuple["torch.nn.Module", TrainRecord]:
    """The network cached at ``path`` (in eval mode), or ``train()``'s, then cached there.

    Args:
        path: the ``.pt`` file; its record is ``path.with_suffix(".json")``.
        build: a new, untrained network of the cached architecture.
        train: trains a network; returns it and its record.

    Weights whose checksum is not the one their record states (changed on disk, or a
    record from before checksums) are not loaded: a warning says so and ``train()`` runs.

    Raises:
        ModelLoadError: the cached files are unreadable (the message names them; delete
            them to retrain).
    """
    import torch

    meta = path.with_suffix(".json")
    if path.exists() and meta.exists():
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            record = TrainRecord(**json.loads(meta.read_text()))
            net = build()
            net.load_state_dict(state)
        except Exception as e:
            raise ModelLoadError(f"cached weights {path} are unreadable ({type(e).__name__}): delete "
                                 f"{path} and {meta.name} to retrain") from e
        if weights_checksum(state) == record.weights_sha256:
            return net.eval(), record
        warnings.warn(f"cached weights {path.name} do not match the checksum in {meta.name}: retraining "
                      f"instead of loading them", stacklevel=2)
    net, record = train()
    record = dataclasses.replace(record, weights_sha256=weights_checksum(net.state_dict()))
    private_dir(path.parent)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(meta, (json.dumps(record.to_dict(), indent=2) + "\n").encode())
    return net.eval(), record


def pinned_isa_env(capability: str) -> dict[str, str]:
    """Environment variables that make torch, oneDNN and MKL take their AVX2 code paths on
    any x86 CPU with AVX2 or more (``ATEN_CPU_CAPABILITY``, ``ONEDNN_MAX_CPU_ISA``, and
    ``MKL_CBWR``: MKL's conditional numerical reproducibility), so an AVX-512 machine
    trains the weights an AVX2 machine trains. They are read when torch starts, hence
    :func:`train_pinned` trains in a child process.

    Args:
        capability: ``torch.backends.cpu.get_cpu_capability()`` of this machine.

    Returns:
        the variables; {} where no common path exists to pin to (ARM, x86 without AVX2).
    """
    if capability.upper() not in ("AVX2", "AVX512"):
        return {}
    return {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def train_pinned(build: Callable[[], "torch.nn.Module"], target: str, name: str, *,
                 progress: bool) -> tuple["torch.nn.Module", TrainRecord]:
    """Train in a child Python process with :func:`pinned_isa_env` set (torch reads it at
    start-up only), and return the network (built by ``build``, in eval mode) and record.

    Cost: one interpreter start (about 3 s with torch) per training, and AVX2 kernels
    where AVX-512 ones exist.

    Args:
        build: a new, untrained network of the trained architecture.
        target: "module:function" called in the child as ``function(name, progress=...)``;
            it returns (network, TrainRecord).
        name: the zoo name to train.
        progress: show the child's progress bar.

    Raises:
        ModelLoadError: the child failed (its error is on stderr above the message).
    """
    import torch

    env = {**os.environ, **pinned_isa_env(torch.backends.cpu.get_cpu_capability())}
    code = "import sys; from edgeopt.zoo.trained import _child; _child(sys.argv[1:])"
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run([sys.executable, "-c", code, target, name, str(progress), tmp], env=env,
                              stdout=subprocess.DEVNULL)
        if done.returncode != 0:
            raise ModelLoadError(f"training {name} in a child process failed (exit {done.returncode}; its error "
                                 f"is above): fix that, or report it with the lines above")
        state = torch.load(Path(tmp) / "weights.pt", map_location="cpu", weights_only=True)
        record = TrainRecord(**json.loads((Path(tmp) / "record.json").read_text()))
    net = build()
    net.load_state_dict(state)
    return net.eval(), record


def _child(argv: list[str]) -> None:
    """The child of :func:`train_pinned`: ``target name progress out_dir``."""
    import torch

    target, name, progress, out = argv
    module, _, function = target.partition(":")
    net, record = getattr(importlib.import_module(module), function)(name, progress=progress == "True")
    torch.save(net.state_dict(), Path(out) / "weights.pt")
    (Path(out) / "record.json").write_text(json.dumps(record.to_dict()))


def train_epoch(net: "torch.nn.Module", loss_of: Callable[["torch.Tensor"], "torch.Tensor"], opt: Any, sched: Any,
                n: int, batch: int, gen: "torch.Generator", bar: Any, label: str) -> None:
    """One epoch: the ``n`` training samples in an order drawn from ``gen``, ``batch`` at a
    time, one optimizer and scheduler step each.

    Args:
        net: the network (put in training mode).
        loss_of: the loss of the samples at the given indices (a LongTensor).
        opt, sched: the torch optimizer and learning-rate scheduler.
        gen: the generator of the order (seeded: the same order on every run).
        bar: a progress bar (:func:`edgeopt._util.progress.progress_bar`), advanced per step.
        label: shown before the running loss, e.g. "epoch 3/16".
    """
    import torch

    net.train()
    order = torch.randperm(n, generator=gen)
    for i in range(0, n, batch):
        loss = loss_of(order[i:i + batch])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        bar.advance()
        bar.describe(f"{label} loss {loss.item():.3f}")
