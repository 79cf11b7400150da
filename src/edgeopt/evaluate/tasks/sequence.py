"""Sequence recognition (CTC text lines): the character error rate of the decoded strings.

Each sample's score output (N, T, C) is decoded greedily, best path (Graves et al. 2006,
"Connectionist Temporal Classification", ICML, section 3.2): the most likely class at each
of the T steps, repeats collapsed, blanks dropped. The classes are named by the model's
character dictionary, laid out as PaddleOCR lays it (``ppocr/postprocess/rec_postprocess.py``
``CTCLabelDecode``, which rapidocr's ``ch_ppocr_rec/utils.py`` copies): class 0 is the
blank, then the dictionary's characters in file order, then a space class
(``use_space_char``). Without a ``charset`` option the dictionary is read where PaddleOCR's
ONNX export and rapidocr keep it: the model's metadata entry ``character``, one character a
line (so a PP-OCR recognizer needs no option at all).

The character error rate (CER) is the Levenshtein distance (insertions, deletions and
substitutions of one character each; Levenshtein 1966) summed over the samples, divided by
the summed length of the reference strings, in %: the corpus-level CER of jiwer and of the
OCR literature. Distances come from rapidfuzz.

Without labels the reference is the original's text: the metric is "CER vs the original's
text" and the drop is that CER, in points (0.5 by default). With labels (the N true
strings) the metric is "CER vs the ground truth" and the drop is the candidate's CER minus
the original's.
"""

from __future__ import annotations

from os import PathLike
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
from rapidfuzz.distance import Levenshtein

from ...errors import DataError
from ..._util.userfile import read_user_text
from .base import Evaluator, TaskScore, check_outputs
from .outputs import output_stats

if TYPE_CHECKING:
    from ...model import Model

# Where PaddleOCR's paddle2onnx export and rapidocr keep the dictionary (rapidocr's
# OrtInferSession.get_character_list reads this key and splits it into lines).
METADATA_KEY = "character"
_EXAMPLES = 5


def ctc_greedy_decode(scores: np.ndarray, blank: int = 0) -> list[list[int]]:
    """Best-path CTC decoding: per step the most likely class, repeats collapsed, blanks
    dropped (Graves et al. 2006, section 3.2).

    Args:
        scores: (N, T, C) class scores (probabilities, logits or log-probabilities: only
            the argmax per step matters), any real dtype.
        blank: index of the blank class in [0, C).

    Returns:
        per sample, the class indices it reads (blank excluded), in order.

    Raises:
        DataError: ``scores`` is not 3-D, or ``blank`` is not a class index.
    """
    scores = np.asarray(scores)
    if scores.ndim != 3:
        raise DataError(f"CTC scores of shape {scores.shape} are not (N, T, C): judge the recognizer's "
                        f"per-step class scores (option output)")
    if not 0 <= blank < scores.shape[2]:
        raise DataError(f"blank index {blank} is not one of the {scores.shape[2]} classes: pass blank in "
                        f"0..{scores.shape[2] - 1}")
    best = scores.argmax(axis=2)
    new = np.ones_like(best, dtype=bool)
    new[:, 1:] = best[:, 1:] != best[:, :-1]  # a repeat is the same class at the next step
    keep = new & (best != blank)
    return [row[k].tolist() for row, k in zip(best, keep)]


def character_error_rate(hypotheses: Sequence[Sequence], references: Sequence[Sequence]) -> tuple[float, int]:
    """Corpus-level CER, %: summed Levenshtein distances over summed reference lengths.

    Args:
        hypotheses, references: N strings (or N sequences of hashable tokens), paired.

    Returns:
        (CER in %, total edits). When every reference is empty the denominator is 1, so
        each inserted character costs 100 points.

    Raises:
        DataError: the counts differ.
    """
    if len(hypotheses) != len(references):
        raise DataError(f"{len(hypotheses)} decoded strings and {len(references)} references: pass one "
                        f"reference string per sample")
    edits = sum(Levenshtein.distance(h, r) for h, r in zip(hypotheses, references))
    length = sum(len(r) for r in references)
    return 100.0 * edits / max(length, 1), edits


