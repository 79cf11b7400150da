"""Terminal tables as data, rendered so that no identifier or number is ever cut.

A :class:`ConsoleTable` is a title, columns of a kind (``name``: an identifier such as
``zoo:seednet-digits``, ``fp32@openvino`` or a layer name; ``number``; ``text``: free text
such as a reason or a description), rows of cells and notes. :func:`render` picks a layout
for the console it is given:

- **grid** (a terminal wide enough): Rich's table; name and number columns are exactly as
  wide as their widest cell, so they never wrap or truncate; only text columns wrap. When
  the text does not fit either, long text cells move to numbered footnotes under the table.
- **stacked** (the grid does not fit, but would without its first name column, e.g. long
  candidate labels or layer names at 80 columns): each row's name on a line of its own,
  its other cells on the next line under the header.
- **records** (a terminal narrower than that): one block per row, the row's
  first name on its own line, then ``column: value`` lines; lines are never cut by us
  (a value longer than the terminal is wrapped by the terminal, not truncated).
- **TSV** (stdout is not a terminal: piped, redirected, a CI log): ``# title``, a header
  line, one tab-separated line per row, then the notes as ``# ...`` lines. Chosen over the
  record layout because one line per row is what the tools a pipe feeds expect: ``grep
  fp32@openvino`` returns the whole row, ``cut -f1,5``, ``awk -F'\\t'``, ``sort -t$'\\t'``
  and spreadsheets read it as is, and a reader of a CI log still sees every value whole
  next to a header. No Rich markup or colour is written (only plain text).

The same table serialises to JSON (:func:`table_dict`, rows as objects keyed by column
name; number cells as JSON numbers where the displayed text is one), which is what the
commands' ``--json`` prints through :class:`Printer`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal, NamedTuple, Sequence, Union

from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table
from rich.text import Text

from .json_output import emit

Kind = Literal["name", "number", "text"]

TEXT_MIN = 24
"""Narrowest a wrapped text column may get (cells) before its long cells become footnotes."""

FOOTNOTE_AT = 24
"""Text cells longer than this (cells) move to footnotes when the grid needs the room."""


class Styled(NamedTuple):
    """A piece of a cell with a Rich style (``"bold"``, ``"yellow"``); the style is shown
    on a terminal only, the text everywhere."""

    text: str
    style: str


Cell = Union[str, Styled, tuple]  # a tuple: pieces (str or Styled) shown one after the other


@dataclass(frozen=True)
class Column:
    """A column: its header and kind (name and number cells are never wrapped or cut)."""

    name: str
    kind: Kind = "number"


@dataclass
class ConsoleTable:
    """A table as data.

    Attributes:
        title: one line above the table.
        columns: the columns, in order.
        rows: one list of cells per row, as many as columns (a cell: str, Styled, or a
            tuple of them; "\\n" in a cell starts a new line in the grid, "; " elsewhere).
        notes: lines under the table (each a str, Styled, or a tuple of them, as a cell).
        before: lines above the title (what the table compares, e.g. "A = a.json").
        row_lines: rule between the grid's rows (for cells of several lines).
    """

    title: str
    columns: list[Column]
    rows: list[list[Cell]] = field(default_factory=list)
    notes: list[Cell] = field(default_factory=list)
    before: list[str] = field(default_factory=list)
    row_lines: bool = False

    def add_row(self, *cells: Cell) -> None:
        """Append a row; fewer cells than columns are padded with "" (an empty cell)."""
        if len(cells) > len(self.columns):
            raise ValueError(f"{len(cells)} cells for {len(self.columns)} columns in {self.title!r}")
        self.rows.append([*cells, *[""] * (len(self.columns) - len(cells))])


def columns(*specs: str | tuple[str, Kind]) -> list[Column]:
    """Columns from names (kind number) or (name, kind) pairs: ``columns(("layer", "name"), "MACs")``."""
    return [Column(s) if isinstance(s, str) else Column(*s) for s in specs]


def plain(cell: Cell) -> str:
    """The text of a cell (or note) without its styles."""
    if isinstance(cell, Styled):
        return cell.text
    if isinstance(cell, tuple):
        return "".join(plain(p) for p in cell)
    return str(cell)


def _flat(cell: Cell) -> str:
    """The cell on one line, tabs removed: what TSV, records and JSON show."""
    return plain(cell).replace("\t", " ").replace("\n", "; ")


def _rich(cell: Cell) -> Text:
    if isinstance(cell, Styled):
        return Text(cell.text, style=cell.style)
    if isinstance(cell, tuple):
        return Text.assemble(*((p.text, p.style) if isinstance(p, Styled) else str(p) for p in cell))
    return Text(str(cell))


def _width(cell: Cell) -> int:
    return max((cell_len(line) for line in plain(cell).split("\n")), default=0)


# --- layouts ----------------------------------------------------------------------------

def render(tables: ConsoleTable | Iterable[ConsoleTable], console: Console) -> None:
    """Print tables on ``console`` in the layout it calls for (see the module docstring):
    TSV when it is not a terminal, else the grid when it fits ``console.width``, else the
    stacked grid when that fits, else records."""
    for i, table in enumerate([tables] if isinstance(tables, ConsoleTable) else list(tables)):
        if i:
            console.print()
        if not console.is_terminal:
            _print_plain(console, _tsv_lines(table))
        elif not (_print_grid(table, console) or _print_stacked(table, console)):
            _print_records(table, console)


class _Raw:
    """A line written exactly as given: no markup, no tab expansion, no cropping."""

    def __init__(self, line: str) -> None:
        self.line = line

    def __rich_console__(self, console: Console, options: Any) -> Iterable[Segment]:
        yield Segment(self.line)
        yield Segment.line()


def _print_plain(console: Console, lines: Iterable[str]) -> None:
    for line in lines:
        console.print(_Raw(line), crop=False)


def _tsv_lines(table: ConsoleTable) -> list[str]:
    lines = [f"# {line}" for line in [*table.before, table.title] if line]
    lines.append("\t".join(c.name for c in table.columns))
    lines += ["\t".join(_flat(c) for c in row) for row in table.rows]
    return lines + [f"# {plain(n)}" for n in table.notes]


def _print_grid(table: ConsoleTable, console: Console) -> bool:
    """Print the grid if it fits the console (trying full headers, wrapped headers, then
    long text as footnotes); False when nothing fits."""
    for wrap_headers in (False, True):
        for footnotes in (False, True):
            rows, notes = _footnoted(table) if footnotes else (table.rows, [])
            grid = _grid(table, rows, console, wrap_headers)
            if Measurement.get(console, console.options.update_width(10**6), grid).maximum <= console.width:
                _print_heading(table, console)
                _free_text_columns(table, grid)
                console.print(grid)
                _print_notes(console, [*notes, *table.notes])
                return True
    return False


def _grid(table: ConsoleTable, rows: list[list[Cell]], console: Console, wrap_headers: bool) -> Table:
    """The Rich table with name and number columns fixed at their widest cell (and header,
    or its longest word with ``wrap_headers``) and text columns at their minimum (so that
    measuring it gives the narrowest width the grid can take)."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 1, 0, 0),
                 show_lines=table.row_lines)
    for i, col in enumerate(table.columns):
        cells = [row[i] for row in rows]
        widest = max((_width(c) for c in cells), default=0)
        if col.kind == "text":
            width = min(max(widest, cell_len(col.name) if not wrap_headers else _longest_word(col.name)), TEXT_MIN)
        else:
            header = _longest_word(col.name) if wrap_headers else cell_len(col.name)
            width = max(widest, header, 1)
        grid.add_column(Text(col.name, style="bold"), width=width, justify="right" if col.kind == "number" else "left",
                        overflow="fold", no_wrap=False)
    for row in rows:
        grid.add_row(*(_rich(c) for c in row))
    return grid


