"""Files to Documents: extract text, repair it, and keep the source's identity.

The cleaned text is what gets stored, and every offset in the index points into
it, so cleaning happens exactly once, here. A reader that knows where its lines were (a PDF
page, a slide, a row, a heading's section) marks them; the text is then cleaned piece by
piece between the marks, so each mark's offset in the cleaned text is exact.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path

import ftfy

from rag import formats, mail, ocr
from rag.config import MAX_DOCUMENT_CHARS
from rag.errors import FileTooLargeError, UnreadableFileError, UnsupportedFileError
from rag.markup import UTF16_BOMS, Extracted, RawMark, decode, html_text, markdown_marks
from rag.pdf import pdf_text
from rag.types import Document, Locator, Mark

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx",
                                ".pptx", ".xlsx", ".csv", ".tsv", ".epub",
                                ".eml"}) | ocr.IMAGE_SUFFIXES
HTML_SUFFIXES = frozenset({".html", ".htm"})
# Content that is never text, whatever the file is called.
_BINARY_MAGIC = {
    b"\x1f\x8b": "gzip data",
    b"\xfd7zXZ\x00": "xz data", b"7z\xbc\xaf": "a 7z archive", b"Rar!\x1a": "a rar archive",
    b"GIF87a": "a GIF image",
    b"GIF89a": "a GIF image", b"\x7fELF": "an executable",
    b"\xd0\xcf\x11\xe0": "an OLE file (doc, xls, msg)", b"%!PS-Adobe": "PostScript",
}
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_TEXT_KINDS = {".csv": "csv", ".tsv": "csv", ".eml": "eml"}
MARKDOWN_SUFFIXES = frozenset({".md", ".markdown"})
# A machine-made file name (a hash, a UUID): a run of 8 or more hex digits and no letter past
# "f". It says nothing to a reader, so such a document is named by its opening words.
_HEX_RUN = re.compile(r"[0-9a-f]{8,}", re.IGNORECASE)
_PAST_F = re.compile(r"[g-z]", re.IGNORECASE)
OPENING_CHARS = 80  # the most of a document's opening words a title made of them shows
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


def _guess_title(text: str, name: str) -> str:
    """A first line that reads as a title, else the file's name (without its extension),
    else, when that name is machine-made, the document's opening words."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if not line:
            continue
        if len(line) <= 150 and not line.endswith((".", "?", "!", ":")):
            return line
        break
    stem = Path(name).stem
    if not _HEX_RUN.search(stem) or _PAST_F.search(stem):
        return stem
    opening = " ".join(text[:OPENING_CHARS * 4].split())
    if len(opening) <= OPENING_CHARS:
        return opening
    return opening[:OPENING_CHARS].rsplit(" ", 1)[0].rstrip(",;:") + "…"


def _too_much_text(name: str, max_chars: int) -> str:
    return f"{name}: more than {max_chars} characters of text; split the document"


def readable_suffixes(with_ocr: bool) -> frozenset[str]:
    """The extensions read under RAG_OCR (images need OCR): what an upload picker offers."""
    return SUPPORTED_SUFFIXES if with_ocr else SUPPORTED_SUFFIXES - ocr.IMAGE_SUFFIXES


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
    if ocr.is_image(data):
        return "image"
    for magic, what in _BINARY_MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedFileError(f"{name}: the content is {what}, not a document")
    if suffix in ocr.IMAGE_SUFFIXES:
        raise UnsupportedFileError(f"{name}: named {suffix} but the content is not a PNG, "
                                   "JPEG, TIFF or WebP image")
    if suffix == ".pdf" or suffix in formats.ZIP_SUFFIXES:
        what = "PDF (no %PDF- header)" if suffix == ".pdf" else f"{suffix[1:]} file (not a zip)"
        raise UnsupportedFileError(f"{name}: named {suffix} but the content is not a {what}")
    if b"\x00" in data[:8192] and not data.startswith(UTF16_BOMS):
        raise UnsupportedFileError(f"{name}: binary content (NUL bytes) of no supported format")
    if suffix in HTML_SUFFIXES or (not suffix and _HTML_START.match(data[:4096])):
        return "html"
    return _TEXT_KINDS.get(suffix, "text")