def _edit_shares(hypotheses: Sequence[Sequence], references: Sequence[Sequence]) -> np.ndarray:
    """Each sample's share of the corpus CER, points: 100 * n * edits_i / total reference
    length, whose mean is :func:`character_error_rate` (the total length held fixed, as a
    bootstrap over samples of a ratio estimator does to first order)."""
    edits = np.array([Levenshtein.distance(h, r) for h, r in zip(hypotheses, references)], dtype=np.float64)
    return 100.0 * len(edits) * edits / max(sum(len(r) for r in references), 1)


def read_charset(path: str | PathLike) -> list[str]:
    """The characters of a PaddleOCR dictionary file, one a line (UTF-8, line ends removed,
    nothing else stripped: a line holding " " is the space character).

    Raises:
        DataError: the file is missing, not a regular file, too large or not UTF-8.
    """
    text = read_user_text(path, what="charset file", error=DataError, fix="save it as UTF-8, one character a line")
    return [line.removesuffix("\n").removesuffix("\r") for line in text.splitlines(keepends=True)]


def model_charset(model: "Model") -> list[str] | None:
    """The dictionary in the model's metadata (``character``, split into lines as rapidocr
    does), or None when there is none."""
    for prop in model.proto.metadata_props:
        if prop.key == METADATA_KEY:
            return prop.value.splitlines()
    return None


