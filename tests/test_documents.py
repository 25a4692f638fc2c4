from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from eval.scans import pdf_from_objects
from rag.documents import OPENING_CHARS, clean_text, discover, load_file, parse_bytes
from rag.errors import FileTooLargeError, UnreadableFileError, UnsupportedFileError
from rag.markup import MAX_HTML_ELEMENTS
from tests.seed_facts import SEED_A, SEED_B, SEEDS

pytestmark = pytest.mark.unit


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF with a real text layer, written by hand (no PDF writer needed)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    return pdf_from_objects(objects)


def test_seed_mojibake_and_ad_markers_are_repaired() -> None:
    doc = load_file(SEEDS / f"{SEED_A}.txt", SEED_A)
    assert "[ad_" not in doc.text
    for broken in ("â€", "†", "Â", "\u00a0"):
        assert broken not in doc.text
    assert "“2+2” meetings" in doc.text
    assert "“democratic ecosystem” for 5G" in doc.text
    assert "export controls.\nIn addition" in doc.text
    assert len(doc.sha256) == 64


def test_clean_text_keeps_curly_quotes_and_collapses_blank_runs() -> None:
    assert clean_text("[ad_1]\nIt’s “fine”.\r\n\r\n\r\n\r\nNext.  \n[ad_2]") == \
        "It’s “fine”.\n\nNext."


def test_title_comes_from_a_heading_line_or_the_file_name() -> None:
    assert load_file(SEEDS / f"{SEED_B}.txt", SEED_B).title.startswith("U.S. reluctance")
    prose = b"The tea was steamed at dawn. Then it was rolled.\n"
    assert parse_bytes(prose, "harvest-notes.txt", "n", "n").title == "harvest-notes"
    assert parse_bytes(prose, "Cafe 2024.txt", "n", "n").title == "Cafe 2024"


def test_a_machine_made_file_name_gives_way_to_the_opening_words() -> None:
    """Seed A's first line is a sentence and its name a hash (000_4b5d5bcc7add4bfe): it is
    named by its opening words, cut at a word, never by the hash."""
    title = load_file(SEEDS / f"{SEED_A}.txt", SEED_A).title
    assert title == ("At a time when US President Joe Biden’s administration is seeking to "
                     "restore…"), title
    assert len(title) <= OPENING_CHARS + 1
    uuid = "550e8400-e29b-41d4-a716-446655440000.txt"
    assert parse_bytes(b"Short note.\n", uuid, "u", "u").title == "Short note."


def test_html_keeps_text_only() -> None:
    html = (b"<html><head><title>Tea</title><style>p{color:red}</style></head><body>"
            b"<script>alert(1)</script><h1>Tea</h1><p>Green tea is steamed.</p></body></html>")
    doc = parse_bytes(html, "tea.html", "tea", "tea.html")
    assert doc.title == "Tea"
    assert "Green tea is steamed." in doc.text
    assert "alert" not in doc.text and "color" not in doc.text


def test_pdf_text_layer_is_extracted() -> None:
    doc = parse_bytes(_minimal_pdf("Basalt forms from cooled lava."), "rock.pdf", "rock", "x")
    assert "Basalt forms from cooled lava." in doc.text


def test_bad_files_fail_with_their_name(tmp_path: Path) -> None:
    with pytest.raises(UnsupportedFileError, match=r"x\.exe"):
        parse_bytes(b"MZ", "x.exe", "x", "x")
    with pytest.raises(UnreadableFileError, match=r"latin\.txt.*UTF-8"):
        parse_bytes("caf\u00e9".encode("latin-1"), "latin.txt", "latin", "x")
    with pytest.raises(UnreadableFileError, match=r"broken\.pdf"):
        parse_bytes(b"%PDF-1.4 garbage", "broken.pdf", "broken", "x")
    with pytest.raises(UnreadableFileError, match="no text"):
        parse_bytes(b"  \n[ad_1]\n", "empty.txt", "empty", "x")
    (tmp_path / "a.bin").write_bytes(b"\x00")
    with pytest.raises(UnsupportedFileError, match=r"a\.bin"):
        list(discover([tmp_path / "a.bin"]))
    with pytest.raises(UnreadableFileError, match="no such file"):
        list(discover([tmp_path / "missing"]))


def test_discover_skips_hidden_and_unsupported_inside_folders(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / ".git").mkdir()
    for name in ("a.txt", "sub/b.md", "c.gif", ".git/d.txt", "sub/e.HTML", "f.PNG"):
        (tmp_path / name).write_text("x")
    found = sorted(f.relative_to(tmp_path).as_posix() for f, _ in discover([tmp_path]))
    assert found == ["a.txt", "f.PNG", "sub/b.md", "sub/e.HTML"]  # images are read with OCR


