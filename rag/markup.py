"""Text out of markup and raw bytes: UTF-8/UTF-16 decoding, a streaming HTML reader and
Markdown's heading paths.

Shared by the readers of plain files (rag.documents) and of containers that hold HTML
(EPUB chapters, e-mail bodies; rag.formats).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import NamedTuple

from rag.errors import FileTooLargeError, UnreadableFileError
from rag.tables import RowLines, caption
from rag.types import Locator

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# Tags one HTML document may open: a 10 MB page of text holds about 100,000; 900,000 nested
# <div>s cost Python's parser 10 µs each, so the count stops them early.
MAX_HTML_ELEMENTS = 300_000
# (offset of a line start in the raw text, where that line and the next ones are)
RawMark = tuple[int, Locator]


class Extracted(NamedTuple):
    """What a reader gives: the raw text (before clean_text), the title, the marks."""

    text: str
    title: str | None
    marks: tuple[RawMark, ...] = ()


def decode(data: bytes, name: str) -> str:
    """UTF-8, or UTF-16 when the file starts with its byte-order mark (Windows editors)."""
    utf16 = data.startswith(UTF16_BOMS)
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{name}: not valid {'UTF-16' if utf16 else 'UTF-8'} text (byte {exc.start}); "
            "convert it to UTF-8 and retry") from None


_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "title"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul", "title",
    "body", "html"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "source", "track", "wbr"})


class _Table:
    """A <table> being read: its rows of cells, its <caption>, the line before it."""

    def __init__(self, previous: str | None) -> None:
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None
        self.caption: list[str] | None = None
        self.title = caption(previous)
        self.nested = 0  # tables inside one of its cells: their text is the cell's

    def end_cell(self) -> None:
        if self.cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None


class _TextExtractor(HTMLParser):
    """Text outside script/style/head, a line per block element, a table a row a line with
    its headers (rag.tables); the <title> or first <h1>.

    A streaming parser, not a tree: a hostile upload of a million nested tags costs
    linear time and no memory beyond its text.
    """

    def __init__(self, name: str) -> None:
        super().__init__(convert_charrefs=True)
        self.name, self.elements = name, 0
        self.lines: list[str] = []
        self._block: list[str] = []
        self._pre = 0
        self.skipping: list[str] = []
        self.title: str | None = None
        self._capture: str | None = None
        self._captured: list[str] = []
        self._heading: tuple[int, int] | None = None  # (level, its first line) while open
        self._path: list[str] = []
        self.marks: list[tuple[int, Locator]] = []  # (index in lines, where it and the next are)
        self._table: _Table | None = None
        self.tables, self._rows = 0, RowLines(name)

    def flush(self) -> None:
        if self._block:
            text = "".join(self._block)
            if self._pre:  # preformatted: keep its lines
                self.lines.extend(line.strip() for line in text.splitlines())
            else:  # HTML collapses whitespace, line breaks included
                self.lines.append(" ".join(text.split()))
            self._block = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements += 1
        if self.elements > MAX_HTML_ELEMENTS:
            raise FileTooLargeError(f"{self.name}: more than {MAX_HTML_ELEMENTS} HTML elements; "
                                    "split the document")
        if self._table is not None and not self.skipping and self._table_tag(tag, True):
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag in _VOID_TAGS:
            return
        if tag == "table" and not self.skipping:
            self._table = _Table(next((x for x in reversed(self.lines) if x), None))
            return
        self._pre += tag == "pre"
        if self._capture is None and self.skipping in ([], ["head"]) and (
                tag == "title" or (tag == "h1" and self.title is None)):
            self._capture, self._captured = tag, []
        if tag in _SKIPPED_TAGS:
            self.skipping.append(tag)
        if _HEADINGS.fullmatch(tag) and not self.skipping and self._heading is None:
            self._heading = (int(tag[1]), len(self.lines))

    def _table_tag(self, tag: str, start: bool) -> bool:
        """A tag inside a table: cells, rows and its caption shape it, the rest are text
        of the cell they are in. True when the tag is handled."""
        t = self._table
        assert t is not None
        if tag == "table" and start:
            t.nested += 1
        elif tag == "table" and t.nested:
            t.nested -= 1
        elif tag == "table":
            t.end_cell()
            self._end_table(t)
            return True
        if t.nested:
            if t.cell is not None:
                t.cell.append(" ")
            return tag != "script" and tag != "style"
        if tag == "caption":
            t.caption = [] if start else t.caption
            if not start and t.caption is not None:
                t.title = " ".join("".join(t.caption).split()) or t.title
                t.caption = None
        elif tag == "tr":
            t.end_cell()
            if start:
                t.rows.append([])
        elif tag in ("td", "th"):
            t.end_cell()
            t.cell = [] if start else None
        elif t.cell is not None:
            t.cell.append(" ")  # <br>, <p> inside a cell
        return tag not in _SKIPPED_TAGS

    def _end_table(self, t: _Table) -> None:
        """The table's rows as lines; what follows is at the heading path again."""
        self._table = None
        self.tables += 1
        where = Locator(heading=" > ".join(self._path) or None)
        for number, line in self._rows.lines(t.rows, f"table {self.tables}"):
            self.marks.append((len(self.lines), Locator(
                heading=where.heading, table=self.tables, row=number, caption=t.title)))
            self.lines.append(line)
        self.marks.append((len(self.lines), where))

    def handle_endtag(self, tag: str) -> None:
        if self._table is not None and not self.skipping and self._table_tag(tag, False):
            return
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag == "pre" and self._pre:
            self._pre -= 1
        if self._heading is not None and tag == f"h{self._heading[0]}":
            level, first = self._heading
            text = " ".join(" ".join(self.lines[first:]).split())
            if text:
                self._path[level - 1:] = [text]
                self.marks.append((first, Locator(heading=" > ".join(self._path))))
            self._heading = None
        if self.skipping and tag == self.skipping[-1]:
            self.skipping.pop()
        if tag == self._capture:
            text = " ".join(" ".join(self._captured).split())
            if text and (tag == "title" or self.title is None):
                self.title = text
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._captured.append(data)
        if self.skipping:
            return
        t = self._table
        if t is None:
            self._block.append(data)
        elif t.caption is not None:
            t.caption.append(data)
        elif t.cell is not None:
            t.cell.append(data)


