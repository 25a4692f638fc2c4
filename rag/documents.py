"""Files to Documents: extract text, repair it, and keep the source's identity.

The cleaned text is what gets stored, and every offset in the index points into
it, so cleaning happens exactly once, here.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import ftfy

from rag.errors import UnreadableFileError, UnsupportedFileError
from rag.types import Document

SUPPORTED_SUFFIXES = frozenset({".txt", ".md", ".markdown", ".html", ".htm", ".pdf"})

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


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise UnreadableFileError(
            f"{name}: not valid UTF-8 text (byte {exc.start}); convert it to UTF-8 and retry"
        ) from None


def _html_text(data: bytes, name: str) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(_decode(data, name), "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "svg", "head"]):
        if tag.name == "head":
            continue
        tag.decompose()
    title_tag = soup.find("title") or soup.find("h1")
    title = title_tag.get_text(" ", strip=True) if title_tag else None
    if soup.head:
        soup.head.decompose()
    blocks = [line.strip() for line in soup.get_text("\n").splitlines()]
    return "\n".join(b for b in blocks if b), title


def _pdf_text(data: bytes, name: str) -> tuple[str, str | None]:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise UnreadableFileError(f"{name}: the PDF is encrypted; decrypt it and retry")
        pages = [page.extract_text() or "" for page in reader.pages]
        title = reader.metadata.title if reader.metadata else None
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableFileError(f"{name}: not a readable PDF ({exc})") from None
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


def parse_bytes(data: bytes, name: str, doc_id: str, source: str) -> Document:
    """Build a Document from a file's bytes; ``name`` decides the format."""
    suffix = Path(name).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        supported = ", ".join(sorted(SUPPORTED_SUFFIXES))
        raise UnsupportedFileError(f"{name}: unsupported file type {suffix or '(none)'!r}; "
                                   f"supported: {supported}")
    title: str | None = None
    if suffix in (".html", ".htm"):
        raw, title = _html_text(data, name)
    elif suffix == ".pdf":
        raw, title = _pdf_text(data, name)
    else:
        raw = _decode(data, name)
        if "\x00" in raw:
            raise UnreadableFileError(f"{name}: contains NUL bytes; is it really text?")
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


def load_file(path: Path, doc_id: str) -> Document:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_bytes(data, path.name, doc_id, str(path))


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
                raise UnsupportedFileError(
                    f"{path}: unsupported file type {path.suffix or '(none)'!r}; supported: "
                    + ", ".join(sorted(SUPPORTED_SUFFIXES)))
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
