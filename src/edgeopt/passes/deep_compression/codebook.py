"""Weight sharing: a per-layer k-means codebook of the non-zero weights, and its fine-tuning.

Deep Compression's second stage (Han, Mao, Dally, ICLR 2016, section 3): the surviving
weights of a layer are clustered into ``2**b`` shared values (centroids); each weight is
stored as a ``b``-bit index into that codebook. Centroids start *linearly spaced*
between the layer's min and max weight, which the paper (section 3.2, Figure 4) found
best because it keeps a few centroids on the rare large weights that matter most. The
clustering is Lloyd's algorithm, which in 1-D reduces to: assign each value to the
interval between consecutive centroid midpoints (``np.searchsorted``), move each
centroid to the mean of its values (``np.bincount``), until no assignment changes.

Zero stays exactly zero: pruned weights are never clustered. When a layer needs filler
entries (see :mod:`.sparsity`), codebook slot 0 is reserved for the exact value 0.0 and
the non-zeros share the other ``2**b - 1`` slots.

Fine-tuning (paper section 3.3): with the assignments fixed, the gradient of the loss
with respect to centroid ``k`` is the sum of the gradients of the weights that share it.
:func:`finetune_codebooks` gets it from autograd by building each dense weight as
``codebook[index]`` scattered into the weight's non-zero positions.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from ...errors import PassError
from ..._util.errorline import error_line

if TYPE_CHECKING:
    import torch

CODEBOOK_DTYPES = ("float32", "float16")


def linear_init(values: np.ndarray, k: int) -> np.ndarray:
    """``k`` centroids evenly spaced over [min(values), max(values)] (paper section 3.2)."""
    return np.linspace(float(values.min()), float(values.max()), k)


def kmeans_1d(values: np.ndarray, k: int, *, max_iter: int = 10_000,
              init: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd's k-means on scalars, vectorised with numpy.

    In 1-D every cluster of a Lloyd step is a run of the sorted values between two
    consecutive centroid midpoints, so after one sort an iteration costs O(k log n):
    the run boundaries come from ``np.searchsorted`` and the cluster sums from a prefix
    sum. Iterations stop when no boundary moves (a fixed point of Lloyd's algorithm).

    Args:
        values: (n,) floats, n >= 1.
        k: number of centroids (>= 1).
        max_iter: Lloyd iterations at most (linear initialisation on bell-shaped data
            can need a few hundred).
        init: (k,) initial centroids; default :func:`linear_init`.

    Returns:
        (centroids, labels): (m,) float64 centroids in increasing order, m = min(k,
        distinct values) (with that few distinct values each is its own centroid, and
        the result is exact); (n,) int64 index of each value's nearest centroid (ties
        to the lower). A centroid whose cluster empties keeps its previous position.
    """
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("k-means needs at least one value")
    distinct = np.unique(values)
    if distinct.size <= k:
        return distinct, np.searchsorted(distinct, values).astype(np.int64)
    centroids = np.sort(np.asarray(init, dtype=np.float64)) if init is not None else linear_init(values, k)
    ordered = distinct if distinct.size == values.size else np.sort(values)
    prefix = np.concatenate([[0.0], np.cumsum(ordered)])
    bounds = None
    for _ in range(max_iter):
        # Cluster j holds the sorted values in (mid[j-1], mid[j]].
        cut = np.searchsorted(ordered, (centroids[1:] + centroids[:-1]) / 2, side="right")
        if bounds is not None and np.array_equal(cut, bounds[1:-1]):
            break
        bounds = np.concatenate([[0], cut, [ordered.size]])
        count = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        centroids = np.where(count > 0, sums / np.maximum(count, 1), centroids)
    return centroids, _assign(values, centroids)


def _assign(values: np.ndarray, sorted_centroids: np.ndarray) -> np.ndarray:
    """Index of the nearest centroid (ties to the lower one) for sorted 1-D centroids."""
    mid = (sorted_centroids[1:] + sorted_centroids[:-1]) / 2
    return np.searchsorted(mid, values, side="left").astype(np.int64)


@dataclass(frozen=True)
class SharedWeights:
    """A layer's codebook and the codebook index of each stored entry.

    Attributes:
        codebook: (m,) centroids, float32 or float16, m <= 2**bits; slot 0 is exactly
            0.0 when ``zero_slot``.
        labels: (nnz,) int64 codebook index of each non-zero weight (flat order).
        zero_slot: True when slot 0 is the reserved zero used by filler entries.
    """

    codebook: np.ndarray
    labels: np.ndarray
    zero_slot: bool

    def values(self) -> np.ndarray:
        """(nnz,) float32 quantized values ``codebook[labels]``."""
        return self.codebook.astype(np.float32)[self.labels]