_HEADINGS = re.compile(r"h[1-6]")


def html_text(data: bytes, name: str) -> Extracted:
    """A line per block; each h1-h6 marks its section with the heading path."""
    parser = _TextExtractor(name)
    parser.feed(decode(data, name))
    parser.close()
    if parser._table is not None:  # never closed: the rows read so far
        parser._table.end_cell()
        parser._end_table(parser._table)
    parser.flush()
    starts, lines, size = [], [], 0  # starts[i]: offset of the first kept line from line i
    for line in parser.lines:
        starts.append(size)
        if line:
            lines.append(line)
            size += len(line) + 1
    starts.append(size)
    marks = tuple((starts[i], locator) for i, locator in parser.marks)
    return Extracted("\n".join(lines), parser.title, marks)


_ATX = re.compile(r" {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")


def markdown_marks(text: str) -> tuple[RawMark, ...]:
    """Each ATX heading ("## Linux") marks its section with the heading path; lines in
    fenced code blocks are not headings. (Underlined "Setext" headings are not read.)"""
    marks: list[RawMark] = []
    path: list[str] = []
    fence, offset = "", 0
    for line in text.split("\n"):
        body = line.rstrip("\r")
        opened = _FENCE.match(body)
        if opened and (not fence or opened.group(1).startswith(fence)):
            fence = "" if fence else opened.group(1)[:3]
        elif not fence and (heading := _ATX.fullmatch(body)) and heading.group(2).strip():
            path[len(heading.group(1)) - 1:] = [" ".join(heading.group(2).split())]
            marks.append((offset, Locator(heading=" > ".join(path))))
        offset += len(line) + 1
    return tuple(marks)
