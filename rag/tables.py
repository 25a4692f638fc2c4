"""Tables to text a cell at a time with its column: one line a row, "Header: value; ...".

Every reader of tabular content uses this one rule: sheets and CSV files (rag.formats),
tables in .docx (rag.formats), HTML (rag.markup) and PDF (rag.pdf). The first row with any
value holds the headers (a column without one is named by its letter); each row's line is
marked with its number (from 1, the header row and empty rows counted), so a quoted cell
comes with its column and says where it was (``table: 2, row: 14``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time

from rag.errors import FileTooLargeError

MAX_SHEET_CELLS = 2_000_000  # cells (and rows) read from all tables of a file
# A table's caption is its own (HTML <caption>), else the line before it when that line is
# a title, not a sentence: this short, and not ending as a sentence ends.
MAX_CAPTION_CHARS = 120
_SENTENCE_ENDS = (".", "!", "?")


def cell(value: object) -> str:
    """A cell's value as text: whole floats without ".0", dates in ISO form, one line."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime) and value.time() == time(0):
        return value.date().isoformat()
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    return " ".join(str(value).split())


def column_name(i: int) -> str:
    """"A", "B", ..., "Z", "AA": a spreadsheet's name of column ``i`` (from 0)."""
    name = ""
    i += 1
    while i:
        i, rest = divmod(i - 1, 26)
        name = chr(65 + rest) + name
    return name


def caption(previous: str | None) -> str | None:
    """The caption a table takes from the line before it, when that line is a title."""
    text = " ".join((previous or "").split())
    if not text or len(text) > MAX_CAPTION_CHARS or text.endswith(_SENTENCE_ENDS):
        return None
    return text


class RowLines:
    """Rows to lines under one cell cap for the whole file."""

    def __init__(self, name: str) -> None:
        self.name, self.cells = name, 0

    def lines(self, rows: Iterable[Sequence[object]], label: str) -> Iterator[tuple[int, str]]:
        """(row number, "Header: value; Header: value") for each row after the headers."""
        headers: list[str] | None = None
        first, data = 0, False
        for number, row in enumerate(rows, 1):
            self.cells += len(row) + 1
            if self.cells > MAX_SHEET_CELLS:
                raise FileTooLargeError(f"{self.name}: more than {MAX_SHEET_CELLS} cells "
                                        f"(in {label}); split the file")
            values = [cell(v) for v in row]
            if not any(values):
                continue
            if headers is None:
                headers, first = values, number
                continue
            data = True
            names = [headers[i] if i < len(headers) and headers[i] else column_name(i)
                     for i in range(len(values))]
            yield number, "; ".join(f"{h}: {v}" for h, v in zip(names, values, strict=True)
                                    if v)
        if headers is not None and not data:  # a header row alone is still text
            yield first, " | ".join(h for h in headers if h)
