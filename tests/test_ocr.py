"""Scanned pages and photos: read with OCR, found, cited with their page and "ocr": true.

The scans are drawn here (eval/scans.py): known text in several fonts, slightly skewed, so
what OCR read is measured against what was drawn (character error rate).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from eval.harness import RAG, wait_ready
from eval.scans import FONTS, PARAGRAPHS, cer, pdf_of, render
from rag import isolation, ocr
from rag.documents import parse_bytes
from rag.errors import FileTooLargeError, UnsupportedFileError
from rag.ocr import OcrOptions, PageReader, reflow
from rag.pipeline import Pipeline
from rag.types import Locator, locate

SMALL = (1500, 900)  # a half page at 200 dpi: the tests' scans stay quick to read
FACT_Q = "How many cubic metres of water does the Aldermoor reservoir hold?"
PHOTO_Q = "Where is the office of the Aldermoor Trust?"


def _scans() -> list:  # type: ignore[type-arg]
    return [render(PARAGRAPHS[:2], FONTS[0], skew=0.9, size=SMALL, seed=1),
            render(PARAGRAPHS[3:], FONTS[1], skew=-1.2, size=SMALL, seed=2),
            render(PARAGRAPHS[1:2], FONTS[4], skew=0.5, size=SMALL, seed=3)]


@pytest.mark.unit
def test_reflow_joins_wrapped_lines_and_keeps_paragraphs() -> None:
    raw = "The dam holds 48 million\ncubic metres of wa-\nter.\n\nFishing is allowed.\n"
    assert reflow(raw) == "The dam holds 48 million cubic metres of water.\n\nFishing is allowed."
    assert reflow("Title\n\nA long line of text that wraps\nonto the next line.") == \
        "Title\n\nA long line of text that wraps onto the next line."


@pytest.mark.unit
def test_a_scanned_pdf_and_a_photo_are_read_with_their_pages_marked() -> None:
    scans = _scans()
    reader = PageReader(OcrOptions(dpi=200))
    doc = parse_bytes(pdf_of(scans), "scan.pdf", "scan", "scan.pdf", reader=reader)
    pages = [doc.text[m.start:(doc.marks[i + 1].start if i + 1 < len(doc.marks) else None)]
             for i, m in enumerate(doc.marks)]
    rates = [cer(s.text, p) for s, p in zip(scans, pages, strict=True)]
    print(f"OCR CER per page (fonts {[s.font for s in scans]}): {rates}")
    assert max(rates) < 0.02
    assert [m.locator.page for m in doc.marks] == [1, 2, 3]
    assert all(m.locator.ocr and (m.locator.confidence or 0) > 0.8 for m in doc.marks)
    at = doc.text.index("48 million cubic metres")  # one paragraph: quotable as a sentence
    assert locate(doc.marks, at) == doc.marks[0].locator
    assert doc.marks[0].locator.label() == "p. 1 (OCR)"

    photo = parse_bytes(scans[1].png, "photo.png", "photo", "photo.png", reader=reader)
    assert cer(scans[1].text, photo.text) < 0.02
    assert photo.marks[0].locator.page == 1 and photo.marks[0].locator.ocr
    with pytest.raises(UnsupportedFileError, match="OCR is off"):
        parse_bytes(scans[1].png, "photo.png", "photo", "photo.png")


def _folder(root: Path) -> Path:
    scans = _scans()
    folder = root / "scans"
    folder.mkdir()
    (folder / "reservoir.pdf").write_bytes(pdf_of(scans[:2]))
    (folder / "permit.png").write_bytes(
        render(PARAGRAPHS[2:3], FONTS[3], skew=1.1, size=(1500, 500), seed=4).png)
    return folder


def test_scans_are_found_and_cited_with_page_and_ocr(pipeline: Pipeline, tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    report = pipeline.ingest([folder])
    assert sorted(report.added) == ["permit", "reservoir"] and report.ocr_pages == 3

    env = {**os.environ, "RAG_INDEX_DIR": str(pipeline.settings.index_dir)}
    found = subprocess.run([RAG, "search", "Aldermoor reservoir cubic metres", "--json"],
                           capture_output=True, text=True, timeout=300, env=env)
    assert found.returncode == 0, found.stderr
    top = json.loads(found.stdout)["hits"][0]
    assert top["doc_id"] == "reservoir" and "48 million cubic metres" in top["text"]
    assert top["locator"]["page"] == 1 and top["locator"]["ocr"] is True

    with TestClient(create_app(pipeline.settings, pipeline),
                    base_url="http://localhost") as client:
        wait_ready(client, wait=120)
        for question, doc_id, fact, page in ((FACT_Q, "reservoir", "48 million", 1),
                                             (PHOTO_Q, "permit", "14 Mill Lane", 1)):
            asked = client.post("/v1/ask", json={"question": question}).json()
            cited = [c for c in asked["citations"] if fact in c["quote"]]
            assert cited, asked
            where = cited[0]["locator"]
            assert cited[0]["doc_id"] == doc_id and where["page"] == page and where["ocr"]
            assert where["confidence"] > 0.8 and where["label"] == f"p. {page} (OCR)"
    told = subprocess.run([RAG, "ask", FACT_Q], capture_output=True, text=True, timeout=300,
                          env=env)
    assert "(reservoir, p. 1 (OCR), chars" in told.stdout, told.stdout

    # Under the confidence floor: still found, never quoted.
    unsure = Pipeline(pipeline.settings.model_copy(update={"ocr_min_confidence": 0.999}),
                      embedder=pipeline.embedder, scorer=pipeline.scorer)
    assert unsure.search(FACT_Q, k=1)[0].chunk.doc_id == "reservoir"
    assert not any(c.locator is not None and c.locator.ocr
                   for c in unsure.ask(FACT_Q).citations)


def test_no_ocr_skips_scans_and_reports_them(tmp_path: Path) -> None:
    folder = _folder(tmp_path)
    settings_env = {**os.environ, "RAG_INDEX_DIR": str(tmp_path / "index")}
    run = subprocess.run([RAG, "ingest", str(folder), "--no-ocr", "--json"], text=True,
                         capture_output=True, timeout=300, env=settings_env)
    failed = {Path(f["path"]).name: f["reason"] for f in json.loads(run.stdout)["failed"]}
    assert "OCR is off" in failed["permit.png"] and "OCR is off" in failed["reservoir.pdf"]
    off = subprocess.run([RAG, "ingest", str(folder), "--json"], text=True, capture_output=True,
                         timeout=300, env={**settings_env, "RAG_OCR": "off"})
    assert len(json.loads(off.stdout)["failed"]) == 2


def test_each_page_has_its_own_time_budget() -> None:
    scans = _scans()
    limits = isolation.ParseLimits(5_000_000, 60, 2048, OcrOptions(dpi=200), 0.01)
    with pytest.raises(FileTooLargeError, match="reading page 1 with OCR took more than"):
        isolation.parse(pdf_of(scans), "scan.pdf", "s", "s", limits)
    seen: list[tuple[int, int]] = []
    pages = [render(PARAGRAPHS * 2, font, skew=0.7) for font in FONTS[:2]]  # whole pages
    limits = isolation.ParseLimits(5_000_000, 1.0, 2048, OcrOptions(dpi=200), 60)
    t0 = time.monotonic()
    doc = isolation.parse(pdf_of(pages), "scan.pdf", "s", "s", limits,
                          on_page=lambda name, done, total: seen.append((done, total)))
    assert time.monotonic() - t0 > 1.0  # longer than the file's budget: OCR is not in it
    assert seen == [(0, 2), (1, 2), (2, 2)]
    assert [m.locator for m in doc.marks][0] == Locator(
        page=1, ocr=True, confidence=doc.marks[0].locator.confidence)
    assert ocr.tessdata(OcrOptions()).is_dir()
