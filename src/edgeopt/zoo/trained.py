"""Zoo models trained here on first use: the weights cache (read them, or train and write
them: ``<cache>/zoo/<name>-<key>.pt`` plus ``.json``, the layout of
:mod:`edgeopt.zoo.digits`) and one epoch of mini-batch training.

The ``.pt`` holds a ``state_dict`` (``torch.save``, read with ``weights_only=True``); the
``.json`` beside it the :class:`~edgeopt.zoo.digits.TrainRecord`. Both are written to a
temp file and renamed, the JSON second: a ``.pt`` without its ``.json`` is not a cache hit,
so a crash between the two writes retrains rather than loads weights with no record.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import ModelLoadError
from .._util.atomic import atomic_write_bytes
from .._util.cache import private_dir
from .digits import TrainRecord

if TYPE_CHECKING:
    import torch


def load_or_train(path: Path, build: Callable[[], "torch.nn.Module"],
                  train: Callable[[], tuple["torch.nn.Module", TrainRecord]]) -> tuple["torch.nn.Module", TrainRecord]:
    """The network cached at ``path`` (in eval mode), or ``train()``'s, then cached there.

    Args:
        path: the ``.pt`` file; its record is ``path.with_suffix(".json")``.
        build: a new, untrained network of the cached architecture.
        train: trains a network; returns it and its record.

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
        return net.eval(), record
    net, record = train()
    private_dir(path.parent)
    buf = io.BytesIO()
    torch.save(net.state_dict(), buf)
    atomic_write_bytes(path, buf.getvalue())
    atomic_write_bytes(meta, (json.dumps(record.to_dict(), indent=2) + "\n").encode())
    return net.eval(), record


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
