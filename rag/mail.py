"""E-books and saved mail to text: EPUB through ebooklib, .eml through the stdlib's email.

Both hold HTML (chapters, mail bodies), read by rag.markup's streaming reader; their zip
and XML checks are rag.formats'.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from email import message_from_bytes, policy
from email.message import EmailMessage

from rag.errors import UnreadableFileError, UnsupportedFileError
from rag.formats import Text, guarded
from rag.markup import Extracted, html_text
from rag.types import Locator

MAX_ATTACHMENT_DEPTH = 2  # a mail attached to a mail attached to a mail is refused
# Reads an attachment's bytes: (data, name, depth) -> (text, title)
ReadAttachment = Callable[[bytes, str, int], Extracted]


def epub_text(data: bytes, name: str, max_chars: int) -> Extracted:
    """The book's XHTML documents in spine (reading) order, through the HTML reader (whose
    heading paths mark each chapter's sections)."""
    def read() -> Extracted:
        from ebooklib import ITEM_DOCUMENT, epub

        book = epub.read_epub(io.BytesIO(data), {"ignore_ncx": True})
        out = Text(name, max_chars)
        for idref, _ in book.spine:
            item = book.get_item_with_id(idref)
            if item is None or item.get_type() != ITEM_DOCUMENT or \
                    isinstance(item, epub.EpubNav):
                continue  # the table of contents repeats the chapters' titles
            chapter = html_text(item.get_content(), f"{name}:{item.get_name()}")
            if chapter.text:
                if out.lines:
                    out.add("")
                out.marks.extend((out.size + start, where) for start, where in chapter.marks)
                out.add(chapter.text)
        titles = book.get_metadata("DC", "title")
        return out.extracted(str(titles[0][0]) if titles else None)

    return guarded("EPUB", name, read)


_MAIL_HEADERS = ("Subject", "From", "To", "Cc", "Date")


def eml_text(data: bytes, name: str, max_chars: int, read_attachment: ReadAttachment,
             depth: int = 0) -> Extracted:
    """Headers (Subject, From, To, Cc, Date) as lines, the plain or HTML body, then each
    attachment of a supported type under an "Attachment: NAME" line, which is also its
    locator (the others are named with the reason they were left out)."""
    if depth > MAX_ATTACHMENT_DEPTH:
        raise UnreadableFileError(f"{name}: mail attached inside mail more than "
                                  f"{MAX_ATTACHMENT_DEPTH} levels deep")

    def read() -> Extracted:
        msg = message_from_bytes(data, policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if not any(msg.get(h) for h in ("From", "Subject", "Date", "Message-ID")):
            raise UnreadableFileError(f"{name}: no mail headers (From, Subject, Date); is it "
                                      "really an .eml file?")
        out = Text(name, max_chars)
        for header in _MAIL_HEADERS:
            if msg.get(header):
                out.add(f"{header}: {' '.join(str(msg[header]).split())}")
        body = msg.get_body(preferencelist=("plain", "html"))
        if isinstance(body, EmailMessage):
            out.add("")
            content = body.get_content()
            out.add(html_text(content.encode(), name)[0]
                    if body.get_content_subtype() == "html" else str(content).strip())
        for part in msg.iter_attachments():
            assert isinstance(part, EmailMessage)
            filename = part.get_filename() or "attachment"
            out.add("")
            out.mark(Locator(heading=f"Attachment: {filename}"))  # citations name it
            out.add(f"Attachment: {filename}")
            payload = part.get_payload(decode=True)
            if part.get_content_type() == "message/rfc822":
                inner = part.get_payload()
                payload = inner[0].as_bytes() if isinstance(inner, list) and inner and \
                    isinstance(inner[0], EmailMessage) else b""
                filename = filename if filename.endswith(".eml") else filename + ".eml"
            try:
                if not isinstance(payload, bytes):
                    raise UnreadableFileError(f"{filename}: no content")
                out.add(read_attachment(payload, filename, depth + 1)[0])
            except (UnsupportedFileError, UnreadableFileError) as exc:
                reason = str(exc).removeprefix(f"{filename}: ").split(";")[0]
                out.add(f"(not indexed: {reason})")
        return out.extracted(str(msg["Subject"]) if msg.get("Subject") else None)

    return guarded("mail", name, read)
