"""Office, e-book, spreadsheet and mail files: text out of real files, and hostile ones refused.

Every file is made by the library that reads it (tests/formats_corpus.py).
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest

from eval.bench.hostile import paragraph_bomb_docx
from rag.documents import parse_bytes, sniff_format
from rag.errors import FileTooLargeError, UnreadableFileError, UnsupportedFileError
from rag.formats import MAX_XML_ELEMENTS, MAX_ZIP_BYTES, MAX_ZIP_ENTRIES
from rag.tables import MAX_SHEET_CELLS
from rag.types import Locator, locate
from tests import formats_corpus as fc

pytestmark = pytest.mark.unit


def test_docx_paragraphs_headings_and_tables() -> None:
    doc = parse_bytes(fc.docx_bytes(), "handbook.docx", "h", "h")
    assert doc.title == "Agent handbook"
    assert doc.text.startswith("Installation\nThe agent runs on every supported server.\n\n"
                               "Linux\nOn Linux the agent is installed with apt install")
    # A table a row a line with its headers, in body order, marked with its number, row,
    # caption (the line before it) and heading; what follows is at its heading again.
    row = doc.text.index("Port: 8443; Protocol: HTTPS\n\nWindows\n")
    assert locate(doc.marks, row) == Locator(heading="Installation > Linux", table=1, row=2,
                                             caption="Open these ports:")
    assert locate(doc.marks, doc.text.index("Windows")) == Locator(
        heading="Installation > Windows")


def test_pptx_slides_in_order_with_notes() -> None:
    doc = parse_bytes(fc.pptx_bytes(), "deck.pptx", "d", "d")
    assert doc.title == "Quarterly review"
    assert doc.text.split("\n\n") == [
        "Quarterly review\nRevenue grew in every region.\nOpen with the map.",
        "Retention\nThe churn rate in the third quarter fell to 4.2 percent.",
        "Next steps\nHire two support engineers in Berlin.\nAsk for budget."]


def test_xlsx_and_csv_rows_carry_their_column_names() -> None:
    doc = parse_bytes(fc.xlsx_bytes(), "staff.xlsx", "s", "s")
    assert doc.title == "staff"
    assert doc.text == ("People\nName: Alice Moreau; City: Lisbon; Started: 2019\n"
                        "Name: Bruno Silva; City: Porto; Started: 2021\n\n"
                        "Stock\nItem: Kettles; Count: 40\nItem: Cups; Count: 1200")
    table = parse_bytes(fc.csv_bytes(), "prices.csv", "p", "p")
    assert table.title == "prices"
    assert table.text.splitlines()[0] == "Tea: Jasmine pearl; Origin: Fujian; Price: 18.50"
    semicolons = parse_bytes(b"a;b\n1;\n;2\n", "x.csv", "x", "x")
    assert semicolons.text == "a: 1\nb: 2"


def test_epub_chapters_in_reading_order_without_the_table_of_contents(tmp_path: Path) -> None:
    doc = parse_bytes(fc.epub_bytes(tmp_path), "book.epub", "b", "b")
    assert doc.title == "The Lighthouse Ledger"
    assert doc.text.startswith("Chapter 1\nThe keeper counted")
    assert doc.text.index("Chapter 2") < doc.text.index("Chapter 3")


def test_eml_headers_body_and_attachments() -> None:
    doc = parse_bytes(fc.eml_bytes(), "mail.eml", "m", "m")
    assert doc.title == "Warehouse audit"
    assert doc.text.startswith("Subject: Warehouse audit\nFrom: Dana Reyes <dana@example.com>\n"
                               "To: ops@example.com\nDate: Mon, 03 Mar 2025 09:30:00 +0000\n\n"
                               "Hello team,\n\nThe warehouse audit starts on March 14")
    assert "Attachment: handbook-copy.docx\nInstallation\n" in doc.text  # read as a .docx
    # An image attachment is read with OCR when it is on (a parse without a reader: off).
    assert doc.text.endswith("Attachment: logo.png\n(not indexed: an image, and OCR is off "
                             "(RAG_OCR=off or --no-ocr))")
    at = doc.text.index("Installation")  # inside the attachment: its locator names it
    assert locate(doc.marks, at) == Locator(heading="Attachment: handbook-copy.docx")
    assert locate(doc.marks, doc.text.index("March 14")) is None  # the mail's own body
    with pytest.raises(UnreadableFileError, match="no mail headers"):
        parse_bytes(b"just a note", "note.eml", "n", "n")


def test_the_content_decides_zip_formats() -> None:
    docx = fc.docx_bytes()
    assert sniff_format(docx, "renamed.txt") == "docx"
    assert sniff_format(docx, "no-extension") == "docx"
    assert sniff_format(fc.xlsx_bytes(), "wrong.docx") == "xlsx"
    with pytest.raises(UnsupportedFileError, match="not a Word"):
        sniff_format(docx.replace(b"word/document.xml", b"word/documenx.xml"), "a.docx")
    with pytest.raises(UnsupportedFileError, match=r"named \.docx but the content is not a docx"):
        sniff_format(b"plain words", "fake.docx")
    with pytest.raises(UnreadableFileError, match=r"damaged \.xlsx"):
        sniff_format(docx[:200], "cut.xlsx")


def test_a_zip_bomb_is_refused_from_its_directory() -> None:
    bomb = fc.zip_bomb_docx(MAX_ZIP_BYTES + (1 << 20))
    assert len(bomb) < MAX_ZIP_BYTES / 500
    t0 = time.perf_counter()
    with pytest.raises(FileTooLargeError, match=r"unpack to \d+ bytes.*zip bomb"):
        parse_bytes(bomb, "bomb.docx", "b", "b")
    assert time.perf_counter() - t0 < 1.0


def test_a_document_of_millions_of_elements_is_refused_while_they_are_counted() -> None:
    """Issue 26's .docx, cut to just over the limit: each paragraph is three elements."""
    bomb = paragraph_bomb_docx(MAX_XML_ELEMENTS // 3 + 10_000)
    with pytest.raises(FileTooLargeError, match=f"more than {MAX_XML_ELEMENTS} XML elements"):
        parse_bytes(bomb, "bomb.docx", "b", "b")
    fine = paragraph_bomb_docx(10_000)  # the same shape, well under it, is read
    assert parse_bytes(fine, "fine.docx", "f", "f").text.count("x") == 10_000


def test_too_many_zip_entries_are_refused() -> None:
    many = fc.rezip(fc.docx_bytes(),
                    extra={f"word/media/{i}.txt": b"" for i in range(MAX_ZIP_ENTRIES)})
    with pytest.raises(FileTooLargeError, match=rf"entries in the zip is over the limit of "
                                                rf"{MAX_ZIP_ENTRIES}"):
        parse_bytes(many, "many.docx", "m", "m")


def test_an_xml_entity_bomb_is_refused_before_the_library_parses_it() -> None:
    t0 = time.perf_counter()
    with pytest.raises(UnreadableFileError, match=r"word/document\.xml declares XML entities"):
        parse_bytes(fc.entity_bomb_docx(), "laughs.docx", "l", "l")
    assert time.perf_counter() - t0 < 1.0


def test_a_huge_sheet_is_refused_at_the_cell_cap() -> None:
    from openpyxl import Workbook

    book = Workbook()
    for row in range(1, 300):  # one cell a row, in the last column: 16,384 cells a row
        book.active.cell(row=row, column=16_384, value=row)
    out = io.BytesIO()
    book.save(out)
    assert len(out.getvalue()) < 20_000
    t0 = time.perf_counter()
    with pytest.raises(FileTooLargeError, match=rf"more than {MAX_SHEET_CELLS} cells"):
        parse_bytes(out.getvalue(), "wide.xlsx", "w", "w")
    assert time.perf_counter() - t0 < 10.0


def test_extracted_text_is_capped_for_every_format() -> None:
    with pytest.raises(FileTooLargeError, match="more than 100 characters"):
        parse_bytes(fc.docx_bytes(), "handbook.docx", "h", "h", max_chars=100)
    with pytest.raises(FileTooLargeError, match="more than 50 characters"):
        parse_bytes(fc.csv_bytes(), "prices.csv", "p", "p", max_chars=50)


def test_corrupt_office_files_are_unreadable_not_crashes() -> None:
    broken = fc.rezip(fc.pptx_bytes(), replace={"ppt/presentation.xml": b"<p:presentation"})
    with pytest.raises(UnreadableFileError, match="ppt/presentation.xml is not well-formed"):
        parse_bytes(broken, "broken.pptx", "b", "b")
    no_body = fc.rezip(fc.docx_bytes(), replace={"word/document.xml": b"<x/>"})
    with pytest.raises(UnreadableFileError, match="not a readable Word file"):
        parse_bytes(no_body, "odd.docx", "o", "o")
