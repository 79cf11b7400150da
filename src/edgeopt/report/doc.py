"""A report as data: a title and a list of blocks (headings, paragraphs, tables with a
chosen row and rejected rows, code, images, warnings), rendered to Markdown by
:mod:`edgeopt.report.markdown` and to a self-contained HTML page by
:mod:`edgeopt.report.html`, so the two formats of one report always say the same thing.

Text in blocks may carry the two inline marks both formats share: ``**bold**`` and
```code```; everything else is plain text (the HTML renderer escapes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence, Union

RowKind = Literal["chosen", "rejected", "stopped", "muted"]
KIND_LABELS = {"chosen": "chosen", "rejected": "rejected (hover a row for its reason)",
               "stopped": "failed or stopped early", "muted": "repeat"}
"""What each row colour means, unless a table says otherwise (:attr:`Table.labels`)."""


def plural(n: int, word: str) -> str:
    """"1 thread", "2 threads"."""
    return f"{n} {word}" + ("" if n == 1 else "s")


@dataclass(frozen=True)
class RowMark:
    """How a table row is shown: ``chosen`` (highlighted), ``rejected`` (outside a
    constraint: coloured, with its reason), ``stopped`` (failed or stopped early) or
    ``muted`` (dimmed: a repeat, a layer fused into another); ``reason`` is shown on
    hover in HTML."""

    kind: RowKind
    reason: str = ""


@dataclass(frozen=True)
class Heading:
    text: str


@dataclass(frozen=True)
class Paragraph:
    """Lines of one paragraph (Markdown: hard line breaks; HTML: one <p> each)."""

    lines: Sequence[str]


@dataclass(frozen=True)
class Bullets:
    items: Sequence[str]


@dataclass(frozen=True)
class Table:
    """A table.

    Attributes:
        columns: header cells; rows: body cells (strings with the inline marks).
        marks: one :class:`RowMark` or None per row, or empty (no row marked).
        legend: a note under the table (HTML only: Markdown has no colours, the cells
            say it); the colours used are explained after it with ``labels``.
        labels: {row kind: what its colour means here}, over :data:`KIND_LABELS`.
        wrap: names of the columns whose cells may wrap (prose, or several numbers);
            the others never wrap, so an identifier or a number is never cut.
    """

    columns: Sequence[str]
    rows: Sequence[Sequence[str]]
    marks: Sequence[RowMark | None] = ()
    legend: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    wrap: Sequence[str] = ()

    def __post_init__(self) -> None:
        if self.marks and len(self.marks) != len(self.rows):
            raise ValueError(f"{len(self.marks)} row marks for {len(self.rows)} rows")

    def label(self, kind: str) -> str:
        """What the colour of ``kind`` rows means in this table."""
        return self.labels.get(kind, KIND_LABELS[kind])

    def mark(self, i: int) -> RowMark | None:
        """The mark of row ``i`` (None: a plain row)."""
        return self.marks[i] if self.marks else None


@dataclass(frozen=True)
class Preformatted:
    """Verbatim lines (a log); ``language`` names the code in them ("" for none)."""

    lines: Sequence[str]
    language: str = ""


@dataclass(frozen=True)
class Image:
    """A PNG written beside the report: Markdown links it by file name, HTML embeds its
    bytes (the page stands alone)."""

    path: Path
    alt: str


@dataclass(frozen=True)
class Alert:
    """A statement the reader must not miss (a slow runtime, estimated roofs)."""

    text: str


Block = Union[Heading, Paragraph, Bullets, Table, Preformatted, Image, Alert]


@dataclass
class Document:
    """A report: its title (the page's <h1>) and its blocks in order."""

    title: str
    blocks: list[Block] = field(default_factory=list)
