"""Files to Documents: extract text, repair it, and keep the source's identity.

The cleaned text is what gets stored, and every offset in the index points into
it, so cleaning happens exactly once, here. A reader that knows where its lines were (a PDF
page, a slide, a row, a heading's section) marks them; the text is then cleaned piece by
piece between the marks, so each mark's offset in the cleaned text is exact.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Container, Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import ftfy

from rag import formats, mail
from rag.config import MAX_DOCUMENT_CHARS
from rag.errors import FileTooLargeError, UnreadableFileError, UnsupportedFileError
from rag.markup import UTF16_BOMS, Extracted, RawMark, decode, html_text, markdown_marks
from rag.types import Document, Locator, Mark

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx",
                                ".pptx", ".xlsx", ".csv", ".tsv", ".epub", ".eml"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
MAX_PDF_PAGES = 5_000
# Decompressed bytes allowed per PDF stream (pypdf's own default is 75 MB), and per page's
# content: pypdf needs about 5 s a megabyte of drawing operators, and a text page holds
# 10-200 KB, so a 40 KB PDF of pages of millions of operators cannot burn minutes of CPU.
_PDF_STREAM_LIMIT = 20_000_000
MAX_PDF_PAGE_CONTENT = 1_000_000
MAX_PDF_SECONDS = 60.0
# Content that is never text, whatever the file is called.
_BINARY_MAGIC = {
    b"\x1f\x8b": "gzip data",
    b"\xfd7zXZ\x00": "xz data", b"7z\xbc\xaf": "a 7z archive", b"Rar!\x1a": "a rar archive",
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image", b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an OLE file (doc, xls, msg)", b"%!PS-Adobe": "PostScript",
}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TEXT_KINDS = {".csv": "csv", ".tsv": "csv", ".eml": "eml"}
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
_HTML_START = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html|head|body)[\s>]",
                         re.IGNORECASE | re.DOTALL)

_AD_MARKER = re.compile(r"^[ \t]*\[ad_\d+\][ \t]*\n?", re.MULTILINE)
# Mojibake that ftfy leaves behind once half of a sequence was already decoded:
# "â€\x9d" + space collapses to "†" ("2+2†meetings"), and "Â" before a
# (no-break) space or line end is the lead byte of U+00A0 read as cp1252.
_DAGGER_QUOTE = re.compile(r"(?<=\S)†(?=\w)")
_STRAY_A_CIRCUMFLEX = re.compile(r"Â(?=[\s\u00a0]|$)")
_BLANK_RUNS = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+$", re.MULTILINE)


def clean_text(raw: str) -> str:
    """Repair encoding damage and drop ad markers, keeping the author's punctuation."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    text = ftfy.fix_text(text, uncurl_quotes=False, normalization="NFC")
    text = _DAGGER_QUOTE.sub("” ", text)
    text = _STRAY_A_CIRCUMFLEX.sub("", text)
    text = text.replace("\u00a0", " ")
    text = _AD_MARKER.sub("", text)
    text = _TRAILING_SPACE.sub("", text)
    text = _BLANK_RUNS.sub("\n\n", text)
    return text.strip()


_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x85]")


def clean_marked(raw: str, marks: Sequence[RawMark]) -> tuple[str, tuple[Mark, ...]]:
    """``clean_text`` of ``raw``, done piece by piece between the marks (offsets of line
    starts, increasing), and each mark's offset in the result.

    The pieces are joined as clean_text joins lines: by a blank line where the raw text
    had one between them, else by a line break. clean_text works line by line apart from
    that, so the result is clean_text(raw) (tests/test_locators.py checks every format).
    """
    if not marks:
        return clean_text(raw), ()
    bounds = [0, *(start for start, _ in marks), len(raw)]
    where: list[Locator | None] = [None, *(locator for _, locator in marks)]
    parts: list[str] = []
    out: list[Mark] = []
    size, gap = 0, ""
    names: dict[str | None, str | None] = {None: None}  # sheets, headings: repaired too
    for a, b, locator in zip(bounds[:-1], bounds[1:], where, strict=True):
        piece = raw[a:b]
        cleaned = clean_text(piece)
        if not cleaned:
            gap += piece
            continue
        if parts:
            gap += piece[:len(piece) - len(piece.lstrip())]
            parts.append("\n\n" if len(_LINE_BREAK.findall(gap)) > 1 else "\n")
            size += len(parts[-1])
        if locator is not None:
            for field in (locator.sheet, locator.heading):
                if field is not None and field not in names:
                    names[field] = clean_text(field)
            out.append(Mark(size, replace(locator, sheet=names[locator.sheet],
                                          heading=names[locator.heading])))
        parts.append(cleaned)
        size += len(cleaned)
        gap = piece[len(piece.rstrip()):]
    return "".join(parts), tuple(out)


