"""The report Document rendered as Markdown and as a self-contained HTML page."""

from __future__ import annotations

import base64
import pytest

from edgeopt.report.doc import Alert, Bullets, Document, Heading, Image, Paragraph, Preformatted, RowMark, Table
from edgeopt.report.html import inline, render_html
from edgeopt.report.markdown import render_markdown


@pytest.fixture()
def doc(tmp_path) -> Document:
    from PIL import Image as PILImage

    png = tmp_path / "plot.png"
    PILImage.new("RGB", (4, 3), (0, 90, 200)).save(png)
    table = Table(("#", "label", "why not chosen"),
                  [["0", "fp32@ort t2 b1", "slower"], ["1", "int8@ort t2 b1", "drop 3 > budget | 1"],
                   ["2", "int8-nncf@openvino t2 b1", "**chosen**"]],
                  [None, RowMark("rejected", "drop 3 > budget | 1"), RowMark("chosen", "the chosen model")],
                  legend="Hover a row.", labels={"rejected": "over a budget"}, wrap=("why not chosen",))
    return Document("a <report>", [Paragraph(["Model `zoo:a<b>` is **fast**."]), Heading("Verdict"),
                                   Alert("runs **0.21x** as fast on `ort`"), Bullets(["x & y"]), table,
                                   Preformatted(["print(`x`)  # <not html>"], "python"), Image(png, "the plot")])


def test_inline_marks_become_html_and_text_is_escaped():
    assert inline("run `pip install 'edgeopt[openvino]'` **now** <b>") == \
        "run <code>pip install 'edgeopt[openvino]'</code> <strong>now</strong> &lt;b&gt;"
    assert inline("a ` b") == "a ` b"  # an unpaired backtick is text


def test_html_page_stands_alone(doc, tmp_path):
    page = render_html(doc)
    embedded = base64.b64encode((tmp_path / "plot.png").read_bytes()).decode()
    assert f'<img src="data:image/png;base64,{embedded}" alt="the plot">' in page
    assert "<title>a &lt;report&gt;</title>" in page and "<h1>a &lt;report&gt;</h1>" in page
    assert "<p>Model <code>zoo:a&lt;b&gt;</code> is <strong>fast</strong>.</p>" in page
    assert '<p class="warning"><strong>Warning:</strong> runs <strong>0.21x</strong> as fast on <code>ort</code></p>' \
        in page
    assert "<li>x &amp; y</li>" in page
    # Code is verbatim: its backticks and angle brackets are the code's.
    assert '<pre><code class="language-python">print(`x`)  # &lt;not html&gt;</code></pre>' in page
    for external in ("http:", "https:", "//", "@import", "<script", "<link"):
        assert external not in page.replace("<!doctype html>", "")


def test_html_rows_are_marked_with_their_reason_and_only_named_columns_wrap(doc):
    page = render_html(doc)
    assert "<tr><td>0</td><td>fp32@ort t2 b1</td><td class=\"wrap\"><span>slower</span></td></tr>" in page
    assert ('<tr class="rejected" title="drop 3 &gt; budget | 1"><td>1</td><td>int8@ort t2 b1</td>'
            '<td class="wrap"><span>drop</span> <span>3</span> <span>&gt;</span>') in page
    assert '<tr class="chosen" title="the chosen model"><td>2</td>' in page
    assert "<span><strong>chosen</strong></span>" in page
    # The legend names the colours used, with this table's words for them.
    assert ('<p class="legend">Hover a row.<span class="swatch chosen"></span>chosen'
            '<span class="swatch rejected"></span>over a budget</p>') in page


def test_markdown_says_the_same(doc):
    md = render_markdown(doc)
    assert md.startswith("# a <report>\n\nModel `zoo:a<b>` is **fast**.  \n\n## Verdict\n\n")
    assert "> **Warning:** runs **0.21x** as fast on `ort`\n\n- x & y\n" in md
    assert "| 1 | int8@ort t2 b1 | drop 3 > budget \\| 1 |" in md
    assert "```python\nprint(`x`)  # <not html>\n```" in md
    assert md.endswith("![the plot](plot.png)\n")


def test_row_marks_must_match_the_rows():
    with pytest.raises(ValueError, match="1 row marks for 2 rows"):
        Table(("a",), [["1"], ["2"]], [None])
