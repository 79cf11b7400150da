"""Trained digits classifiers for the zoo: the seed study's CNN and a small MobileNetV2.

Both are trained here, on first use, on scikit-learn's handwritten digits (the train part
of :func:`edgeopt.data.digits.digits_set`) and cached; their test accuracy is the
baseline that compression passes are held to.

- ``seednet-digits``: :class:`~edgeopt.zoo.seednet.SeedNet` with 10 classes (softmax
  output), input 1x88x88 gray: the 8x8 scan upscaled bilinearly, as the seed study's
  network takes 88x88.
- ``mobilenetv2-digits``: a :class:`~edgeopt.zoo.mobilenetv2.MobileNetV2` with a short
  block table (logits output), input 1x32x32 gray (the scan upscaled 4x bilinearly). An
  8x8 scan holds 64 numbers: upscaling to 88x88 would add no information but multiply
  every layer's MACs, and the training time, by (88/32)^2 = 7.6. At 32x32 the network
  keeps the ImageNet layout: a stride-2 stem (32 -> 16) and three stride-2 stages
  (16 -> 8 -> 4 -> 2) of inverted residual blocks (expansion 6, depthwise 3x3, linear
  bottleneck, a residual add in every repeated block).

Training (:func:`train`): cross-entropy on logits (SeedNet's softmax layer is skipped
during training, kept in the exported model), Adam with a one-cycle learning-rate
schedule (Smith & Topin 2017, ``torch.optim.lr_scheduler.OneCycleLR``), mini-batches
in a seeded order, and random shifts of up to half a scan pixel as augmentation (it
raised seednet-digits from 96.9 to 98.9 % test accuracy at 2 epochs). Everything random
comes from ``recipe.seed``, in a fixed order, on one thread, with deterministic
algorithms (:func:`edgeopt.zoo.trained.deterministic`, which says what torch
still leaves to the CPU), and the caller's RNG state is left alone. The images reach the network
through ``recipe.preprocess``, the same object the zoo entry deploys, so training and
deployment see the same pixels.

Cache (:func:`load_trained`): ``<cache>/zoo/<name>-<key>.pt`` (a ``state_dict`` written
with ``torch.save``, read with ``weights_only=True``) and ``<name>-<key>.json`` beside it
(test accuracy, training time, recipe, the weights' checksum, checked on load:
:mod:`edgeopt.zoo.trained`). ``<cache>`` is ``$EDGEOPT_CACHE``, else
``$XDG_CACHE_HOME/edgeopt``, else ``~/.cache/edgeopt``. ``key`` hashes the recipe and
the source of every module that shapes the weights (this one, the architectures, the
split, preprocessing), so changing any of them retrains instead of loading stale
weights. Files are written to a temp file and renamed: never half-written, and two
processes training at once both end with a complete file.

This module imports torch only inside functions: ``import edgeopt.zoo`` stays light.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..data.digits import digits_set
from ..errors import ModelLoadError
from .._util.cache import cache_root
from .._util.progress import progress_bar
from ..preprocess import Preprocess
from .trained import TrainRecord, deterministic, load_or_train, one_thread, train_pinned

if TYPE_CHECKING:
    import torch

_PACKAGE = Path(__file__).resolve().parent.parent
# The source files whose code decides the trained weights (read, not imported, so
# computing a cache key imports no torch).
_WEIGHT_SOURCES = tuple(_PACKAGE / f for f in (
    "zoo/digits.py", "zoo/seednet.py", "zoo/mobilenetv2.py", "zoo/blocks.py", "data/digits.py",
    "preprocess.py", "zoo/trained.py",
))

# Mean and std of the training scans after 1/255 scaling, bilinear upscaling (measured
# on the seed-0 train part: 0.306 and 0.326 at 88x88 and at 32x32), so inputs are
# roughly zero-mean, unit-variance.
DIGITS_MEAN, DIGITS_STD = (0.31,), (0.33,)

# Block table of mobilenetv2-digits, rows (t, c, n, s) as in Sandler et al. 2018 Table 2:
# the ImageNet table's first four stages (the fourth with 2 repeats instead of 4); on a
# 16x16 map after the stem, three stride-2 stages end at 2x2.
DIGITS_MOBILENETV2_SETTINGS: tuple[tuple[int, int, int, int], ...] = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 2, 2),
)


@dataclass(frozen=True)
class Recipe:
    """How one digits model is built and trained (every field enters the cache key).

    Attributes:
        name: zoo name, e.g. "seednet-digits".
        arch: "seednet" or "mobilenetv2".
        arch_args: keyword arguments of the architecture, as (name, value) pairs.
        preprocess: uint8 scan -> network input; the zoo entry deploys this object.
        epochs: passes over the training part.
        batch: images per optimizer step.
        lr: peak learning rate of the one-cycle schedule (Adam).
        weight_decay: L2 penalty of Adam.
        max_shift: augmentation: random translation of up to this many input pixels in
            each direction (0 = none), filled with the background (scan value 0); half a
            scan pixel is 88/16 ~ 6 px at 88x88 and 2 px at 32x32.
        seed: seed of initialisation, batch order, augmentation and dropout.
        split_seed: seed of :func:`~edgeopt.data.digits.digits_set`.
    """

    name: str
    arch: str
    arch_args: tuple[tuple[str, Any], ...]
    preprocess: Preprocess
    epochs: int
    batch: int
    lr: float
    weight_decay: float
    max_shift: int
    seed: int = 0
    split_seed: int = 0

    @property
    def input_shape(self) -> tuple[int, int, int, int]:
        """(1, 1, H, W): the network input at batch 1."""
        return (1, 1, *self.preprocess.size)

    def build(self) -> "torch.nn.Module":
        """A new, untrained network (initialised from the global torch RNG)."""
        kwargs = dict(self.arch_args)
        if self.arch == "seednet":
            from .seednet import SeedNet

            return SeedNet(**kwargs)
        if self.arch == "mobilenetv2":
            from .mobilenetv2 import MobileNetV2

            return MobileNetV2(**kwargs)
        raise ModelLoadError(f"unknown digits architecture {self.arch!r}: use seednet or mobilenetv2")

    def key(self) -> str:
        """16 hex digits of sha256 over this recipe and the source files that shape the weights."""
        h = hashlib.sha256(repr(self).encode())
        for path in _WEIGHT_SOURCES:
            h.update(path.read_bytes())
        return h.hexdigest()[:16]


RECIPES: dict[str, Recipe] = {
    r.name: r for r in (
        Recipe(
            name="seednet-digits", arch="seednet", arch_args=(("num_classes", 10),),
            preprocess=Preprocess(size=(88, 88), channels="GRAY", mean=DIGITS_MEAN, std=DIGITS_STD),
            epochs=2, batch=16, lr=1e-3, weight_decay=0.0, max_shift=6,
        ),
        Recipe(
            name="mobilenetv2-digits", arch="mobilenetv2",
            arch_args=(("settings", DIGITS_MOBILENETV2_SETTINGS), ("in_channels", 1),
                       ("num_classes", 10), ("width", 1.0), ("stem_channels", 16),
                       ("stem_stride", 2), ("last_channels", 256), ("dropout", 0.1)),
            preprocess=Preprocess(size=(32, 32), channels="GRAY", mean=DIGITS_MEAN, std=DIGITS_STD),
            epochs=3, batch=32, lr=3e-3, weight_decay=1e-4, max_shift=2,
        ),
    )
}


def cache_dir() -> Path:
    """Folder of the cached weights: ``$EDGEOPT_CACHE/zoo`` (default ``~/.cache/edgeopt/zoo``)."""
    return cache_root() / "zoo"


def get_recipe(name: str) -> Recipe:
    """The recipe of digits model ``name``.

    Raises:
        ModelLoadError: no such digits model (the message lists the names).
    """
    try:
        return RECIPES[name]
    except KeyError:
        raise ModelLoadError(
            f"no digits model {name!r}: choose one of {', '.join(RECIPES)}"
        ) from None


def weights_path(name: str) -> Path:
    """Where the weights of digits model ``name`` are cached (``<cache>/zoo/<name>-<key>.pt``)."""
    recipe = get_recipe(name)
    return cache_dir() / f"{recipe.name}-{recipe.key()}.pt"


def load_trained(name: str, *, progress: bool = True) -> tuple["torch.nn.Module", TrainRecord]:
    """The trained network ``name`` in eval mode, from the cache or trained now and cached
    (:func:`~edgeopt.zoo.trained.load_or_train`: weights checked against their record's
    checksum; a mismatch retrains with a warning).

    Args:
        name: "seednet-digits" or "mobilenetv2-digits".
        progress: show a Rich progress bar on stderr while training (only on a TTY).

    Returns:
        (network, record). SeedNet returns (N, 10) probabilities, MobileNetV2 (N, 10)
        logits, for (N, 1, H, W) float32 inputs made by ``RECIPES[name].preprocess``.

    Raises:
        ModelLoadError: unknown name, or the cached files are unreadable (the message
            names them; delete them to retrain).
    """
    recipe = get_recipe(name)
    return load_or_train(weights_path(name), recipe.build,
                         lambda: train_pinned(recipe.build, "edgeopt.zoo.digits:train_named", name, progress=progress))


def train_named(name: str, *, progress: bool = True) -> tuple["torch.nn.Module", TrainRecord]:
    """:func:`train` of ``RECIPES[name]`` (what :func:`~edgeopt.zoo.trained.train_pinned`
    runs in its child process)."""
    return train(get_recipe(name), progress=progress)


def _logits_view(net: "torch.nn.Module") -> "torch.nn.Module":
    """The network without a final Softmax (sharing its parameters), for cross-entropy.

    Assumes, as in SeedNet, that the children run in registration order and the last
    one is the ``classifier`` Sequential; any other network is returned as is.
    """
    from torch import nn

    classifier = getattr(net, "classifier", None)
    if isinstance(classifier, nn.Sequential) and isinstance(classifier[-1], nn.Softmax):
        rest = [m for name, m in net.named_children() if name != "classifier"]
        return nn.Sequential(*rest, classifier[:-1])
    return net


def _shift(x: "torch.Tensor", max_shift: int, fill: float, gen: "torch.Generator") -> "torch.Tensor":
    """Each image of (N, C, H, W) translated by its own random (dy, dx) in [-max_shift, max_shift]."""
    import torch
    import torch.nn.functional as F

    if max_shift <= 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=fill)
    offsets = torch.randint(0, 2 * max_shift + 1, (n, 2), generator=gen).tolist()
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offsets)])


def _accuracy(net: "torch.nn.Module", x: "torch.Tensor", y: "torch.Tensor") -> float:
    import torch

    net.eval()
    with torch.no_grad():
        pred = torch.cat([net(x[i:i + 256]).argmax(1) for i in range(0, len(x), 256)])
    return float(100.0 * (pred == y).float().mean())


def train(recipe: Recipe, *, progress: bool = True) -> tuple["torch.nn.Module", TrainRecord]:
    """Train ``recipe`` on the digits train part; measure it on the test part.

    Training runs on one torch thread (restored afterwards): the weights then do not
    depend on the machine's core count (a parallel reduction sums in another order), and
    on shared cores a 2-thread OpenMP team waiting for a busy core was measured 2-7x
    slower than one thread.

    Args:
        recipe: what to build and how to train it (see :class:`Recipe`).
        progress: Rich progress bar with the running loss on stderr (only on a TTY).

    Returns:
        (the trained network in eval mode, its :class:`TrainRecord`).
    """
    import torch

    train_set = digits_set("train", seed=recipe.split_seed)
    test_set = digits_set("test", seed=recipe.split_seed)
    x = torch.from_numpy(train_set.tensor(recipe.preprocess))
    y = torch.from_numpy(train_set.label_array)
    x_test = torch.from_numpy(test_set.tensor(recipe.preprocess))
    y_test = torch.from_numpy(test_set.label_array)

    start = time.perf_counter()
    net = _fit(recipe, x, y, progress)
    seconds = time.perf_counter() - start
    with one_thread():
        test_acc, train_acc = _accuracy(net, x_test, y_test), _accuracy(net, x, y)
    record = TrainRecord(
        name=recipe.name, key=recipe.key(), test_accuracy=test_acc, train_accuracy=train_acc,
        train_seconds=round(seconds, 2),
        params=sum(p.numel() for p in net.parameters() if p.requires_grad),
        n_train=len(x), n_test=len(x_test), torch_version=torch.__version__,
        recipe=_recipe_dict(recipe),
    )
    return net.eval(), record


def _fit(recipe: Recipe, x: "torch.Tensor", y: "torch.Tensor", progress: bool) -> "torch.nn.Module":
    """A network built and trained from ``recipe.seed`` on (x, y), on one torch thread.

    The global RNG state and thread count are restored afterwards.
    """
    import numpy as np
    import torch

    # The value a blank (0) scan pixel becomes, so shifted-in borders look like paper.
    fill = float(recipe.preprocess(np.zeros((8, 8), np.uint8)).flat[0])
    steps_per_epoch = -(-len(x) // recipe.batch)
    with deterministic(recipe.seed) as gen:
        net = recipe.build()
        logits = _logits_view(net)
        opt = torch.optim.Adam(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=recipe.lr, total_steps=recipe.epochs * steps_per_epoch)
        loss_fn = torch.nn.CrossEntropyLoss()
        with progress_bar(f"training {recipe.name}", recipe.epochs * steps_per_epoch,
                          enabled=progress) as bar:
            for epoch in range(recipe.epochs):
                net.train()
                order = torch.randperm(len(x), generator=gen)
                for i in range(0, len(x), recipe.batch):
                    idx = order[i:i + recipe.batch]
                    loss = loss_fn(logits(_shift(x[idx], recipe.max_shift, fill, gen)), y[idx])
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    sched.step()
                    bar.advance()
                    bar.describe(f"epoch {epoch + 1}/{recipe.epochs} loss {loss.item():.3f}")
    return net.eval()


def _recipe_dict(recipe: Recipe) -> dict:
    d = dataclasses.asdict(recipe)
    d["arch_args"] = {k: v for k, v in recipe.arch_args}
    d["preprocess"] = recipe.preprocess.to_dict()
    return json.loads(json.dumps(d))
