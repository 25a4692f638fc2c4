"""PDF files to text: the text layer, tables a row a line, scanned pages through OCR.

pypdf reads each page's text layer under the stream and content caps. A page whose
drawing holds ruling lines is read again by pdfplumber, which finds its tables: their rows
become lines "Header: value; ..." (rag.tables), placed among the page's other lines by
their height on the page. A page that holds an image and little or no text for its area
(rag.ocr.MIN_CHARS_PER_SQUARE_INCH) is a scan: it is rendered and read with OCR
(rag.ocr), and its mark says so, with the engine's confidence.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from typing import Any

from rag import ocr
from rag.errors import FileTooLargeError, UnreadableFileError
from rag.formats import Text
from rag.markup import Extracted
from rag.tables import RowLines, caption
from rag.types import Locator

MAX_PDF_PAGES = 5_000
# Decompressed bytes allowed per PDF stream (pypdf's own default is 75 MB), and per page's
# content: pypdf needs about 5 s a megabyte of drawing operators, and a text page holds
# 10-200 KB, so a 40 KB PDF of pages of millions of operators cannot burn minutes of CPU.
_PDF_STREAM_LIMIT = 20_000_000
MAX_PDF_PAGE_CONTENT = 1_000_000
# A drawn rectangle or line segment: a page without any has no ruled table to find.
_RULING = re.compile(rb"[\d.]\s+(?:re|l)\s")


@dataclass
class _Page:
    number: int
    text: str
    scanned: bool  # an image and too little text for its area
    ruled: bool  # draws rectangles or lines: it may hold a table


def _pages(data: bytes, name: str, max_chars: int) -> tuple[list[_Page], str | None]:
    from pypdf import PdfReader, apply_configuration

    pages: list[_Page] = []
    size = 0
    with apply_configuration(zlib_maximum_output_length=_PDF_STREAM_LIMIT,
                             lzw_maximum_output_length=_PDF_STREAM_LIMIT,
                             run_length_maximum_output_length=_PDF_STREAM_LIMIT):
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFileError(f"{name}: the PDF is encrypted; decrypt it and retry")
        if len(reader.pages) > MAX_PDF_PAGES:
            raise FileTooLargeError(f"{name}: {len(reader.pages)} pages is over the limit "
                                    f"of {MAX_PDF_PAGES}; split the PDF")
        for number, page in enumerate(reader.pages, 1):
            contents = page.get_contents()
            content = contents.get_data() if contents is not None else b""
            if len(content) > MAX_PDF_PAGE_CONTENT:
                raise FileTooLargeError(
                    f"{name}: page {number} holds {len(content)} bytes of drawing "
                    f"operators, over the limit of {MAX_PDF_PAGE_CONTENT}")
            text = page.extract_text() or ""
            size += len(text)
            if size > max_chars:
                raise FileTooLargeError(_too_much_text(name, max_chars))
            box = page.mediabox
            inches = float(box.width) * float(box.height) / 72 ** 2
            scanned = len(text.strip()) < ocr.MIN_CHARS_PER_SQUARE_INCH * inches \
                and _has_image(page)
            pages.append(_Page(number, text.strip(), scanned, bool(_RULING.search(content))))
        title = reader.metadata.title if reader.metadata else None
    return pages, str(title) if title else None


def _has_image(page: Any) -> bool:
    """The page draws an image XObject (what a scanner makes a page of)."""
    resources = page.get("/Resources")
    xobjects = resources.get_object().get("/XObject") if resources is not None else None
    if xobjects is None:
        return False
    return any(x.get_object().get("/Subtype") == "/Image"
               for x in xobjects.get_object().values())


def _too_much_text(name: str, max_chars: int) -> str:
    return f"{name}: more than {max_chars} characters of text; split the document"


def _ocr(data: bytes, name: str, pages: list[_Page], reader: ocr.PageReader
         ) -> dict[int, ocr.PageText]:
    scans = [p.number for p in pages if p.scanned]
    if not scans:
        return {}
    images = ocr.pdf_pages(data, scans, reader.options.dpi, name)
    return dict(zip(scans, reader.read(images, len(scans)), strict=True))


def _table_pages(data: bytes, ruled: list[int]) -> dict[int, list[tuple[str, Any]]]:
    """For the ruled pages holding tables: their lines and tables, top to bottom. A PDF
    that pdfplumber cannot read keeps pypdf's text (the tables' cells as runs of text)."""
    try:
        return _find_tables(data, ruled)
    except MemoryError:
        raise
    except Exception:  # pdfminer fails on some PDFs that pypdf reads: text without tables
        return {}


def _find_tables(data: bytes, ruled: list[int]) -> dict[int, list[tuple[str, Any]]]:
    import pdfplumber

    found: dict[int, list[tuple[str, Any]]] = {}
    with pdfplumber.open(io.BytesIO(data)) as pdf:
        for number in ruled:
            page = pdf.pages[number - 1]
            tables = page.find_tables()
            if not tables:
                page.close()
                continue
            rest = page
            for t in tables:
                rest = rest.outside_bbox(t.bbox)
            items: list[tuple[float, str, Any]] = [
                (line["top"], "line", line["text"]) for line in rest.extract_text_lines()]
            items += [(t.bbox[1], "table", t.extract()) for t in tables]
            found[number] = [(kind, value) for _, kind, value in
                             sorted(items, key=lambda item: (item[0], item[1] == "line"))]
            page.close()
    return found


def pdf_text(data: bytes, name: str, max_chars: int,
             reader: ocr.PageReader | None = None) -> Extracted:
    """Each page's text marked with its page (and OCR'd pages with their confidence);
    tables a row a line, numbered through the document."""
    try:
        pages, title = _pages(data, name, max_chars)
        read = _ocr(data, name, pages, reader) if reader is not None else {}
        out = Text(name, max_chars)
        ruled = [p.number for p in pages if p.ruled and not p.scanned and p.text]
        tables = _table_pages(data, ruled) if ruled else {}
    except (UnreadableFileError, FileTooLargeError):
        raise
    except Exception as exc:  # hostile PDFs make pypdf raise almost anything
        raise UnreadableFileError(f"{name}: not a readable PDF ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
    rows, count = RowLines(name), 0
    for page in pages:
        scan = read.get(page.number)
        if scan is not None and not scan.text.strip():
            scan = None  # OCR found nothing: what the text layer has, if anything
        text = scan.text.strip() if scan is not None else page.text
        if not text:
            continue
        if out.lines:
            out.add("")
        where = Locator(page=page.number)
        if scan is not None:
            where = Locator(page=page.number, ocr=True, confidence=scan.confidence)
        out.mark(where)
        if page.number not in tables:
            out.add(text)
            continue
        previous: str | None = None
        for kind, value in tables[page.number]:
            if kind == "line":
                out.add(value)
                previous = value
            else:
                count += 1
                out.table(rows, value, count, caption(previous), where)
                previous = None
    if not out.lines:
        if any(p.scanned for p in pages) and reader is None:
            raise UnreadableFileError(f"{name}: the PDF's pages are images without a text "
                                      "layer, and OCR is off (RAG_OCR=off or --no-ocr)")
        raise UnreadableFileError(f"{name}: the PDF has no text, not even read with OCR")
    return out.extracted(title)
