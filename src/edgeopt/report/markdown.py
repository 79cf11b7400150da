"""A :class:`~edgeopt.report.doc.Document` as GitHub-flavoured Markdown (images linked
by file name: they are written beside the report)."""

from __future__ import annotations

from .doc import Bullets, Document, Heading, Image, Paragraph, Preformatted, Table, Alert


def _cell(s: str) -> str:
    # A "|" inside a cell would end it.
    return s.replace("|", "\\|")


def _table(t: Table) -> list[str]:
    out = ["| " + " | ".join(t.columns) + " |", "|" + "---|" * len(t.columns)]
    return out + ["| " + " | ".join(_cell(c) for c in r) + " |" for r in t.rows]


def _block(b) -> list[str]:
    if isinstance(b, Heading):
        return [f"## {b.text}"]
    if isinstance(b, Paragraph):
        return [line + "  " for line in b.lines]
    if isinstance(b, Bullets):
        return [f"- {item}" for item in b.items]
    if isinstance(b, Preformatted):
        return [f"```{b.language}", *b.lines, "```"]
    if isinstance(b, Image):
        return [f"![{b.alt}]({b.path.name})"]
    if isinstance(b, Alert):
        return [f"> **Warning:** {b.text}"]
    if isinstance(b, Table):
        return _table(b)
    raise TypeError(f"not a report block: {type(b).__name__}")


def render_markdown(doc: Document) -> str:
    """The document as Markdown: "# title", then each block followed by a blank line."""
    out = [f"# {doc.title}", ""]
    for b in doc.blocks:
        out += _block(b) + [""]
    return "\n".join(out).rstrip() + "\n"