class SequenceEvaluator(Evaluator):
    """CER of greedy CTC decodings against the original's text (or the true strings).

    Options:
        output: name of the (N, T, C) score output (default: the first).
        charset: the dictionary without blank and space, a list of characters or the path
            of a one-character-a-line file (default: the model's ``character`` metadata;
            without either, texts are compared as sequences of class indices and labels
            cannot be read).
        blank: index of the blank class (default 0, PaddleOCR's; -1: the last class).
        space: True (default, PaddleOCR's ``use_space_char``) when a space class follows
            the dictionary's characters.
        strip: True (default) removes leading and trailing whitespace from the decoded
            texts and the labels before they are compared: a recognizer reads the paper
            around a line's words as spaces now and then, which carries no text.

    The classes are the charset (plus " " with ``space``) with the blank inserted at index
    ``blank``; their count must equal C.
    """

    task = "sequence"
    default_tolerance = 0.5
    summary = "CTC text lines: character error rate of the greedy-decoded strings vs the original's (or labels)"

    def __init__(self, model: "Model", options: dict | None = None) -> None:
        super().__init__(model, options)
        name = self.options.get("output")
        if name is not None and name not in model.output_names:
            raise DataError(f"sequence output {name!r} is not an output of {model.name}: choose one of "
                            f"{', '.join(model.output_names)}")
        self.index = 0 if name is None else model.output_names.index(name)
        blank = self.options.get("blank", 0)
        if isinstance(blank, bool) or not isinstance(blank, (int, np.integer)):
            raise DataError(f"the blank option {blank!r} is not a class index: pass an integer (0 for "
                            f"PaddleOCR's models, -1 for the last class)")
        self.blank = int(blank)
        charset = self.options.get("charset")
        if isinstance(charset, (str, PathLike)):
            charset = read_charset(charset)
        elif charset is None:
            charset = model_charset(model)
        self.charset = None if charset is None else [str(c) for c in charset]

    def blank_index(self, n_classes: int) -> int:
        """The blank's class index among ``n_classes`` (a negative ``blank`` counts from the
        end: -1 is the last class)."""
        return self.blank + n_classes if self.blank < 0 else self.blank

    def classes(self, n_classes: int) -> list[str] | None:
        """The name of each of the ``n_classes`` classes ("" for the blank), or None without
        a charset.

        Raises:
            DataError: the charset does not account for ``n_classes`` classes.
        """
        if self.charset is None:
            return None
        names = self.charset + ([" "] if self.options.get("space", True) else [])
        if len(names) + 1 != n_classes:
            space = " + a space" if self.options.get("space", True) else ""
            raise DataError(f"the charset has {len(self.charset)} characters{space} + the blank = "
                            f"{len(names) + 1} classes, but the output has {n_classes}: pass the model's own "
                            f"dictionary as charset (and space=False if it already holds the space)")
        blank = self.blank_index(n_classes)
        return names[:blank] + [""] + names[blank:]

    def decode(self, scores: np.ndarray) -> list:
        """Per sample the text read from (N, T, C) ``scores``: a string, or a tuple of class
        indices without a charset."""
        n_classes = np.shape(scores)[-1]
        paths = ctc_greedy_decode(scores, self.blank_index(n_classes))
        names = self.classes(n_classes)
        if names is None:
            return [tuple(p) for p in paths]
        texts = ["".join(names[i] for i in p) for p in paths]
        return [t.strip() for t in texts] if self.options.get("strip", True) else texts

    def _truth(self, labels: Any, n: int) -> list[str]:
        texts = [labels] if isinstance(labels, str) else list(labels)
        if len(texts) != n:
            raise DataError(f"{len(texts)} true strings for {n} samples: pass one string per sample")
        if self.charset is None:
            raise DataError(f"{self.model.name} has no character dictionary to read labels with: pass the "
                            f"charset option (a list or a one-character-a-line file)")
        texts = [str(t) for t in texts]
        return [t.strip() for t in texts] if self.options.get("strip", True) else texts

    def score(self, reference: Sequence[np.ndarray], candidate: Sequence[np.ndarray],
              labels: Any = None) -> TaskScore:
        ref, cand = check_outputs(reference, candidate)
        original, read = self.decode(ref[self.index]), self.decode(cand[self.index])
        n = len(original)
        vs_original, _ = character_error_rate(read, original)
        details: dict[str, Any] = {
            "samples": n, "cer_vs_original": vs_original,
            "exact_match_vs_original": 100.0 * sum(a == b for a, b in zip(read, original)) / n,
            "outputs": output_stats(self.model.output_names, ref, cand),
        }
        if labels is None:
            details["examples"] = [{"original": _show(o), "candidate": _show(c)}
                                   for o, c in zip(original, read) if o != c][:_EXAMPLES]
            return TaskScore(task=self.task, metric="CER vs the original's text", unit="%", value=vs_original,
                             drop=vs_original, drop_unit="points", details=details,
                             per_sample=_edit_shares(read, original))
        truth = self._truth(labels, n)
        cer_original, _ = character_error_rate(original, truth)
        cer, _ = character_error_rate(read, truth)
        details.update(
            cer_original=cer_original, cer=cer,
            exact_match_original=100.0 * sum(a == t for a, t in zip(original, truth)) / n,
            exact_match=100.0 * sum(a == t for a, t in zip(read, truth)) / n,
            examples=[{"truth": t, "original": o, "candidate": c}
                      for t, o, c in zip(truth, original, read) if c != t][:_EXAMPLES])
        return TaskScore(task=self.task, metric="CER vs the ground truth", unit="%", value=cer,
                         drop=max(0.0, cer - cer_original), drop_unit="points", original=cer_original,
                         details=details, per_sample=_edit_shares(read, truth) - _edit_shares(original, truth))

    def explain(self, score: TaskScore, tolerance: float) -> str:
        """The CER and what it is measured against, when the drop breaks the budget."""
        if score.drop <= tolerance:
            return ""
        if score.original is None:
            return (f"CER {score.value:.2f}% vs the original's text > {tolerance:g} points "
                    f"(--metric-tolerance)")
        return (f"CER {score.value:.2f}% vs the ground truth is {score.drop:.2f} points above the original's "
                f"{score.original:.2f}% > {tolerance:g} (--metric-tolerance)")

    def hopeless(self, reference: Sequence[np.ndarray], quick: Sequence[np.ndarray], quick_index: np.ndarray,
                 labels: Any, tolerance: float) -> str:
        """Edits on the subset stay edits on the whole set: when they alone (beyond every
        edit the original makes to the truth, with labels) already exceed the budget's share
        of the whole set's reference characters, no other sample can save the candidate."""
        original = self.decode(np.asarray(reference[self.index]))
        read = self.decode(np.asarray(quick[self.index]))
        idx = [int(i) for i in quick_index]
        if labels is None:
            _, edits = character_error_rate(read, [original[i] for i in idx])
            excess, length = edits, sum(len(o) for o in original)
        else:
            truth = self._truth(labels, len(original))
            _, edits = character_error_rate(read, [truth[i] for i in idx])
            _, original_edits = character_error_rate(original, truth)
            excess, length = edits - original_edits, sum(len(t) for t in truth)
        bound = 100.0 * excess / max(length, 1)
        if bound > tolerance:
            return (f"hopeless: {excess} more character edits on {len(idx)} of the {len(original)} held-out "
                    f"samples already make a CER drop of {bound:.2f} points > {tolerance:g}")
        return ""


def _show(text: Any) -> str:
    """A decoded text for reports: the string, or the class indices without a charset."""
    return text if isinstance(text, str) else " ".join(map(str, text))
