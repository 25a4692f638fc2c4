"""Tables in PDF, .docx and HTML: a row a line with its headers, so a cell is quoted with its
column, and located by table, row and caption; the text around stays in order."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from eval.harness import wait_ready
from eval.scans import table_pdf
from rag.documents import parse_bytes
from rag.pipeline import Pipeline
from rag.tables import RowLines, caption, column_name
from rag.types import Locator, locate

HTML = b"""<!doctype html><html><head><title>Ferry timetable</title></head><body>
<h1>Ferries</h1><p>Boats leave from the north pier.</p>
<table><caption>Summer sailings</caption>
<tr><th>Route</th><th>Departs</th><th>Crossing time</th></tr>
<tr><td>Brennick to Skarra</td><td>07:15</td><td>50 minutes</td></tr>
<tr><td>Skarra to Holm</td><td>09:40</td><td>1 hour 35 minutes</td></tr>
</table><p>Tickets are sold on board.</p></body></html>"""


def _docx() -> bytes:
    from docx import Document

    doc = Document()
    doc.add_heading("Laboratory", level=1)
    doc.add_paragraph("Each freezer is checked daily.")
    doc.add_paragraph("Freezer inventory")
    table = doc.add_table(rows=3, cols=3)
    for r, row in enumerate((("Freezer", "Location", "Set point"),
                             ("Polar 3", "Room B12", "minus 80 degrees"),
                             ("Tundra 1", "Room C04", "minus 20 degrees"))):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
    doc.add_paragraph("Alarms are sent to the duty technician.")
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


@pytest.mark.unit
def test_rows_carry_their_headers_in_every_format() -> None:
    pdf = parse_bytes(table_pdf(), "inn.pdf", "inn", "inn.pdf")
    assert "Table 1: Room rates\nRoom: Garden suite; Beds: 2; Price per night: 140 euros\n" \
        in pdf.text
    assert pdf.text.index("breakfast included") < pdf.text.index("Garden suite") \
        < pdf.text.index("Dogs are welcome")  # the text around stays in order
    assert locate(pdf.marks, pdf.text.index("Room: Attic")) == Locator(
        page=1, table=1, row=3, caption="Table 1: Room rates")
    assert locate(pdf.marks, pdf.text.index("Dogs")) == Locator(page=1)

    word = parse_bytes(_docx(), "lab.docx", "lab", "lab.docx")
    assert "Freezer: Polar 3; Location: Room B12; Set point: minus 80 degrees" in word.text
    assert locate(word.marks, word.text.index("Freezer: Tundra")) == Locator(
        heading="Laboratory", table=1, row=3, caption="Freezer inventory")
    assert locate(word.marks, word.text.index("Alarms")) == Locator(heading="Laboratory")

    page = parse_bytes(HTML, "ferry.html", "ferry", "ferry.html")
    assert page.text.splitlines()[2:5] == [
        "Route: Brennick to Skarra; Departs: 07:15; Crossing time: 50 minutes",
        "Route: Skarra to Holm; Departs: 09:40; Crossing time: 1 hour 35 minutes",
        "Tickets are sold on board."]
    assert locate(page.marks, page.text.index("Route: Skarra")).label() == \
        "table 1 (Summer sailings), row 3, Ferries"


@pytest.mark.unit
def test_the_row_rule() -> None:
    lines = list(RowLines("t").lines([["", ""], ["Name", ""], ["Ada", "x"], ["", ""]], "t"))
    assert lines == [(3, "Name: Ada; B: x")]
    assert list(RowLines("t").lines([["Only", "headers"]], "t")) == [(1, "Only | headers")]
    assert [column_name(i) for i in (0, 25, 26, 27)] == ["A", "Z", "AA", "AB"]
    assert caption("Table 2: Rates") == "Table 2: Rates"
    assert caption("This is a sentence.") is None and caption("x" * 121) is None


def test_a_cell_is_cited_with_its_column(pipeline: Pipeline, tmp_path: Path) -> None:
    folder = tmp_path / "tables"
    folder.mkdir()
    (folder / "inn.pdf").write_bytes(table_pdf())
    (folder / "lab.docx").write_bytes(_docx())
    (folder / "ferry.html").write_bytes(HTML)
    pipeline.ingest([folder])
    with TestClient(create_app(pipeline.settings, pipeline),
                    base_url="http://localhost") as client:
        wait_ready(client, wait=120)
        for question, quote, where in (
                ("How much does the Garden suite cost per night?",
                 "Price per night: 140 euros", {"page": 1, "table": 1, "row": 2}),
                ("What is the set point of freezer Polar 3?",
                 "Set point: minus 80 degrees", {"table": 1, "row": 2,
                                                 "caption": "Freezer inventory"}),
                ("How long is the crossing from Skarra to Holm?",
                 "Crossing time: 1 hour 35 minutes", {"table": 1, "row": 3,
                                                      "caption": "Summer sailings"})):
            asked = client.post("/v1/ask", json={"question": question}).json()
            cited = [c for c in asked["citations"] if quote in c["quote"]]
            assert cited, (question, asked["answer"])
            assert {k: cited[0]["locator"][k] for k in where} == where
