"""Locators: where each part of a document was in the original file (page, slide, sheet and
row, heading path), exact offsets in the cleaned text, whatever the format."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rag.documents import clean_marked, clean_text, extract, parse_bytes
from rag.types import Document, Locator, Mark, locate
from tests import formats_corpus as fc

unit = pytest.mark.unit


def _at(doc: Document, words: str) -> Locator | None:
    """The locator of the span that starts with ``words``."""
    return locate(doc.marks, doc.text.index(words))


@unit
def test_a_30_page_pdf_marks_every_page_and_the_fact_is_on_page_17() -> None:
    doc = parse_bytes(fc.pdf_bytes(fc.report_pages()), "report.pdf", "report", "report.pdf")
    assert [m.locator.page for m in doc.marks] == list(range(1, 31))
    for m in doc.marks:
        assert doc.text.startswith(f"Section {m.locator.page}: ", m.start)
    question, fact, page = fc.REPORT_FACT
    assert _at(doc, "The Oslo office was opened") == Locator(page=page)
    assert _at(doc, fact) == Locator(page=page)
    assert Locator(page=page).label() == "p. 17"


@unit
def test_slides_sheets_rows_and_csv_rows() -> None:
    deck = parse_bytes(fc.pptx_bytes(), "deck.pptx", "d", "d")
    assert [m.locator.slide for m in deck.marks] == [1, 2, 3]
    assert _at(deck, "The churn rate") == Locator(slide=2)
    assert _at(deck, "Ask for budget.") == Locator(slide=3)  # the notes are the slide's

    staff = parse_bytes(fc.xlsx_bytes(), "staff.xlsx", "s", "s")
    assert _at(staff, "People") == Locator(sheet="People")
    assert _at(staff, "Name: Alice Moreau") == Locator(sheet="People", row=2)
    assert _at(staff, "Item: Cups") == Locator(sheet="Stock", row=3)
    assert Locator(sheet="Stock", row=3).label() == "sheet Stock, row 3"

    prices = parse_bytes(fc.csv_bytes(), "prices.csv", "p", "p")
    assert _at(prices, "Tea: Sencha") == Locator(row=3)  # the header is row 1


@unit
def test_rows_are_numbered_as_in_the_spreadsheet_with_blank_rows_counted() -> None:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "Q1"
    sheet["B3"], sheet["C3"] = "Item", "Cost"  # the header on row 3, from column B
    sheet["B4"], sheet["C4"] = "Paper", 12
    sheet["B7"], sheet["C7"] = "Toner", 80  # rows 5 and 6 empty
    out = io.BytesIO()
    book.save(out)
    doc = parse_bytes(out.getvalue(), "budget.xlsx", "b", "b")
    assert _at(doc, "Item: Paper") == Locator(sheet="Q1", row=4)
    assert _at(doc, "Item: Toner") == Locator(sheet="Q1", row=7)


@unit
def test_heading_paths_of_markdown_html_word_and_epub(tmp_path: Path) -> None:
    md = parse_bytes(fc.GUIDE_MD.encode(), "guide.md", "g", "g")
    assert _at(md, "Tealeaf keeps") == Locator(heading="Tealeaf guide")
    linux = Locator(heading="Tealeaf guide > Installation > Linux")
    assert _at(md, "apt install tealeaf-agent") == linux  # "# not a heading" is code
    assert _at(md, "On Linux the agent") == linux
    assert _at(md, "On Windows") == Locator(heading="Tealeaf guide > Installation > Windows")
    assert _at(md, "Run tealeaf sync") == Locator(heading="Tealeaf guide > Usage")
    assert parse_bytes(fc.GUIDE_MD.encode(), "guide.txt", "g", "g").marks == ()

    html = parse_bytes(fc.GUIDE_HTML, "guide.html", "h", "h")
    assert _at(html, "Tealeaf keeps") is None  # before the first heading
    assert _at(html, "On Linux") == Locator(heading="Installation > Linux (x86 and arm)")
    assert _at(html, "On Windows") == Locator(heading="Installation > Windows")
    assert _at(html, "Run tealeaf sync") == Locator(heading="Usage")

    word = parse_bytes(fc.docx_bytes(), "handbook.docx", "w", "w")
    assert _at(word, "On Linux the agent") == Locator(heading="Installation > Linux")
    assert _at(word, "8443 | HTTPS") == Locator(heading="Installation > Linux")
    assert _at(word, "On Windows") == Locator(heading="Installation > Windows")
    assert Locator(heading="Installation > Linux").label() == "Installation > Linux"

    book = parse_bytes(fc.epub_bytes(tmp_path), "book.epub", "b", "b")
    assert _at(book, "Before the inspectors came") == Locator(heading="Chapter 2")


@unit
def test_cleaning_piece_by_piece_is_cleaning_the_whole(tmp_path: Path) -> None:
    """The stored text is what clean_text makes of the whole raw text, for every format
    with marks, and for text whose cleaning changes lengths (mojibake, CRLF, blank runs,
    trailing spaces, ad markers)."""
    damaged = ("# Caf\u00c3\u00a9 menu  \r\n\r\n\r\n\r\nThe \u00e2\u20ac\u0153house\u00e2\u20ac"
               "\u009d blend.\u00a0\r\n## Prices\n[ad_1]\n\n\n  Tea: 3 euros.\t\n\n"
               "### Notes\n\nOpen daily.\n")
    files = {"report.pdf": fc.pdf_bytes(fc.report_pages()), "deck.pptx": fc.pptx_bytes(),
             "staff.xlsx": fc.xlsx_bytes(), "prices.csv": fc.csv_bytes(),
             "handbook.docx": fc.docx_bytes(), "guide.md": fc.GUIDE_MD.encode(),
             "guide.html": fc.GUIDE_HTML, "book.epub": fc.epub_bytes(tmp_path),
             "damaged.md": damaged.encode()}
    for name, data in files.items():
        raw = extract(data, name)
        assert raw.marks, name
        text, marks = clean_marked(raw.text, raw.marks)
        assert text == clean_text(raw.text), name
        assert [m.start for m in marks] == sorted({m.start for m in marks}), name
    doc = parse_bytes(damaged.encode(), "damaged.md", "d", "d")
    assert doc.text.startswith("# Caf\u00e9 menu\n\nThe \u201chouse\u201d blend.\n## Prices")
    assert _at(doc, "Tea: 3 euros.") == Locator(heading="Caf\u00e9 menu > Prices")
    assert _at(doc, "Open daily.") == Locator(heading="Caf\u00e9 menu > Prices > Notes")


@unit
def test_locate_takes_the_last_mark_at_or_before_the_offset() -> None:
    marks = (Mark(5, Locator(page=1)), Mark(20, Locator(page=2)))
    assert locate(marks, 0) is None
    assert locate(marks, 5) == Locator(page=1)
    assert locate(marks, 19) == Locator(page=1)
    assert locate(marks, 20) == locate(marks, 10_000) == Locator(page=2)
    assert locate((), 3) is None
    assert Locator(sheet="Q1").label() == "sheet Q1" and Locator(row=4).label() == "row 4"
    assert Locator(slide=3).label() == "slide 3"
