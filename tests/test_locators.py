"""Locators: where each part of a document was in the original file (page, slide, sheet and
row, heading path), exact offsets in the cleaned text, whatever the format."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api import create_app
from eval.harness import RAG, wait_ready
from rag import filters
from rag.config import Settings
from rag.documents import clean_marked, clean_text, extract, parse_bytes
from rag.embedding import SentenceTransformerEmbedder
from rag.errors import IndexMismatchError
from rag.index import FORMAT, MANIFEST, check_manifest, current_snapshot
from rag.pipeline import Pipeline
from rag.scorer import EvidenceScorer
from rag.segment import STORE
from rag.types import Document, Locator, Mark, locate
from tests import formats_corpus as fc
from tests.legacy import write_format_6, write_legacy, write_old_segments
from tests.standin import HashingEmbedder

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
    assert _at(word, "Port: 8443") == Locator(heading="Installation > Linux", table=1, row=2,
                                              caption="Open these ports:")
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


def _folder(path: Path) -> Path:
    """The 30-page report and a file of every format with locators."""
    path.mkdir(parents=True)
    (path / "report.pdf").write_bytes(fc.pdf_bytes(fc.report_pages()))
    (path / "deck.pptx").write_bytes(fc.pptx_bytes())
    (path / "staff.xlsx").write_bytes(fc.xlsx_bytes())
    (path / "handbook.docx").write_bytes(fc.docx_bytes())
    (path / "guide.md").write_text(fc.GUIDE_MD)
    return path


def test_hits_and_citations_say_where_they_are_in_the_cli_and_the_api(
        pipeline: Pipeline, tmp_path: Path) -> None:
    folder = _folder(tmp_path / "docs")
    pipeline.ingest([folder])
    store = pipeline.index.store
    for file in folder.iterdir():  # the marks are stored as parsed
        stored = store.document(file.stem, with_marks=True)
        assert stored is not None and stored.marks
        assert stored.marks == parse_bytes(file.read_bytes(), file.name, "x", "x").marks
    question, fact, page = fc.REPORT_FACT
    answer = pipeline.ask(question)
    assert not answer.abstained and any(fact in c.quote for c in answer.citations)
    for c in answer.citations:
        doc = store.document(c.doc_id, with_marks=True)
        assert doc is not None and doc.text[c.char_start:c.char_end] == c.quote and c.verified
        assert c.locator == locate(doc.marks, c.char_start)
        if fact in c.quote:
            assert c.locator == Locator(page=page)
    for query, doc_id, field in (("Oslo office Ingrid Berg", "report", "page"),
                                 ("churn rate third quarter", "deck", "slide"),
                                 ("Alice Moreau Lisbon", "staff", "sheet"),
                                 ("install the agent on Linux", "guide", "heading"),
                                 ("install the agent on Linux", "handbook", "heading")):
        hits = [h for h in pipeline.search(query, k=10) if h.chunk.doc_id == doc_id]
        assert hits, (query, doc_id)
        for h in hits:
            doc = store.document(doc_id, with_marks=True)
            assert doc is not None
            assert h.locator is not None
            assert replace(h.locator, pages=None) == locate(doc.marks, h.chunk.char_start)
            assert getattr(h.locator, field) is not None
            pages = {m.locator.page for m in doc.marks
                     if h.chunk.char_start < m.start < h.chunk.char_end} - {None}
            if pages - {h.locator.page}:  # a hit over a page break names its pages
                assert h.locator.pages == (h.locator.page, max(pages))
    report = next(h for h in pipeline.search(question, k=5) if fact in h.chunk.text)
    assert report.locator is not None and report.locator.page in (15, 16, 17)

    with TestClient(create_app(pipeline.settings, pipeline),
                    base_url="http://localhost") as client:
        wait_ready(client, wait=120)
        found = client.post("/v1/search", json={"query": "Oslo office Ingrid Berg"}).json()
        top = found["hits"][0]
        assert top["doc_id"] == "report" and top["locator"]["page"] in (15, 16, 17)
        assert {"page", "pages", "slide", "sheet", "row", "table", "caption", "heading",
                "ocr", "confidence", "label"} == set(top["locator"])
        asked = client.post("/v1/ask", json={"question": question}).json()
        cited = [c for c in asked["citations"] if fact in c["quote"]]
        assert cited and cited[0]["locator"] == {
            "page": page, "pages": None, "slide": None, "sheet": None, "row": None,
            "table": None, "caption": None, "heading": None, "ocr": False,
            "confidence": None, "label": f"p. {page}"}
        spec = client.get("/openapi.json").json()["components"]["schemas"]
        assert "locator" in spec["HitOut"]["properties"]
        assert "locator" in spec["CitationOut"]["properties"]

    env = {**os.environ, "RAG_INDEX_DIR": str(pipeline.settings.index_dir)}
    searched = subprocess.run([RAG, "search", "Oslo office Ingrid Berg", "--json"],
                              capture_output=True, text=True, timeout=300, env=env)
    assert json.loads(searched.stdout)["hits"][0]["locator"]["page"] in (15, 16, 17)
    told = subprocess.run([RAG, "ask", question], capture_output=True, text=True,
                          timeout=300, env=env)
    assert told.returncode == 0, told.stderr
    assert f"(report, p. {page}, chars " in told.stdout, told.stdout


def test_a_hit_is_located_where_all_of_it_is(pipeline: Pipeline, tmp_path: Path) -> None:
    """A small deck or workbook used to share one chunk among its slides or sheets, so a
    hit on slide 2 said slide 1 and a row of "Rooms" said sheet "Staff"."""
    from openpyxl import Workbook
    from pptx import Presentation

    folder = tmp_path / "small"
    folder.mkdir()
    deck = Presentation()
    for title, body in (("Projects", "Three projects start this spring."),
                        ("Marmoset project", "The marmoset project costs 48,000 euros.")):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text, slide.placeholders[1].text = title, body
    deck.save(folder / "projects.pptx")
    book = Workbook()
    staff = book.active
    staff.title = "Staff"
    for row in (("Name", "Role"), ("Ines Duarte", "Caretaker")):
        staff.append(row)
    rooms = book.create_sheet("Rooms")
    for row in (("Room", "Capacity"), ("Lecture hall", 120)):
        rooms.append(row)
    book.save(folder / "site.xlsx")
    pipeline.ingest([folder])
    chunker = pipeline.chunker()
    for doc_id in ("projects", "site"):
        doc = pipeline.index.store.document(doc_id, with_marks=True)
        assert doc is not None
        assert len(chunker.chunk(doc)) == 2  # one a slide, one a sheet
    hit = pipeline.search("How much does the marmoset project cost?", k=1)[0]
    assert hit.chunk.doc_id == "projects" and hit.locator == Locator(slide=2)
    hit = next(h for h in pipeline.search("capacity of the lecture hall", k=5)
               if h.chunk.doc_id == "site")
    assert hit.locator == Locator(sheet="Rooms")
    assert "Lecture hall" in hit.chunk.text and "Ines" not in hit.chunk.text


def test_an_index_of_format_2_loads_searches_and_takes_writes(
        settings: Settings, embedder: SentenceTransformerEmbedder, scorer: EvidenceScorer,
        tmp_path: Path) -> None:
    folder = _folder(tmp_path / "docs")
    (folder / "deck.pptx").rename(tmp_path / "deck.pptx")
    Pipeline(settings, embedder=embedder).ingest([folder])
    snapshot = write_legacy(settings.index_dir, fmt=2)
    with sqlite3.connect(snapshot / STORE) as db:  # what format 2 wrote: no marks
        assert not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'marks'").fetchall()

    old = Pipeline(settings, embedder=embedder, scorer=scorer)
    question, fact, _ = fc.REPORT_FACT
    hits = old.search(question)
    assert hits and all(h.locator is None for h in hits)
    assert all(h.as_dict()["locator"] is None for h in hits)
    answer = old.ask(question)
    assert any(fact in c.quote for c in answer.citations)
    assert all(c.locator is None and c.verified for c in answer.citations)

    old.ingest([tmp_path / "deck.pptx"])  # a writer makes segments, with the marks table
    snapshot = current_snapshot(settings.index_dir)
    assert snapshot is not None
    assert json.loads((snapshot / MANIFEST).read_text())["format"] == FORMAT
    new = Pipeline(settings, embedder=embedder, scorer=scorer)
    slides = [h for h in new.search("churn rate third quarter", k=10) if h.chunk.doc_id == "deck"]
    assert slides and slides[0].locator == Locator(slide=2)  # "Retention": slide 2
    assert all(h.locator is None for h in new.search(question) if h.chunk.doc_id == "report")

    for unknown in (1, FORMAT + 1, None):
        with pytest.raises(IndexMismatchError,
                           match="this version reads 2, 3, 4, 5, 6 and 7: re-ingest"):
            check_manifest({"format": unknown}, settings.index_dir, None, None)


_TABLE_HTML = """<html><body><h1>{title}</h1><p>Read the rows.</p><table>
<caption>{caption}</caption><tr><th>Item</th><th>Amount</th></tr>
<tr><td>{item}</td><td>{amount}</td></tr></table></body></html>"""


LAYOUTS = ["issue 27's format 5", "issue 29's format 5", "issue 29's format 6",
           "issue 28's format 6"]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_older_layout_loads_and_its_next_write_is_format_7(tmp_path: Path,
                                                                 layout: str) -> None:
    """Formats 5 and 6 were each given twice: segments whose marks lack the table and OCR
    columns (issue 27's 5), one snapshot folder whose marks have them (issue 29's 5, a
    development build), segments with them but no metadata column (issue 29's 6), segments
    with metadata but not them (issue 28's 6, a development build). Each loads with its
    locators and metadata (columns a store lacks read as unset: no table marks, no user
    metadata, and a filter finds nothing in it); the next write commits format 7, whose new
    documents keep their table locators; a document whose sidecar its store could not hold is
    written again with it; and a merge that folds the older store in keeps every locator and
    every metadata as they were."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "ferries.html").write_text(_TABLE_HTML.format(
        title="Ferries", caption="Summer sailings", item="Skarra to Holm", amount="12 euros"))
    (docs / "deck.pptx").write_bytes(fc.pptx_bytes())
    (docs / "deck.pptx.meta.json").write_text(json.dumps({"team": "harbour"}))
    settings = Settings(index_dir=tmp_path / "index", auto_merge=False)
    Pipeline(settings, embedder=HashingEmbedder()).ingest([docs])
    if layout == "issue 27's format 5":
        write_old_segments(settings.index_dir)
    elif layout == "issue 29's format 5":
        write_legacy(settings.index_dir, fmt=5)
    else:
        write_format_6(settings.index_dir, 28 if "28" in layout else 29)
    with_marks = "issue 29" in layout
    with_meta = layout == "issue 28's format 6"

    def where(p: Pipeline, doc_id: str, words: str) -> Locator | None:
        doc = p.index.store.document(doc_id)
        assert doc is not None
        return p.index.store.locator(doc_id, doc.text.index(words))

    def harbour(p: Pipeline) -> set[str]:
        team = filters.parse({"field": "team", "eq": "harbour"})
        return {h.chunk.doc_id for h in p.search("churn rate", k=5, where=team)}

    full = Locator(heading="Ferries", table=1, row=2, caption="Summer sailings")
    ferry = full if with_marks else Locator(heading="Ferries", row=2)
    old = Pipeline(settings, embedder=HashingEmbedder())
    assert where(old, "ferries", "Item: Skarra to Holm") == ferry
    assert where(old, "deck", "The churn rate") == Locator(slide=2)
    assert harbour(old) == ({"deck"} if with_meta else set())
    ferries_meta = old.document("ferries").metadata
    assert ("format" in ferries_meta) == with_meta

    (docs / "fees.html").write_text(_TABLE_HTML.format(
        title="Fees", caption="Port fees", item="Mooring", amount="30 euros"))
    report = old.ingest([docs])
    assert report.added == ["fees"] and report.replaced == ([] if with_meta else ["deck"])
    snapshot = current_snapshot(settings.index_dir)
    assert snapshot is not None
    assert json.loads((snapshot / MANIFEST).read_text())["format"] == FORMAT == 7
    fees = Locator(heading="Fees", table=1, row=2, caption="Port fees")
    for p in (Pipeline(settings, embedder=HashingEmbedder()), old):
        if p is old:
            assert old.compact(max_segments=1) and len(old.segments()) == 1
        assert where(p, "ferries", "Item: Skarra to Holm") == ferry
        assert where(p, "deck", "The churn rate") == Locator(slide=2)
        assert where(p, "fees", "Item: Mooring") == fees
        assert harbour(p) == {"deck"}
        assert p.document("ferries").metadata == ferries_meta
        assert p.document("fees").metadata["format"] == "html"
