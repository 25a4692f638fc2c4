"""Text out of markup and raw bytes: UTF-8/UTF-16 decoding and a streaming HTML reader.

Shared by the readers of plain files (rag.documents) and of containers that hold HTML
(EPUB chapters, e-mail bodies; rag.formats).
"""

from __future__ import annotations

from html.parser import HTMLParser

from rag.errors import UnreadableFileError

UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def decode(data: bytes, name: str) -> str:
    """UTF-8, or UTF-16 when the file starts with its byte-order mark (Windows editors)."""
    utf16 = data.startswith(UTF16_BOMS)
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


def html_text(data: bytes, name: str) -> tuple[str, str | None]:
    parser = _TextExtractor()
    parser.feed(decode(data, name))
    parser.close()
    parser.flush()
    return "\n".join(line for line in parser.lines if line), parser.title