def extract(data: bytes, name: str, max_chars: int = MAX_DOCUMENT_CHARS,
            depth: int = 0, reader: ocr.PageReader | None = None) -> Extracted:
    """The raw text of a file (before clean_text), its title if the format holds one, and
    where its lines were in the original (pages, slides, rows, tables, heading paths).
    Scanned pages and images are read with OCR by ``reader``; None means OCR is off."""
    kind = sniff_format(data, name)
    if kind == "html":
        return html_text(data, name)
    if kind == "pdf":
        return pdf_text(data, name, max_chars, reader)
    if kind == "image":
        return _image_text(data, name, reader)
    if kind == "eml":
        return mail.eml_text(data, name, max_chars,
                             lambda d, n, level: extract(d, n, max_chars, level, reader), depth)
    if kind in _READERS:
        return _READERS[kind](data, name, max_chars)
    raw = decode(data, name)
    if "\x00" in raw:
        raise UnreadableFileError(f"{name}: contains NUL bytes; is it really text?")
    markdown = Path(name).suffix.lower() in MARKDOWN_SUFFIXES
    return Extracted(raw, None, markdown_marks(raw) if markdown else ())


def _image_text(data: bytes, name: str, reader: ocr.PageReader | None) -> Extracted:
    """An image file read with OCR: each of its pages (a TIFF may hold several) marked with
    its number, "ocr" and the engine's confidence."""
    if reader is None:
        raise UnsupportedFileError(f"{name}: an image, and OCR is off (RAG_OCR=off or "
                                   "--no-ocr); turn it on to index images")
    total, images = ocr.image_pages(data, name)
    pages = reader.read(images, total)
    marks: list[RawMark] = []
    kept: list[str] = []
    size = 0
    for number, page in enumerate(pages, 1):
        if page.text.strip():
            marks.append((size, Locator(page=number, ocr=True,
                                        confidence=page.confidence)))
            kept.append(page.text.strip())
            size += len(kept[-1]) + 2
    if not kept:
        raise UnreadableFileError(f"{name}: no text found in the image, even with OCR")
    return Extracted("\n\n".join(kept), None, tuple(marks))


_READERS = {"docx": formats.docx_text, "pptx": formats.pptx_text, "xlsx": formats.xlsx_text,
            "csv": formats.csv_text, "epub": mail.epub_text}


def parse_bytes(data: bytes, name: str, doc_id: str, source: str,
                max_chars: int = MAX_DOCUMENT_CHARS,
                reader: ocr.PageReader | None = None) -> Document:
    """Build a Document from a file's bytes; the content decides the format (``sniff_format``).
    Scanned pages and images are read with OCR by ``reader`` (None: OCR is off)."""
    raw, title, raw_marks = extract(data, name, max_chars, reader=reader)
    if len(raw) > max_chars:
        raise FileTooLargeError(_too_much_text(name, max_chars))
    text, marks = clean_marked(raw, raw_marks)
    if not text:
        raise UnreadableFileError(f"{name}: no text left after extraction; nothing to index")
    return Document(
        doc_id=doc_id,
        title=title or _guess_title(text, name),
        source=source,
        text=text,
        sha256=hashlib.sha256(data).hexdigest(),
        marks=marks,
    )


def load_file(path: Path, doc_id: str, max_chars: int = MAX_DOCUMENT_CHARS,
              reader: ocr.PageReader | None = None) -> Document:
    """A file parsed in this process (rag.ingest parses each in a worker: rag.isolation)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror})") from None
    return replace(parse_bytes(data, path.name, doc_id, path.name, max_chars, reader),
                   path=str(path.resolve()))


def indexable(file: Path, root: Path) -> bool:
    """A file a folder ingest reads: a supported suffix, and no hidden part below ``root``."""
    rel = file.relative_to(root) if file.is_relative_to(root) else Path(file.name)
    return file.suffix.lower() in SUPPORTED_SUFFIXES and \
        not any(part.startswith(".") for part in rel.parts)


def discover(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every supported file under the given paths.

    A file named directly must be supported (else it is an error); inside a
    folder, hidden and unsupported files are skipped.
    """
    for path in paths:
        path = path.resolve()
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                if indexable(file, path) and file.is_file():
                    yield file, path
        elif path.is_file():
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise _unsupported(str(path), path.suffix or "(none)")
            yield path, path.parent
        else:
            raise UnreadableFileError(f"{path}: no such file or folder")
