"""Office and spreadsheet files to text, one function per format, and the zip checks.

Each reader goes through a maintained library (python-docx, python-pptx, openpyxl, the
stdlib's csv) and returns its text, title or None, and where each part of the text was (a
slide, a sheet's row, a heading path: marks at line starts of the raw text, which
rag.documents turns into offsets in the cleaned text); e-books and mail are in rag.mail.
Hostile input is refused before the library sees it: a zip's entry count and unpacked
size are read from its directory (Python's zipfile never unpacks an entry past the size
recorded there), its XML parts may not declare entities (defusedxml), and sheets are read
under a cell cap.
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, iterparse

from rag.errors import FileTooLargeError, RagError, UnreadableFileError, UnsupportedFileError
from rag.markup import Extracted, RawMark, decode
from rag.tables import RowLines, caption
from rag.types import Locator

MAX_ZIP_ENTRIES = 10_000
MAX_ZIP_BYTES = 200_000_000  # unpacked, all entries together
# XML elements in all the parts of a .docx or .pptx (python-docx and python-pptx hold each
# part as a tree, about 250 bytes an element): a 5-million-character document of short
# formatted runs has about 3 million; 5.3 million one-letter paragraphs, 16 million.
MAX_XML_ELEMENTS = 4_000_000
_TREE_KINDS = frozenset({"docx", "pptx"})
ZIP_KINDS = {"word/document.xml": "docx", "ppt/presentation.xml": "pptx",
             "xl/workbook.xml": "xlsx"}
ZIP_SUFFIXES = frozenset({".docx", ".pptx", ".xlsx", ".epub"})
_XML_SUFFIXES = (".xml", ".rels", ".opf", ".ncx", ".xhtml", ".htm", ".html", ".svg")


class Text:
    """Lines of extracted text that refuse to grow past the document's character cap."""

    def __init__(self, name: str, max_chars: int) -> None:
        self.name, self.max_chars, self.size, self.lines = name, max_chars, 0, list[str]()
        self.marks: list[RawMark] = []

    def mark(self, locator: Locator) -> None:
        """The next line added, and those after it, are at ``locator``."""
        self.marks.append((self.size, locator))

    def add(self, line: str) -> None:
        self.size += len(line) + 1
        if self.size > self.max_chars:
            raise FileTooLargeError(f"{self.name}: more than {self.max_chars} characters of "
                                    "text; split the document")
        self.lines.append(line)

    def rows(self, reader: RowLines, rows: Iterable[Sequence[object]], label: str,
             where: Locator) -> None:
        """A table's or sheet's rows (rag.tables), each marked ``where`` with its row."""
        for number, line in reader.lines(rows, label):
            self.mark(replace(where, row=number))
            self.add(line)

    def table(self, reader: RowLines, rows: Iterable[Sequence[object]], number: int,
              title: str | None, where: Locator) -> None:
        """Table ``number`` of the document, then what follows it is at ``where`` again."""
        self.rows(reader, rows, f"table {number}", replace(where, table=number, caption=title))
        self.mark(where)

    def text(self) -> str:
        return "\n".join(self.lines)

    def extracted(self, title: str | None) -> Extracted:
        return Extracted(self.text(), title, tuple(self.marks))


def _check_xml(zf: zipfile.ZipFile, info: zipfile.ZipInfo, name: str) -> None:
    """No entity declarations or external references in the part's prolog (where a DTD
    lives); parsing stops at the root element, so this costs one read buffer a part."""
    try:
        with zf.open(info) as part:
            for _ in iterparse(part, events=("start",)):
                break
    except DefusedXmlException as exc:
        raise UnreadableFileError(f"{name}: {info.filename} declares XML entities "
                                  f"({type(exc).__name__}); refused as a possible entity "
                                  "bomb") from None
    except (ParseError, zipfile.BadZipFile, OSError, EOFError) as exc:
        raise UnreadableFileError(f"{name}: {info.filename} is not well-formed XML "
                                  f"({str(exc)[:200]})") from None