def _free_text_columns(table: ConsoleTable, grid: Table) -> None:
    """Let text columns take the room left (they were fixed at their minimum to measure;
    Rich narrows only them, the others having a fixed width, when the console is tight)."""
    for col, column in zip(table.columns, grid.columns):
        if col.kind == "text":
            column.width = None


def _longest_word(text: str) -> int:
    return max((cell_len(w) for w in text.split()), default=0)


def _footnoted(table: ConsoleTable) -> tuple[list[list[Cell]], list[str]]:
    """The rows with each text cell longer than FOOTNOTE_AT replaced by "[n]", and the
    footnotes "[n] text" (the same text once, under one number)."""
    numbers: dict[str, int] = {}
    rows = []
    for row in table.rows:
        cells = []
        for col, cell in zip(table.columns, row):
            text = _flat(cell)
            if col.kind == "text" and cell_len(text) > FOOTNOTE_AT:
                n = numbers.setdefault(text, len(numbers) + 1)
                cells.append(f"[{n}]")
            else:
                cells.append(cell)
        rows.append(cells)
    return rows, [f"[{n}] {text}" for text, n in numbers.items()]


def _print_heading(table: ConsoleTable, console: Console) -> None:
    """The lines before the table and its title (bold), wrapped to the console's width
    (the title is not the grid's: Rich would wrap it to the grid's width)."""
    for line in table.before:
        console.print(Text(line), highlight=False)
    if table.title:
        console.print(Text(table.title, style="bold"), highlight=False)


def _print_notes(console: Console, notes: Sequence[Cell]) -> None:
    for note in notes:
        console.print(_rich(note), highlight=False)


