"""api/web.py without a server: the page the server writes (the browser tests drive it)."""

from __future__ import annotations

import re

import pytest

from api.web import FORMATS, STATIC, page
from rag.config import Settings
from rag.documents import readable_suffixes

pytestmark = pytest.mark.unit


def _accept(html: str) -> list[str]:
    found = re.search(r'<input id="file" type="file" accept="([^"]*)">', html)
    assert found, "the upload picker is gone from index.html"
    return found[1].split(",")


def test_the_picker_offers_what_the_server_reads() -> None:
    with_ocr = page(Settings.model_construct())
    assert FORMATS not in with_ocr
    assert _accept(with_ocr) == sorted(readable_suffixes(True))
    without = _accept(page(Settings.model_construct(ocr=False)))
    assert ".pdf" in without and ".png" not in without and ".docx" in without


def test_every_url_of_the_page_is_relative() -> None:
    """So the page works under a proxy's path prefix (tests/test_webui.py runs it there)."""
    html = (STATIC / "index.html").read_text()
    script = (STATIC / "app.js").read_text()
    assert not re.findall(r'(?:href|src)="/', html)
    assert not re.findall(r"""(?:fetch|call|getJSON|open)\([^)]*['"]/""", script)
    assert not re.findall(r"""['"]/(?:v1|readyz|healthz|static|docs)""", script)