def share_weights(nonzero: np.ndarray, bits: int, *, zero_slot: bool = False,
                  dtype: str = "float32") -> SharedWeights:
    """Cluster a layer's non-zero weights into a codebook of at most ``2**bits`` values.

    Args:
        nonzero: (nnz,) float32 non-zero weights in flat order (nnz may be 0).
        bits: index width b (1..16); paper: 8 for conv, 5 for fc.
        zero_slot: reserve slot 0 for exact zero (``2**b - 1`` slots for non-zeros).
        dtype: codebook storage, "float32" or "float16" (labels are chosen against
            the float64 centroids, then the codebook is rounded).

    Raises:
        PassError: bits out of range or unknown dtype.
    """
    if not 1 <= bits <= 16:
        raise PassError(f"weight-sharing bits = {bits} is not in 1..16: pass e.g. 5 or 8")
    if dtype not in CODEBOOK_DTYPES:
        raise PassError(f"codebook dtype {dtype!r} is not one of {CODEBOOK_DTYPES}: pick one")
    k = (1 << bits) - int(zero_slot)
    if k < 1:
        raise PassError("1-bit weight sharing leaves no centroid beside the reserved zero: "
                        "pass bits >= 2")
    if nonzero.size:
        centroids, labels = kmeans_1d(nonzero, k)
    else:
        centroids, labels = np.zeros(0), np.zeros(0, dtype=np.int64)
    if zero_slot:
        centroids, labels = np.concatenate([[0.0], centroids]), labels + 1
    return SharedWeights(centroids.astype(dtype), labels, zero_slot)


# -- centroid fine-tuning (paper section 3.3) -----------------------------------------------
@dataclass(frozen=True)
class TunedTensor:
    """What fine-tuning needs for one shared layer.

    Attributes:
        param: dotted name of the torch parameter that holds this weight.
        transpose: True when the torch parameter is the transpose of the ONNX weight
            (a MatMul weight (in, out) read by an nn.Linear (out, in)).
        shape: the ONNX weight shape.
        positions: (nnz,) flat positions of the non-zeros in the ONNX weight.
        shared: the codebook and labels to tune.
    """

    param: str
    transpose: bool
    shape: tuple[int, ...]
    positions: np.ndarray
    shared: SharedWeights


def match_parameters(module: Any, weights: dict[str, np.ndarray]) -> dict[str, tuple[str, bool]]:
    """Map ONNX weights to the torch parameters holding the same numbers.

    Exported and converted modules keep the exact float32 values, so a parameter equal
    to the weight (or, for 2-D weights, to its transpose) is that weight.

    Returns:
        {onnx name: (parameter name, transpose)}; weights with no match are absent.
    """
    params = [(n, p.detach().cpu().numpy()) for n, p in module.named_parameters()]
    out: dict[str, tuple[str, bool]] = {}
    taken: set[str] = set()
    for name, w in weights.items():
        for pname, p in params:
            if pname in taken:
                continue
            if p.shape == w.shape and np.array_equal(p, w):
                out[name] = (pname, False)
            elif w.ndim == 2 and p.shape == w.T.shape and np.array_equal(p, w.T):
                out[name] = (pname, True)
            else:
                continue
            taken.add(pname)
            break
    return out


def finetune_codebooks(module: Any, tensors: Sequence[TunedTensor], images: np.ndarray, *,
                       epochs: int = 5, lr: float = 1e-3, batch: int = 32,
                       seconds: float = 60.0, seed: int = 0,
                       labels: np.ndarray | None = None) -> list[np.ndarray]:
    """Fine-tune shared centroids by distillation from the uncompressed module.

    The teacher is ``module`` itself with its dense weights; the student is the same
    module with each listed weight replaced by its codebook reconstruction
    (``torch.func.functional_call``), so the gradient reaching centroid ``k`` is the sum
    of the gradients of the weights assigned to it (paper eq. 3). Assignments, zeros
    and a reserved zero slot stay fixed; every other parameter is frozen. Loss: KL
    divergence when the outputs are probability rows (a softmax head), else mean
    squared error on the outputs; with ``labels``, plus the cross-entropy to the true
    class (the paper retrains on the labeled training set; the teacher term keeps the
    compressed model close to the original where labels are few). Adam, learning rate
    ``lr`` times each layer's centroid spread.

    Args:
        module: a torch.nn.Module computing the same function as the ONNX model
            (it is not modified).
        tensors: the shared layers to tune.
        images: float32 (N, C, H, W) preprocessed images.
        labels: optional int (N,) class indices of ``images``.
        epochs, batch: passes over the images and images per step.
        seconds: wall-clock budget; training stops early when it runs out.

    Returns:
        one tuned codebook per tensor, same dtype and length as before.

    Raises:
        PassError: torch is missing or the images do not run through the module.
    """
    try:
        import torch
        from torch.func import functional_call
    except ImportError as e:  # pragma: no cover - torch is a dependency here
        raise PassError("centroid fine-tuning needs torch: pip install torch, or set finetune=False") from e

    module = copy.deepcopy(module).eval()
    x_all = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32))
    teacher = _teacher_outputs(module, x_all, batch)
    probs = bool((teacher >= 0).all() and torch.allclose(teacher.sum(1), torch.ones(len(teacher)), atol=1e-3))
    y_all = _class_labels(labels, len(x_all), teacher.shape[1])
    books = _Codebooks(tensors, lr)
    for p in module.parameters():
        p.requires_grad_(False)
    deadline = time.monotonic() + seconds
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x_all), generator=gen).split(batch):
            out = functional_call(module, books.weights(), (x_all[idx],))
            books.step(_loss(out, teacher[idx], probs, None if y_all is None else y_all[idx]))
            if time.monotonic() > deadline:
                break
        if time.monotonic() > deadline:
            break
    return books.tuned()


