"""Quality of a candidate model's outputs against the reference (original fp32) outputs.

Formulas (all over the N evaluated samples; ref = reference, cand = candidate; sums in
float64):

- top-1 agreement (%) = 100 * mean_i[argmax ref_i == argmax cand_i]. argmax is the
  same on logits and on their softmax, so it does not matter which a model outputs, as
  long as reference and candidate are the same graph output.
- top-1 accuracy (%) = 100 * mean_i[argmax out_i == label_i], for ref and for cand.
- cosine similarity = mean_i <ref_i, cand_i> / (|ref_i| |cand_i|), each sample
  flattened; 1.0 when both are all-zero, 0.0 when exactly one is.
- SNR (dB) = 10 * log10(sum ref^2 / sum (ref - cand)^2), the signal-to-quantization-
  noise ratio (SQNR); +inf when the outputs are identical, -inf when ref is all-zero
  but cand is not. Same as ``_snr`` in PyTorch's
  ``torch/testing/_internal/common_quantized.py`` (20 log10 of the norm ratio); PPQ's
  ``torch_snr_error`` (``ppq/quantization/measure/norm.py``) reports the inverse power
  ratio, not in dB.
- max abs error = max |ref - cand| over all elements.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np

from ..errors import DataError


@dataclass(frozen=True)
class QualityReport:
    """How close candidate outputs are to reference outputs.

    Attributes:
        n: number of samples compared.
        task: "classification", "detection" or "other".
        top1_agreement: % of samples where the candidate's argmax equals the reference's
            (None unless classification).
        cosine: mean per-sample cosine similarity of the flattened outputs (1 = same
            direction).
        snr_db: signal-to-noise ratio in dB (+inf when identical).
        max_abs_error: largest absolute element difference (output units).
        accuracy_ref: reference top-1 accuracy vs labels in % (None without labels).
        accuracy: candidate top-1 accuracy vs labels in % (None without labels).
    """

    n: int
    task: str
    top1_agreement: float | None
    cosine: float
    snr_db: float
    max_abs_error: float
    accuracy_ref: float | None = None
    accuracy: float | None = None

    def to_dict(self) -> dict:
        """Strict-JSON-ready dict: non-finite floats become the strings "inf", "-inf", "nan"."""
        return {k: _json_float(v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "QualityReport":
        """Inverse of :meth:`to_dict`."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: (float(v) if v in ("inf", "-inf", "nan") else v)
                      for k, v in d.items() if k in names})


def _json_float(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
    return v


def _as_2d(x: np.ndarray, what: str) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 0 or x.shape[0] == 0:
        raise DataError(f"{what} outputs have shape {x.shape}: pass an array (N, ...) with N >= 1")
    return x.reshape(x.shape[0], -1).astype(np.float64)


def top1_agreement(ref: np.ndarray, cand: np.ndarray) -> float:
    """% of rows whose argmax matches; ref and cand of shape (N, K) (or (N, K, 1, 1))."""
    r, c = _as_2d(ref, "reference"), _as_2d(cand, "candidate")
    return float(100.0 * np.mean(r.argmax(1) == c.argmax(1)))


def top1_accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """% of rows whose argmax equals the label; outputs (N, K), labels (N,) int.

    Raises:
        DataError: the label count differs from N or a label is outside [0, K).
    """
    o = _as_2d(outputs, "model")
    y = np.asarray(labels).reshape(-1)
    if y.shape[0] != o.shape[0]:
        raise DataError(f"{y.shape[0]} labels for {o.shape[0]} outputs: pass one label per image")
    if y.size and (y.min() < 0 or y.max() >= o.shape[1]):
        raise DataError(
            f"labels span {int(y.min())}..{int(y.max())} but the model has {o.shape[1]} "
            f"classes: map labels to class indices 0..{o.shape[1] - 1}"
        )
    return float(100.0 * np.mean(o.argmax(1) == y))


def cosine_similarity(ref: np.ndarray, cand: np.ndarray) -> float:
    """Mean over samples of the cosine of the flattened per-sample outputs, in [-1, 1]."""
    r, c = _as_2d(ref, "reference"), _as_2d(cand, "candidate")
    nr, nc = np.linalg.norm(r, axis=1), np.linalg.norm(c, axis=1)
    dot = np.einsum("ij,ij->i", r, c)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = dot / (nr * nc)
    cos = np.where((nr == 0) & (nc == 0), 1.0, np.where((nr == 0) | (nc == 0), 0.0, cos))
    return float(np.mean(cos))


def snr_db(ref: np.ndarray, cand: np.ndarray) -> float:
    """10 log10(sum ref^2 / sum (ref - cand)^2) in dB; +inf if equal, -inf if ref is zero."""
    r, c = _as_2d(ref, "reference"), _as_2d(cand, "candidate")
    signal = float(np.sum(r * r))
    noise = float(np.sum((r - c) ** 2))
    if noise == 0.0:
        return math.inf
    if signal == 0.0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)


def max_abs_error(ref: np.ndarray, cand: np.ndarray) -> float:
    """max |ref - cand| over all elements (output units)."""
    return float(np.max(np.abs(_as_2d(ref, "reference") - _as_2d(cand, "candidate"))))


def compare(ref_outputs: np.ndarray, cand_outputs: np.ndarray, labels=None,
            task: str = "classification") -> QualityReport:
    """All quality metrics of candidate outputs against reference outputs.

    Args:
        ref_outputs: reference model outputs, (N, K) for a classifier, (N, ...) otherwise.
        cand_outputs: candidate outputs of the same shape, from the same graph output.
        labels: (N,) class indices for top-1 accuracy, or None.
        task: "classification" computes top-1 agreement and accuracy; any other task
            only the output-similarity metrics (labels are then ignored).

    Returns:
        a QualityReport (formulas in this module's docstring).

    Raises:
        DataError: the shapes differ, N is 0, or labels do not fit the outputs.
    """
    ref, cand = np.asarray(ref_outputs), np.asarray(cand_outputs)
    if ref.shape != cand.shape:
        raise DataError(
            f"reference outputs {ref.shape} and candidate outputs {cand.shape} differ in "
            f"shape: compare the same output of models run on the same images"
        )
    classify = task == "classification"
    acc_ref = acc = None
    if classify and labels is not None:
        acc_ref, acc = top1_accuracy(ref, labels), top1_accuracy(cand, labels)
    return QualityReport(
        n=int(ref.shape[0]) if ref.ndim else 0,
        task=task,
        top1_agreement=top1_agreement(ref, cand) if classify else None,
        cosine=cosine_similarity(ref, cand),
        snr_db=snr_db(ref, cand),
        max_abs_error=max_abs_error(ref, cand),
        accuracy_ref=acc_ref,
        accuracy=acc,
    )
