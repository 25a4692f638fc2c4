"""Files to Documents: extract text, repair it, and keep the source's identity.

The cleaned text is what gets stored, and every offset in the index points into
it, so cleaning happens exactly once, here.
"""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser
from pathlib import Path

import ftfy

from rag.config import MAX_DOCUMENT_CHARS
from rag.errors import FileTooLargeError, UnreadableFileError, UnsupportedFileError
from rag.types import Document

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf"})
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
    b"PK\x03\x04": "a zip archive (docx, xlsx, epub, ...)", b"\x1f\x8b": "gzip data",
    b"\xfd7zXZ\x00": "xz data", b"7z\xbc\xaf": "a 7z archive", b"Rar!\x1a": "a rar archive",
    b"\x89PNG": "a PNG image", b"\xff\xd8\xff": "a JPEG image", b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image", b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an OLE file (doc, xls, msg)", b"%!PS-Adobe": "PostScript",
}
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


_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def _decode(data: bytes, name: str) -> str:
    """UTF-8, or UTF-16 when the file starts with its byte-order mark (Windows editors)."""
    utf16 = data.startswith(_UTF16_BOMS)
    try:
        return data.decode("utf-16" if utf16 else "utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{name}: not valid {'UTF-16' if utf16 else 'UTF-8'} text (byte {exc.start}); "
            "convert it to UTF-8 and retry") from None


_SKIPPED_TAGS = frozenset({"script", "style", "noscript", "template", "svg", "head", "title"})
_BLOCK_TAGS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt", "figcaption",
    "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li",
    "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "tr", "ul", "title",
    "body", "html"})
_VOID_TAGS = frozenset({"area", "base", "br", "col", "embed", "hr", "img", "input", "link",
                        "meta", "source", "track", "wbr"})


class _TextExtractor(HTMLParser):
    """Text outside script/style/head, a line per block element; the <title> or first <h1>.

    A streaming parser, not a tree: a hostile upload of a million nested tags costs
    linear time and no memory beyond its text.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[str] = []
        self._block: list[str] = []
        self._pre = 0
        self.skipping: list[str] = []
        self.title: str | None = None
        self._capture: str | None = None
        self._captured: list[str] = []

    def flush(self) -> None:
        if self._block:
            text = "".join(self._block)
            if self._pre:  # preformatted: keep its lines
                self.lines.extend(line.strip() for line in text.splitlines())
            else:  # HTML collapses whitespace, line breaks included
                self.lines.append(" ".join(text.split()))
            self._block = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag in _VOID_TAGS:
            return
        self._pre += tag == "pre"
        if self._capture is None and self.skipping in ([], ["head"]) and (
                tag == "title" or (tag == "h1" and self.title is None)):
            self._capture, self._captured = tag, []
        if tag in _SKIPPED_TAGS:
            self.skipping.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in _BLOCK_TAGS:
            self.flush()
        if tag == "pre" and self._pre:
            self._pre -= 1
        if self.skipping and tag == self.skipping[-1]:
            self.skipping.pop()
        if tag == self._capture:
            text = " ".join(" ".join(self._captured).split())
            if text and (tag == "title" or self.title is None):
                self.title = text
            self._capture = None

    def handle_data(self, data: str) -> None:
        if self._capture is not None:
            self._captured.append(data)
        if not self.skipping:
            self._block.append(data)


def _html_text(data: bytes, name: str) -> tuple[str, str | None]:
    parser = _TextExtractor()
    parser.feed(_decode(data, name))
    parser.close()
    parser.flush()
    return "\n".join(line for line in parser.lines if line), parser.title


def _pdf_text(data: bytes, name: str, max_chars: int) -> tuple[str, str | None]:
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
    text = "\n\n".join(p.strip() for p in pages if p.strip())
    if not text:
        raise UnreadableFileError(f"{name}: the PDF has no text layer (scanned?); OCR it first")
    return text, str(title) if title else None


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
    """"pdf", "html" or "text", decided by the content; the name only tells HTML from text.

    A file is never parsed as something its bytes are not: a PDF renamed .txt is read
    as a PDF, an image renamed .pdf is refused, and a name without an extension is fine.
    """
    suffix = Path(name).suffix.lower()
    if suffix and suffix not in SUPPORTED_SUFFIXES:
        raise _unsupported(name, suffix)
    if not data.strip():
        raise UnreadableFileError(f"{name}: the file is empty; nothing to index")
    if data[:1024].lstrip().startswith(b"%PDF-"):
        return "pdf"
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedFileError(f"{name}: the content is {what}, not text, HTML or PDF")
    if suffix == ".pdf":
        raise UnsupportedFileError(f"{name}: named .pdf but the content is not a PDF "
                                   "(no %PDF- header)")
    if b"\x00" in data[:8192] and not data.startswith(_UTF16_BOMS):
        raise UnsupportedFileError(f"{name}: binary content (NUL bytes); only text, HTML and "
                                   "PDF are indexed")
    if suffix in HTML_SUFFIXES or (not suffix and _HTML_START.match(data[:4096])):
        return "html"
    return "text"


def parse_bytes(data: bytes, name: str, doc_id: str, source: str,
                max_chars: int = MAX_DOCUMENT_CHARS) -> Document:
    """Build a Document from a file's bytes; the content decides the format (``sniff_format``)."""
    kind = sniff_format(data, name)
    title: str | None = None
    if kind == "html":
        raw, title = _html_text(data, name)
    elif kind == "pdf":
        raw, title = _pdf_text(data, name, max_chars)
    else:
        raw = _decode(data, name)
        if "\x00" in raw:
            raise UnreadableFileError(f"{name}: contains NUL bytes; is it really text?")
    if len(raw) > max_chars:
        raise FileTooLargeError(_too_much_text(name, max_chars))
    text = clean_text(raw)
    if not text:
        raise UnreadableFileError(f"{name}: no text left after extraction; nothing to index")
    return Document(
        doc_id=doc_id,
        title=title or _guess_title(text, Path(name).stem),
        source=source,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
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


def doc_id_for(file: Path, root: Path, taken: set[str]) -> str:
    """The file name without extension, or its relative path when that is taken."""
    stem = file.stem
    if stem not in taken:
        return stem
    candidate = file.relative_to(root).with_suffix("").as_posix()
    if candidate not in taken:
        return candidate
    return f"{candidate}-{hashlib.sha1(str(file).encode()).hexdigest()[:8]}"