def _pdf_text(data: bytes, name: str, max_chars: int) -> Extracted:
    from pypdf import PdfReader, apply_configuration

    pages: list[str] = []
    size = 0
    try:
        with apply_configuration(zlib_maximum_output_length=_PDF_STREAM_LIMIT,
                                 lzw_maximum_output_length=_PDF_STREAM_LIMIT,
                                 run_length_maximum_output_length=_PDF_STREAM_LIMIT):
            reader = PdfReader(io.BytesIO(data))
            if reader.is_encrypted:
                raise UnreadableFileError(f"{name}: the PDF is encrypted; decrypt it and retry")
            if len(reader.pages) > MAX_PDF_PAGES:
                raise FileTooLargeError(f"{name}: {len(reader.pages)} pages is over the limit "
                                        f"of {MAX_PDF_PAGES}; split the PDF")
            deadline = time.monotonic() + MAX_PDF_SECONDS
            for number, page in enumerate(reader.pages, 1):
                contents = page.get_contents()
                content_size = len(contents.get_data()) if contents is not None else 0
                if content_size > MAX_PDF_PAGE_CONTENT:
                    raise FileTooLargeError(
                        f"{name}: page {number} holds {content_size} bytes of drawing "
                        f"operators, over the limit of {MAX_PDF_PAGE_CONTENT}")
                pages.append(page.extract_text() or "")
                if time.monotonic() > deadline:
                    raise FileTooLargeError(f"{name}: text extraction took over "
                                            f"{MAX_PDF_SECONDS:g} s; split the PDF")
                size += len(pages[-1])
                if size > max_chars:
                    raise FileTooLargeError(_too_much_text(name, max_chars))
            title = reader.metadata.title if reader.metadata else None
    except (UnreadableFileError, FileTooLargeError):
        raise
    except Exception as exc:  # hostile PDFs make pypdf raise almost anything
        raise UnreadableFileError(f"{name}: not a readable PDF ({type(exc).__name__}: "
                                  f"{str(exc)[:200]})") from None
    marks: list[RawMark] = []
    kept: list[str] = []
    size = 0
    for number, page_text in enumerate(pages, 1):
        if page_text.strip():
            marks.append((size, Locator(page=number)))
            kept.append(page_text.strip())
            size += len(kept[-1]) + 2
    if not kept:
        raise UnreadableFileError(f"{name}: the PDF has no text layer (scanned?); OCR it first")
    return Extracted("\n\n".join(kept), str(title) if title else None, tuple(marks))


def _guess_title(text: str, fallback: str) -> str:
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if not line:
            continue
        if len(line) <= 150 and not line.endswith((".", "?", "!", ":")):
            return line
        break
    return fallback


def _too_much_text(name: str, max_chars: int) -> str:
    return f"{name}: more than {max_chars} characters of text; split the document"


def _unsupported(name: str, suffix: str) -> UnsupportedFileError:
    return UnsupportedFileError(f"{name}: unsupported file type {suffix!r}; supported: "
                                + ", ".join(sorted(SUPPORTED_SUFFIXES)))


