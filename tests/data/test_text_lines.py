"""Rendered lines of real text: what they hold, that a seed fixes them, and that the real
recognizer zoo:ppocr-rec reads them."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pytest

from edgeopt.data.text_lines import line_fonts, source_words, text_lines
from edgeopt.errors import DataError

from support import installed, one_line


def test_the_words_are_the_language_reference_in_order():
    words = source_words()
    assert len(words) > 50_000
    assert all(w.isascii() and w.isprintable() and " " not in w and len(w) <= 20 for w in words)
    assert not any(set(w) & set('"*|') for w in words)  # pydoc's markup is removed
    joined = " ".join(words)
    # A sentence of the "assert" topic, as the reference writes it (literal quotes removed).
    assert "Assert statements are a convenient way to insert debugging assertions into a program:" in joined


def test_lines_are_real_text_at_the_recognizers_input_size():
    images, texts = text_lines(64, seed=0)
    assert len(images) == len(texts) == 64 and images.labels is None
    assert images.names[:2] == ["line-00000", "line-00001"]
    assert all(img.shape == (48, 320, 3) and img.dtype == np.uint8 for img in images.images)
    joined = " " + " ".join(source_words()) + " "
    for text in texts:
        assert text and text == text.strip() and "  " not in text
        assert f" {text} " in joined  # consecutive words of the source
    chars = set("".join(texts))
    assert chars & set(string.digits) and chars & set(".,:;()[]")
    # Ink on paper: every line has dark strokes on a lighter background.
    for img in images.images:
        gray = img.mean(axis=2)
        assert np.percentile(gray, 90) - gray.min() > 60
    assert len({img.tobytes() for img in images.images}) == 64


def test_a_seed_fixes_the_lines():
    a_images, a_texts = text_lines(6, seed=3)
    b_images, b_texts = text_lines(6, seed=3)
    assert a_texts == b_texts
    assert all(np.array_equal(x, y) for x, y in zip(a_images.images, b_images.images))
    # Line i depends only on (seed, i): a longer set starts with the same lines.
    longer_images, longer_texts = text_lines(8, seed=3)
    assert longer_texts[:6] == a_texts and np.array_equal(longer_images.images[5], a_images.images[5])
    assert text_lines(6, seed=4)[1] != a_texts


def test_other_sizes_and_fonts():
    images, texts = text_lines(4, seed=0, size=(32, 200), size_range=(18, 24))
    assert all(img.shape == (32, 200, 3) for img in images.images)
    names = [Path(p).name for p in line_fonts()]
    assert "DejaVuSans.ttf" in names and "DejaVuSansMono.ttf" in names
    assert all(n.startswith(("DejaVu", "STIXGeneral")) for n in names)  # never Computer Modern


@pytest.mark.parametrize("kwargs, needle", [
    ({"n": 0}, "n must be >= 1"),
    ({"size_range": (30, 60)}, "must satisfy 8 <= smallest <= largest <= the line height 48"),
    ({"size": (48, 100)}, "a line 100 px wide cannot hold words at 38 px"),
])
def test_bad_arguments_are_one_line(kwargs, needle):
    with pytest.raises(DataError) as e:
        text_lines(**kwargs)
    assert needle in one_line(e)


@pytest.mark.slow
@pytest.mark.skipif(not installed("rapidocr-onnxruntime"), reason="needs rapidocr-onnxruntime (make setup)")
def test_ppocr_rec_reads_the_lines():
    import edgeopt
    from edgeopt.evaluate import tasks
    from edgeopt.evaluate.runner import predict_outputs

    model = edgeopt.load_model("zoo:ppocr-rec")
    images, texts = text_lines(64, seed=2)
    outputs = predict_outputs(model, "ort", images)
    score = tasks.make("sequence", model).score(outputs, outputs, texts)
    # Measured: CER 3.1% to the true strings, 54 of 64 lines read exactly.
    assert score.original < 5.0 and score.details["exact_match_original"] > 75.0
