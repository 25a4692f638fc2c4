"""What hostile uploads cost a real `rag serve`: time to the refusal and the server's memory.

    python -m eval.bench.hostile [--docs seeds] [--parallel 4]

Ingests the documents into a temporary index, starts `rag serve` on a free loopback port
and uploads, one at a time: issue 26's .docx (5.3 million one-letter paragraphs, 180 MB
unpacked in about 525 KB), a 9.9 MB HTML page of 900,000 nested <div>s, and then
``--parallel`` copies of the .docx at once (all but RAG_MAX_CONCURRENT_UPLOADS of them are
turned away with a 503). For each: the status, the seconds to the answer, and the server's
resident memory before, at its highest while it worked (sampled every 20 ms from /proc),
and after.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from eval.harness import RAG, Server, rss_mb, serve_rag


def paragraph_bomb_docx(paragraphs: int = 5_300_000) -> bytes:
    """A .docx (python-docx's blank document) whose document.xml holds ``paragraphs``
    one-letter paragraphs, written as a stream: 5.3 million make 180 MB unpacked."""
    from docx import Document

    blank = io.BytesIO()
    Document().save(blank)
    src = zipfile.ZipFile(blank)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            if info.filename != "word/document.xml":
                dst.writestr(info.filename, src.read(info.filename))
        entry = zipfile.ZipInfo("word/document.xml")
        entry.compress_type = zipfile.ZIP_DEFLATED
        with dst.open(entry, "w", force_zip64=True) as body:
            body.write(b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
                       b'<w:document xmlns:w="http://schemas.openxmlformats.org/'
                       b'wordprocessingml/2006/main"><w:body>')
            block = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 10_000
            for _ in range(paragraphs // 10_000):
                body.write(block)
            body.write(b"</w:body></w:document>")
    return out.getvalue()


def nested_divs_html(depth: int = 900_000) -> bytes:
    return b"<html><body>" + b"<div>" * depth + b"deep" + b"</div>" * depth


def _measured(server: Server, send: Callable[[], list[httpx.Response]]) -> dict[str, Any]:
    """Run ``send`` while sampling the server's memory."""
    before = rss_mb(server.pid)
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak.append(rss_mb(server.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample)
    sampler.start()
    t0 = time.perf_counter()
    try:
        responses = send()
    finally:
        seconds = time.perf_counter() - t0
        done.set()
        sampler.join()
    time.sleep(1)
    return {"statuses": sorted(r.status_code for r in responses),
            "detail": responses[0].json().get("detail"), "seconds": round(seconds, 2),
            "rss_mb": {"before": before, "peak": max(peak), "after": rss_mb(server.pid)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=Path, default=Path("seeds"))
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    bomb, divs = paragraph_bomb_docx(), nested_divs_html()
    with tempfile.TemporaryDirectory() as tmp:
        env = {"RAG_INDEX_DIR": str(Path(tmp) / "index")}
        subprocess.run([RAG, "ingest", str(args.docs)], env={**os.environ, **env}, check=True,
                       capture_output=True)
        with serve_rag(env, timeout=600) as server:
            def upload(name: str, data: bytes) -> httpx.Response:
                with httpx.Client(base_url=server.base_url, timeout=600) as http:
                    return http.post("/v1/documents", files={"file": (name, data)})

            def burst() -> list[httpx.Response]:
                found: list[httpx.Response] = []
                senders = [threading.Thread(target=lambda: found.append(upload("b.docx", bomb)))
                           for _ in range(args.parallel)]
                for s in senders:
                    s.start()
                for s in senders:
                    s.join()
                return found

            result = {
                "docx_bytes": len(bomb), "html_bytes": len(divs),
                "paragraph_bomb.docx": _measured(server, lambda: [upload("bomb.docx", bomb)]),
                "nested_divs.html": _measured(server, lambda: [upload("divs.html", divs)]),
                f"{args.parallel} x paragraph_bomb.docx at once": _measured(server, burst)}
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