def zip_kind(data: bytes, name: str, suffix: str) -> str:
    """"docx", "pptx", "xlsx" or "epub", after the zip passed the bomb checks."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        if suffix in ZIP_SUFFIXES:
            raise UnreadableFileError(f"{name}: a damaged {suffix} file ({exc}); re-save it "
                                      "and retry") from None
        raise UnsupportedFileError(f"{name}: the content is a zip archive (docx, xlsx, epub, "
                                   "...) that cannot be opened") from None
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_ENTRIES:
            raise FileTooLargeError(f"{name}: {len(infos)} entries in the zip is over the "
                                    f"limit of {MAX_ZIP_ENTRIES}")
        unpacked = sum(i.file_size for i in infos)
        if unpacked > MAX_ZIP_BYTES:
            raise FileTooLargeError(f"{name}: its zip entries unpack to {unpacked} bytes, over "
                                    f"the limit of {MAX_ZIP_BYTES} (a zip bomb?)")
        names = {i.filename for i in infos}
        kind = next((k for part, k in ZIP_KINDS.items() if part in names), None)
        if kind is None and "mimetype" in names and \
                zf.read("mimetype").strip() == b"application/epub+zip":
            kind = "epub"
        if kind is None:
            raise UnsupportedFileError(f"{name}: the content is a zip archive that is not a "
                                       "Word (.docx), PowerPoint (.pptx), Excel (.xlsx) or "
                                       "EPUB file")
        xml = [i for i in infos if i.filename.lower().endswith(_XML_SUFFIXES)]
        for info in xml:
            _check_xml(zf, info, name)
        if kind in _TREE_KINDS:
            _count_elements(zf, xml, name)
    return kind


def _count_elements(zf: zipfile.ZipFile, parts: Iterable[zipfile.ZipInfo], name: str) -> None:
    """Refuse more than MAX_XML_ELEMENTS start tags, counted in the unpacked bytes as they
    stream (never a tree): the count stops at the limit, in a fraction of a second."""
    seen = 0
    for info in parts:
        try:
            with zf.open(info) as part:
                while block := part.read(1 << 20):
                    seen += block.count(b"<") - block.count(b"</") - block.count(b"<?") \
                        - block.count(b"<!")
                    if seen > MAX_XML_ELEMENTS:
                        raise FileTooLargeError(f"{name}: more than {MAX_XML_ELEMENTS} XML "
                                                "elements; split the document")
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            raise UnreadableFileError(f"{name}: {info.filename} cannot be unpacked "
                                      f"({str(exc)[:200]})") from None


def guarded(kind: str, name: str, read: Callable[[], Extracted]) -> Extracted:
    try:
        return read()
    except RagError:
        raise
    except Exception as exc:  # hostile files make the libraries raise almost anything
        raise UnreadableFileError(f"{name}: not a readable {kind} file ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None


def docx_text(data: bytes, name: str, max_chars: int) -> Extracted:
    """Paragraphs and tables in body order, a table a row a line with its column headers
    (rag.tables); a blank line before each heading, whose path ("Installation > Linux")
    marks its section."""
    def read() -> Extracted:
        from docx import Document as open_docx
        from docx.table import Table

        doc, out = open_docx(io.BytesIO(data)), Text(name, max_chars)
        reader, tables = RowLines(name), 0
        path: list[str] = []
        previous: str | None = None
        for block in doc.iter_inner_content():
            if isinstance(block, Table):
                tables += 1
                where = Locator(heading=" > ".join(path) or None)
                out.table(reader, ([c.text for c in row.cells] for row in block.rows),
                          tables, caption(previous), where)
                previous = None
                continue
            # The style's id ("Heading2"), read from the paragraph itself: Paragraph.style
            # looks the style up in styles.xml, 1 ms a paragraph.
            style = block._p.style or ""
            if style.startswith(("Heading", "Title")) and out.lines:
                out.add("")
            level = style.removeprefix("Heading")
            if level.isdigit() and block.text.strip():
                path[int(level) - 1:] = [" ".join(block.text.split())]
                out.mark(Locator(heading=" > ".join(path)))
            out.add(block.text)
            previous = block.text if block.text.strip() else previous
        return out.extracted(doc.core_properties.title or None)

    return guarded("Word", name, read)


def pptx_text(data: bytes, name: str, max_chars: int) -> Extracted:
    """Each slide's text frames and tables in shape order, then its notes."""
    def read() -> Extracted:
        from pptx import Presentation

        deck, out = Presentation(io.BytesIO(data)), Text(name, max_chars)
        first_title = None
        for number, slide in enumerate(deck.slides, 1):
            if out.lines:
                out.add("")
            out.mark(Locator(slide=number))
            title = slide.shapes.title
            if first_title is None and title is not None and title.has_text_frame:
                first_title = title.text_frame.text.strip() or None
            for line in _shape_lines(slide.shapes):
                out.add(line)
            if slide.has_notes_slide and slide.notes_slide.notes_text_frame is not None:
                notes = slide.notes_slide.notes_text_frame.text.strip()
                if notes:
                    out.add(notes)
        return out.extracted(deck.core_properties.title or first_title)

    return guarded("PowerPoint", name, read)


def _shape_lines(shapes: Iterable[Any], depth: int = 0) -> Iterator[str]:
    for shape in shapes:
        if shape.shape_type is not None and shape.shape_type == 6 and depth < 8:  # a group
            yield from _shape_lines(shape.shapes, depth + 1)
        elif shape.has_text_frame:
            yield shape.text_frame.text
        elif getattr(shape, "has_table", False):
            for row in shape.table.rows:
                yield " | ".join(_unique(c.text.strip() for c in row.cells))


def _unique(cells: Iterable[str]) -> list[str]:
    """Merged cells repeat their text in every cell they span: keep it once."""
    out: list[str] = []
    for c in cells:
        if c and (not out or out[-1] != c):
            out.append(c)
    return out


def xlsx_text(data: bytes, name: str, max_chars: int) -> Extracted:
    """Every sheet: its name on a line, then one line a row with its column headers."""
    def read() -> Extracted:
        from openpyxl import load_workbook

        book = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        try:
            out, reader = Text(name, max_chars), RowLines(name)
            for sheet in book.worksheets:
                if out.lines:
                    out.add("")
                out.mark(Locator(sheet=sheet.title))
                out.add(sheet.title)
                sheet.reset_dimensions()  # a declared size is not trusted: no padding cells
                out.rows(reader, sheet.iter_rows(values_only=True), f"sheet {sheet.title!r}",
                         Locator(sheet=sheet.title))
            return out.extracted(book.properties.title or _stem(name))
        finally:
            book.close()

    return guarded("Excel", name, read)


def csv_text(data: bytes, name: str, max_chars: int) -> Extracted:
    """One line a row with its header names; the delimiter is sniffed (, ; tab |)."""
    text = decode(data, name)
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(text[:8192], ",;\t|")
    except csv.Error:
        dialect = csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
    out = Text(name, max_chars)
    try:
        out.rows(RowLines(name), csv.reader(io.StringIO(text), dialect), "the table", Locator())
    except csv.Error as exc:
        raise UnreadableFileError(f"{name}: not a readable CSV file ({exc})") from None
    return out.extracted(_stem(name))


def _stem(name: str) -> str:
    """A table's title: its file name (its first line is a row, not a heading)."""
    return name.rsplit(".", 1)[0] or name
