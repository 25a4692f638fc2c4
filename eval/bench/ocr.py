"""What OCR and table extraction cost, and how well OCR reads: figures for the README.

    python -m eval.bench.ocr [--pages 10] [--tables 50] [--json out.json]

OCR: ``--pages`` A4 pages at 200 dpi drawn by eval/scans.py (five fonts, skews of up to
1.5 degrees, dust), put in a PDF without a text layer and parsed as a folder ingest parses a
file (rag.isolation: a worker process, the Tesseract data Debian ships), at RAG_OCR_DPI 200
and 300; and the same pages as PNG files. For each: pages a second and the character error
rate against the drawn text (whitespace runs counted as one space).

Tables: a ``--tables``-page PDF whose every page holds a ruled table, parsed with the
tables found (pdfplumber) and as the same text without the rulings (pypdf alone): the
difference per page is what finding tables costs.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from eval.scans import FONTS, PARAGRAPHS, cer, pdf_of, render, table_pdf
from rag import isolation
from rag.config import Settings
from rag.ocr import OcrOptions


def _limits(dpi: int) -> isolation.ParseLimits:
    s = Settings()
    return isolation.ParseLimits(s.max_document_chars, 3600, s.parse_memory_mb,
                                 OcrOptions(dpi=dpi), 3600)


def ocr_figures(pages: int) -> dict[str, Any]:
    rng = random.Random(7)
    scans = []
    for i in range(pages):
        paragraphs = list(PARAGRAPHS)
        rng.shuffle(paragraphs)
        scans.append(render(paragraphs * 2, FONTS[i % len(FONTS)], rng.uniform(-1.5, 1.5),
                            seed=i))
    truth = [s.text for s in scans]
    isolation.parse(scans[0].png, "warm.png", "w", "w", _limits(200))  # the forkserver
    out: dict[str, Any] = {"pages": pages, "fonts": sorted({s.font for s in scans})}
    for dpi in (200, 300):
        t0 = time.perf_counter()
        doc = isolation.parse(pdf_of(scans), "scans.pdf", "s", "s", _limits(dpi))
        seconds = time.perf_counter() - t0
        starts = [m.start for m in doc.marks] + [len(doc.text)]
        read = [doc.text[a:b] for a, b in zip(starts, starts[1:], strict=False)]
        rates = [cer(t, r) for t, r in zip(truth, read, strict=True)]
        out[f"pdf_dpi{dpi}"] = {"pages_per_s": round(pages / seconds, 3),
                                "cer_mean": round(sum(rates) / len(rates), 5),
                                "cer_max": round(max(rates), 5),
                                "confidence_mean": round(sum(
                                    m.locator.confidence or 0 for m in doc.marks) / pages, 3)}
    t0, rates = time.perf_counter(), []
    for i, s in enumerate(scans):
        doc = isolation.parse(s.png, f"scan{i}.png", "p", "p", _limits(200))
        rates.append(cer(s.text, doc.text))
    out["png"] = {"pages_per_s": round(pages / (time.perf_counter() - t0), 3),
                  "cer_mean": round(sum(rates) / len(rates), 5)}
    return out


def table_figures(pages: int) -> dict[str, Any]:
    limits = _limits(200)
    timed = {}
    for ruled in (True, False):
        data = table_pdf(pages, ruled=ruled)
        isolation.parse(data, "warm.pdf", "w", "w", limits)
        t0 = time.perf_counter()
        doc = isolation.parse(data, "inn.pdf", "t", "t", limits)
        timed[ruled] = time.perf_counter() - t0
        if ruled:
            rows = sum(1 for m in doc.marks if m.locator.table is not None)
    return {"pages": pages, "rows_found": rows,
            "ms_per_page_with_tables": round(timed[True] / pages * 1000, 1),
            "ms_per_page_text_only": round(timed[False] / pages * 1000, 1),
            "ms_per_page_finding_tables": round((timed[True] - timed[False]) / pages * 1000,
                                                1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--tables", type=int, default=50)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    report = {"ocr": ocr_figures(args.pages), "tables": table_figures(args.tables)}
    print(json.dumps(report, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
