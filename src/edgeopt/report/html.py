"""A :class:`~edgeopt.report.doc.Document` as one self-contained HTML page.

Self-contained: images are embedded as base64 ``data:`` URIs, the style sheet is inline
and uses the reader's own fonts, and nothing is fetched (no CDN, no web fonts, no
script), so the file can be mailed alone and opened offline. Text is escaped; the inline
marks of the blocks (``**bold**``, ```code```) become <strong> and <code>.
Rows of a table marked chosen are highlighted, rejected ones coloured, with their reason
as the row's tooltip and the legend under the table.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from .doc import KIND_LABELS, Alert, Bullets, Document, Heading, Image, Paragraph, Preformatted, RowMark, Table

# Colours a reader with red-green colour blindness still tells apart by lightness, and a
# bar on the left of the chosen row for print-outs without colour.
STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:0 auto;
 padding:1.2em 1.2em;max-width:1320px;color:#1b1b1b;line-height:1.45;font-size:15px}
h1{font-size:1.6em;margin:0 0 .6em}h2{font-size:1.25em;margin:1.6em 0 .5em;border-bottom:1px solid #ddd}
p{margin:.35em 0}
code,pre{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.92em}
code{background:#f0f0f0;padding:0 .25em;border-radius:3px;white-space:nowrap}
pre{background:#f6f6f6;border:1px solid #e2e2e2;padding:.6em .8em;overflow-x:auto;white-space:pre}
pre code{background:none;padding:0;white-space:pre}
.scroll{overflow-x:auto;margin:.5em 0}
table{border-collapse:collapse;font-size:.92em}
th,td{border:1px solid #c8c8c8;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#eef1f5}
td{white-space:nowrap}td.wrap{white-space:normal}td.wrap span{white-space:nowrap}
tr.chosen td{background:#c9efc9;font-weight:600}tr.chosen td:first-child{box-shadow:inset 5px 0 0 #1e7a1e}
tr.rejected td{background:#fbdcdc}tr.stopped td{background:#fdf0cf}tr.muted td{color:#7a7a7a}
.legend{font-size:.85em;color:#444;margin:.2em 0 .8em}
.swatch{display:inline-block;width:.9em;height:.9em;border:1px solid #999;vertical-align:middle;margin:0 .3em 0 .8em}
.swatch.chosen{background:#c9efc9}.swatch.rejected{background:#fbdcdc}.swatch.stopped{background:#fdf0cf}
.swatch.muted{background:#fff;border-color:#ccc}
figure{margin:1em 0}figure img{display:block;max-width:100%;height:auto;border:1px solid #e2e2e2}
figcaption{font-size:.85em;color:#555}
.warning{background:#fff4d6;border-left:5px solid #d99a00;padding:.5em .8em;margin:.6em 0}
"""


def inline(text: str) -> str:
    """``text`` escaped for HTML, with ``**bold**`` as <strong> and ```code``` as <code>
    (no literal backtick or asterisk pair is left)."""
    s = html.escape(text, quote=False)
    s = re.sub(r"`([^`]+)`", r"<code>\1</code>", s)
    return re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", s)


def data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI.

    Raises:
        OSError: the file cannot be read.
    """
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _attr(s: str) -> str:
    return html.escape(s, quote=True)


# A mark whose text holds a space cannot be split into words.
_SPANNING_MARK = re.compile(r"`[^`]* [^`]*`|\*\*[^*]* [^*]*\*\*")


def _wrapping(cell: str) -> str:
    """A cell that may wrap between its words only: each word in a no-wrap span, so a
    number, an interval "[0.61-0.613]" or a layer name is never cut."""
    if _SPANNING_MARK.search(cell):
        return inline(cell)
    return " ".join(f"<span>{inline(w)}</span>" for w in cell.split(" "))


def _row(cells, mark: RowMark | None, wrap: set[int]) -> str:
    attrs = "" if mark is None else f' class="{mark.kind}"' + (f' title="{_attr(mark.reason)}"' if mark.reason else "")
    tds = "".join(f'<td class="wrap">{_wrapping(c)}</td>' if i in wrap else f"<td>{inline(c)}</td>"
                  for i, c in enumerate(cells))
    return f"<tr{attrs}>{tds}</tr>"


def table(t: Table) -> str:
    """The table, rows marked by their :class:`RowMark`, in a horizontally scrolling box
    (only the columns named in ``t.wrap`` wrap), then the legend of the marks used."""
    wrap = {i for i, c in enumerate(t.columns) if c in t.wrap}
    head = "".join(f"<th>{inline(c)}</th>" for c in t.columns)
    body = "".join(_row(r, t.mark(i), wrap) for i, r in enumerate(t.rows))
    out = f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    kinds = [k for k in KIND_LABELS if any(m is not None and m.kind == k for m in t.marks)]
    if kinds or t.legend:
        swatches = "".join(f'<span class="swatch {k}"></span>{inline(t.label(k))}' for k in kinds)
        out += f'<p class="legend">{inline(t.legend)}{swatches}</p>'
    return out


def _block(b) -> str:
    if isinstance(b, Heading):
        return f"<h2>{inline(b.text)}</h2>"
    if isinstance(b, Paragraph):
        return "".join(f"<p>{inline(line)}</p>" for line in b.lines)
    if isinstance(b, Bullets):
        return "<ul>" + "".join(f"<li>{inline(i)}</li>" for i in b.items) + "</ul>"
    if isinstance(b, Preformatted):
        lang = f' class="language-{_attr(b.language)}"' if b.language else ""
        return f"<pre><code{lang}>" + html.escape("\n".join(b.lines), quote=False) + "</code></pre>"
    if isinstance(b, Image):
        return (f'<figure><img src="{data_uri(b.path)}" alt="{_attr(b.alt)}">'
                f"<figcaption>{inline(b.alt)} ({_attr(b.path.name)})</figcaption></figure>")
    if isinstance(b, Alert):
        return f'<p class="warning"><strong>Warning:</strong> {inline(b.text)}</p>'
    if isinstance(b, Table):
        return table(b)
    raise TypeError(f"not a report block: {type(b).__name__}")


def render_html(doc: Document) -> str:
    """The document as a standalone HTML5 page (UTF-8; no external resource).

    Raises:
        OSError: an image file cannot be read.
    """
    title = _attr(doc.title)
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{title}</title><style>{STYLE}</style></head><body>"
            f"<h1>{inline(doc.title)}</h1>\n" + "\n".join(_block(b) for b in doc.blocks) + "\n</body></html>\n")