def sniff_format(data: bytes, name: str) -> str:
    """The format, decided by the content; the name only tells apart formats of plain text
    (HTML, CSV, e-mail, text).

    A file is never parsed as something its bytes are not: a PDF or .docx renamed .txt is
    read as what it is, an image renamed .pdf is refused, and a name without an extension
    is fine. Zip-based files ("docx", "pptx", "xlsx", "epub") pass the zip-bomb and XML
    entity checks here (rag.formats.zip_kind).
    """
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in SUPPORTED_SUFFIXES:
        raise _unsupported(name, suffix)
    if not data.strip():
        raise UnreadableFileError(f"{name}: the file is empty; nothing to index")
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(_ZIP_MAGIC):
        return formats.zip_kind(data, name, suffix)
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedFileError(f"{name}: the content is {what}, not a document")
    if suffix == ".pdf" or suffix in formats.ZIP_SUFFIXES:
        what = "PDF (no %PDF- header)" if suffix == ".pdf" else f"{suffix[1:]} file (not a zip)"
        raise UnsupportedFileError(f"{name}: named {suffix} but the content is not a {what}")
    if b"\x00" in data[:8192] and not data.startswith(UTF16_BOMS):
        raise UnsupportedFileError(f"{name}: binary content (NUL bytes) of no supported format")
    if suffix in HTML_SUFFIXES or (not suffix and _HTML_START.match(data[:4096])):
        return "html"
    return _TEXT_KINDS.get(suffix, "text")


def extract(data: bytes, name: str, max_chars: int = MAX_DOCUMENT_CHARS,
            depth: int = 0) -> Extracted:
    """The raw text of a file (before clean_text), its title if the format holds one, and
    where its lines were in the original (pages, slides, rows, heading paths)."""
    kind = sniff_format(data, name)
    if kind == "html":
        return html_text(data, name)
    if kind == "pdf":
        return _pdf_text(data, name, max_chars)
    if kind == "eml":
        return mail.eml_text(data, name, max_chars,
                                lambda d, n, level: extract(d, n, max_chars, level), depth)
    if kind in _READERS:
        return _READERS[kind](data, name, max_chars)
    raw = decode(data, name)
    if "\x00" in raw:
        raise UnreadableFileError(f"{name}: contains NUL bytes; is it really text?")
    markdown = Path(name).suffix.lower() in MARKDOWN_SUFFIXES
    return Extracted(raw, None, markdown_marks(raw) if markdown else ())


_READERS = {"docx": formats.docx_text, "pptx": formats.pptx_text, "xlsx": formats.xlsx_text,
            "csv": formats.csv_text, "epub": mail.epub_text}


def parse_bytes(data: bytes, name: str, doc_id: str, source: str,
                max_chars: int = MAX_DOCUMENT_CHARS) -> Document:
    """Build a Document from a file's bytes; the content decides the format (``sniff_format``)."""
    raw, title, raw_marks = extract(data, name, max_chars)
    if len(raw) > max_chars:
        raise FileTooLargeError(_too_much_text(name, max_chars))
    text, marks = clean_marked(raw, raw_marks)
    if not text:
        raise UnreadableFileError(f"{name}: no text left after extraction; nothing to index")
    return Document(
        doc_id=doc_id,
        title=title or _guess_title(text, Path(name).stem),
        source=source,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        marks=marks,
    )


def load_file(path: Path, doc_id: str, max_chars: int = MAX_DOCUMENT_CHARS) -> Document:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_bytes(data, path.name, doc_id, str(path), max_chars)


def discover(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every supported file under the given paths.

    A file named directly must be supported (else it is an error); inside a
    folder, hidden and unsupported files are skipped.
    """
    for path in paths:
        path = path.resolve()
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                rel = file.relative_to(path)
                if any(part.startswith(".") for part in rel.parts):
                    continue
                if file.is_file() and file.suffix.lower() in SUPPORTED_SUFFIXES:
                    yield file, path
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise _unsupported(str(path), path.suffix or "(none)")
            yield path, path.parent
        else:
            raise UnreadableFileError(f"{path}: no such file or folder")


def doc_id_for(file: Path, root: Path, taken: Container[str]) -> str:
    """The file name without extension, or its relative path when that is taken."""
    stem = file.stem
    if stem not in taken:
        return stem
    candidate = file.relative_to(root).with_suffix("").as_posix()
    if candidate not in taken:
        return candidate
    return f"{candidate}-{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