def _teacher_outputs(module: Any, x_all: "torch.Tensor", batch: int) -> "torch.Tensor":
    """The dense module's outputs on all images, in batches, without gradients.

    Raises:
        PassError: the images do not run through the module.
    """
    import torch

    with torch.no_grad():
        try:
            return torch.cat([module(x_all[i:i + batch]) for i in range(0, len(x_all), batch)])
        except Exception as e:
            raise PassError(f"the calibration images do not run through the torch module "
                            f"({error_line(e, limit=120, with_type=False)}): pass images of the "
                            f"model's input shape") from e


def _class_labels(labels: np.ndarray | None, n: int, classes: int) -> "torch.Tensor | None":
    """``labels`` as an int64 tensor (n,), or None.

    Raises:
        PassError: not one class index in [0, classes) per image.
    """
    import torch

    if labels is None:
        return None
    y_all = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    if y_all.shape != (n,) or int(y_all.min()) < 0 or int(y_all.max()) >= classes:
        raise PassError(f"labels must be {n} class indices in [0, {classes}): "
                        f"pass one label per calibration image")
    return y_all


def _loss(out: "torch.Tensor", ref: "torch.Tensor", probs: bool, y: "torch.Tensor | None") -> "torch.Tensor":
    """KL(teacher || student) for probability rows, else MSE; plus cross-entropy with labels."""
    import torch

    if probs:
        loss = torch.nn.functional.kl_div(torch.log(out.clamp_min(1e-12)), ref, reduction="batchmean")
    else:
        loss = torch.nn.functional.mse_loss(out, ref)
    if y is not None:
        logp = torch.log(out.clamp_min(1e-12)) if probs else torch.log_softmax(out, 1)
        loss = loss + torch.nn.functional.nll_loss(logp, y)
    return loss


class _Codebooks:
    """The trainable centroids of each tuned tensor (a reserved zero slot stays fixed),
    their Adam optimizer (step ``lr`` times each layer's largest |centroid|), and the
    dense weights they make: ``codebook[labels]`` scattered into the non-zero positions."""

    def __init__(self, tensors: Sequence[TunedTensor], lr: float) -> None:
        import torch

        self.tensors = tensors
        self.free, self.fixed, self.index, self.pos = [], [], [], []
        for t in tensors:
            cb = torch.from_numpy(t.shared.codebook.astype(np.float32))
            start = 1 if t.shared.zero_slot else 0
            self.free.append(torch.nn.Parameter(cb[start:].clone()))
            self.fixed.append(cb[:start])
            self.index.append(torch.from_numpy(t.shared.labels))
            self.pos.append(torch.from_numpy(t.positions))
        groups = []
        for p in self.free:
            spread = float(p.detach().abs().max()) if p.numel() else 1.0
            groups.append({"params": [p], "lr": lr * max(spread, 1e-8)})
        self.opt = torch.optim.Adam(groups)

    def dense(self, i: int) -> "torch.Tensor":
        """Tensor ``i``'s weight as its torch parameter holds it (transposed if need be)."""
        import torch

        t = self.tensors[i]
        cb = torch.cat([self.fixed[i], self.free[i]])
        flat = torch.zeros(int(np.prod(t.shape)), dtype=torch.float32)
        flat = flat.index_put((self.pos[i],), cb[self.index[i]])
        w = flat.reshape(t.shape)
        return w.T if t.transpose else w

    def weights(self) -> dict[str, "torch.Tensor"]:
        """{parameter name: dense weight} for ``torch.func.functional_call``."""
        return {t.param: self.dense(i) for i, t in enumerate(self.tensors)}

    def step(self, loss: "torch.Tensor") -> None:
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()

    def tuned(self) -> list[np.ndarray]:
        """The codebooks now, each in its original dtype."""
        import torch

        return [torch.cat([self.fixed[i], self.free[i].detach()]).numpy().astype(t.shared.codebook.dtype)
                for i, t in enumerate(self.tensors)]