def _flate_pdf(content: bytes, pages: int = 1) -> bytes:
    """A PDF whose pages all draw one FlateDecode content stream (for decompression bombs)."""
    z = zlib.compress(content, 9)
    kids = " ".join(f"{5 + i} 0 R" for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               f"<< /Type /Pages /Kids [{kids}] /Count {pages} >>".encode(),
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(z) + z + b"\nendstream"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
                b"/Resources << /Font << /F1 3 0 R >> >> >>"] * pages
    return pdf_from_objects(objects)


def test_the_content_decides_the_format_not_the_name() -> None:
    pdf = _minimal_pdf("Tea is steamed.")
    assert parse_bytes(pdf, "notes.txt", "n", "n").text == "Tea is steamed."
    html = b"<!DOCTYPE html><html><title>Tea</title><p>Green <b>tea</b>\n is steamed.</p></html>"
    doc = parse_bytes(html, "upload", "u", "u")  # no extension at all
    assert (doc.title, doc.text) == ("Tea", "Green tea is steamed.")
    assert parse_bytes("Thé vert.".encode("utf-16"), "w.txt", "w", "w").text == "Thé vert."
    with pytest.raises(UnsupportedFileError, match="an image, and OCR is off"):
        parse_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64), "photo.txt", "p", "p")
    with pytest.raises(UnsupportedFileError, match="GIF image"):
        parse_bytes(b"GIF89a" + bytes(64), "photo.txt", "p", "p")
    with pytest.raises(UnsupportedFileError, match="not a PNG, JPEG, TIFF or WebP"):
        parse_bytes(b"just text", "photo.png", "p", "p")
    with pytest.raises(UnsupportedFileError, match="zip archive"):
        parse_bytes(b"PK\x03\x04" + bytes(64), "report.md", "r", "r")
    with pytest.raises(UnsupportedFileError, match="not a PDF"):
        parse_bytes(b"just text", "fake.pdf", "f", "f")
    with pytest.raises(UnsupportedFileError, match="binary"):
        parse_bytes(b"abc\x00\x01\x02def", "blob", "b", "b")
    with pytest.raises(UnreadableFileError, match="empty"):
        parse_bytes(b"  \n", "empty.txt", "e", "e")


def test_pdf_bombs_are_refused_quickly() -> None:
    # 200 MB of spaces in a 200 KB stream: pypdf stops decompressing at our 20 MB cap.
    with pytest.raises(UnreadableFileError, match="LimitReached"):
        parse_bytes(_flate_pdf(b" " * 200_000_000), "zip.pdf", "z", "z")
    # 11 MB of text operators in a 40 KB file: refused before pypdf interprets them.
    ops = b"BT /F1 12 Tf 72 720 Td " + b"(AAAAAAAAAAAAAAAAAAAAAAAAAAAAAA) Tj " * 300_000 + b"ET"
    with pytest.raises(FileTooLargeError, match="drawing operators"):
        parse_bytes(_flate_pdf(ops, pages=50), "ops.pdf", "o", "o")
    with pytest.raises(UnreadableFileError, match="not a readable PDF"):
        parse_bytes(b"%PDF-1.7\n" + b"\x00\xff" * 1000, "junk.pdf", "j", "j")


def test_extracted_text_has_a_ceiling() -> None:
    page = b"BT /F1 12 Tf 72 720 Td (" + b"word " * 2000 + b") Tj ET"
    with pytest.raises(FileTooLargeError, match="more than 20000 characters"):
        parse_bytes(_flate_pdf(page, pages=5), "long.pdf", "l", "l", max_chars=20_000)
    with pytest.raises(FileTooLargeError, match="more than 100 characters"):
        parse_bytes(b"x " * 100, "long.txt", "l", "l", max_chars=100)


def test_deeply_nested_html_is_parsed_in_linear_time_up_to_the_element_cap() -> None:
    html = b"<html><body>" + b"<div>" * 200_000 + b"deep text" + b"</div>" * 200_000
    assert parse_bytes(html, "deep.html", "d", "d").text == "deep text"
    with pytest.raises(FileTooLargeError, match=f"more than {MAX_HTML_ELEMENTS} HTML elements"):
        parse_bytes(b"<div>" * (MAX_HTML_ELEMENTS + 1) + b"text", "divs.html", "d", "d")