def _print_stacked(table: ConsoleTable, console: Console) -> bool:
    """The grid with each row's first name on a line of its own, the other cells on the
    next line under their headers (long text as footnotes): what a long candidate label or
    layer name leaves room for; False when even that does not fit."""
    head = next((i for i, c in enumerate(table.columns) if c.kind == "name"), None)
    if head is None:
        return False
    rows, footnotes = _footnoted(table)
    rest = [i for i in range(len(table.columns)) if i != head]
    widths = {i: max([cell_len(table.columns[i].name), *(_width(row[i]) for row in rows)]) for i in rest}
    if 2 + sum(widths.values()) + 2 * (len(rest) - 1) > console.width:
        return False

    def line(cells: list[Text]) -> Text:
        parts: list = ["  "]
        for n, (i, cell) in enumerate(zip(rest, cells)):
            pad = " " * (widths[i] - cell.cell_len)
            right = table.columns[i].kind == "number"
            parts += [pad, cell] if right else [cell, pad]
            parts.append("  " if n < len(rest) - 1 else "")
        return Text.assemble(*parts)

    _print_heading(table, console)
    console.print(Text(table.columns[head].name, style="bold"), soft_wrap=True)
    header = line([Text(table.columns[i].name, style="bold") for i in rest])
    console.print(header, soft_wrap=True)
    console.print("─" * header.cell_len, highlight=False)
    for row in rows:
        console.print(_rich(row[head]), soft_wrap=True, highlight=False)
        console.print(line([_rich(_flat(row[i]) if "\n" in plain(row[i]) else row[i]) for i in rest]),
                      soft_wrap=True, highlight=False)
    _print_notes(console, [*footnotes, *table.notes])
    return True


def _print_records(table: ConsoleTable, console: Console) -> None:
    """One block per row: the row's first name cell in bold, then ``column: value`` lines."""
    _print_heading(table, console)
    head = next((i for i, c in enumerate(table.columns) if c.kind == "name"), 0)
    label = max(cell_len(c.name) for c in table.columns) + 1
    for row in table.rows:
        console.print(Text.assemble(_rich(row[head]), style="bold"), soft_wrap=True)
        for i, (col, cell) in enumerate(zip(table.columns, row)):
            if i != head and _flat(cell):
                key = f"{col.name}:".ljust(label)
                console.print(Text.assemble(f"  {key} ", _rich(_flat(cell) if "\n" in plain(cell) else cell)),
                              soft_wrap=True)
    _print_notes(console, table.notes)


# --- JSON --------------------------------------------------------------------------------

_NUMBER = re.compile(r"[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?([eE][+-]?\d+)?")


def json_value(cell: Cell, kind: Kind) -> Any:
    """A cell as JSON: a number cell whose text is a number ("49,371,200", "0.943") as a
    JSON number, "-" or "" as null, anything else as its text. A styled mark after a
    number (a tuple cell such as ("0.943", Styled("!", "yellow")): the noisy mark) is left
    out: the table's notes say which rows it marks."""
    if (kind == "number" and isinstance(cell, tuple) and cell and isinstance(cell[0], str)
            and all(isinstance(p, Styled) for p in cell[1:])):
        cell = cell[0]
    text = _flat(cell).strip()
    if kind == "number":
        if text in ("", "-"):
            return None
        if _NUMBER.fullmatch(text):
            number = text.replace(",", "")
            return int(number) if re.fullmatch(r"[+-]?\d+", number) else float(number)
    return text


def table_dict(table: ConsoleTable) -> dict[str, Any]:
    """``{"title", "columns": [{"name", "kind"}], "rows": [{column: value}], "notes": [str]}``."""
    return {"title": table.title, "before": list(table.before),
            "columns": [{"name": c.name, "kind": c.kind} for c in table.columns],
            "rows": [{c.name: json_value(cell, c.kind) for c, cell in zip(table.columns, row)} for row in table.rows],
            "notes": [plain(n) for n in table.notes]}


class Printer:
    """Where a command's output goes: tables and lines on ``console``, or with ``as_json``
    collected into one JSON document that :meth:`close` prints on stdout (a command run
    under :func:`~edgeopt.report.json_output.json_stdout` sends everything else to stderr).

    The document: ``{"command": str, "tables": [table_dict ...], "notes": [str], **extra}``.
    """

    def __init__(self, console: Console, *, as_json: bool = False, command: str = "") -> None:
        self.console, self.as_json = console, as_json
        self.doc: dict[str, Any] = {"command": command, "tables": [], "notes": []}
        self._printed = False  # a blank line goes between a table and what came before it

    def table(self, *tables: ConsoleTable) -> None:
        """Show (or collect) tables."""
        if self.as_json:
            self.doc["tables"] += [table_dict(t) for t in tables]
            return
        if self._printed:
            self.console.print()
        render(tables, self.console)
        self._printed = True

    def line(self, text: Cell) -> None:
        """A line outside any table (a verdict, "wrote FILE"): printed ("# " first when
        piped, as the tables' notes), or with ``as_json`` a note of the document."""
        self._printed = True
        if self.as_json:
            self.doc["notes"].append(plain(text))
        elif self.console.is_terminal:
            self.console.print(_rich(text), highlight=False)
        else:  # piped: a comment line, so that `grep -v '^#'` leaves the header and rows
            _print_plain(self.console, [f"# {plain(text)}"])

    def add(self, **extra: Any) -> None:
        """Data for the JSON document only (e.g. the full profile beside its table)."""
        self.doc.update(extra)

    def close(self) -> None:
        """Print the JSON document (with ``as_json``); nothing otherwise."""
        if self.as_json:
            emit(json.dumps(self.doc, indent=2, default=str) + "\n")
