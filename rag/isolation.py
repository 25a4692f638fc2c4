"""Parsing a file in a worker process of its own, under a time budget and a memory cap.

The readers (rag.documents) refuse hostile input as they parse, but a file can still cost
seconds of CPU and gigabytes before a limit is reached, and a parser library's memory is
not always returned to the system afterwards. So every uploaded or ingested file is parsed
in a fresh process, forked from a small server process that has only imported the readers
(multiprocessing's "forkserver": a fork costs milliseconds, and the caller's threads and
models are not copied). The worker is killed when ``timeout_s`` passes or the caller says
the work is no longer wanted (``cancelled``, e.g. the client went away), and its memory is
capped at ``memory_mb`` (RLIMIT_AS); whatever it took is returned when it exits.

Pages read with OCR (rag.ocr) are announced by the worker as each starts: each gets its own
budget (``ocr_page_timeout_s``) instead of spending the file's, and the caller can show them.
"""

from __future__ import annotations

import multiprocessing
import resource
import sys
import threading
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from rag import errors
from rag.errors import CancelledError, FileTooLargeError, RagError, UnreadableFileError
from rag.ocr import OcrOptions
from rag.types import Document

# (file name, pages read so far, pages to read with OCR in that file)
OcrProgress = Callable[[str, int, int], None]

_POLL_S = 0.05
_CONTEXT = multiprocessing.get_context("forkserver")
# The server process imports the readers once (the PDF table and OCR libraries too, if
# installed); each worker is forked from it.
_CONTEXT.set_forkserver_preload(["rag.documents", "pdfplumber", "pypdfium2", "tesserocr"])
# multiprocessing re-runs the caller's main module in every worker it starts (so that
# functions defined there can be unpickled): a script without an `if __name__ == "__main__"`
# guard would then run again, and a heavy one would be imported once per file. The worker
# needs nothing from it, so it is started while __main__ is an empty module.
_NO_MAIN = types.ModuleType("__main__")
_STARTING = threading.Lock()


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """What one file's parse may take (rag.config.Settings: RAG_MAX_DOCUMENT_CHARS,
    RAG_PARSE_TIMEOUT_S, RAG_PARSE_MEMORY_MB; RAG_OCR, RAG_OCR_PAGE_TIMEOUT_S). ``ocr`` None
    means scanned pages and images are not read."""

    max_chars: int
    timeout_s: float
    memory_mb: int
    ocr: OcrOptions | None = None
    ocr_page_timeout_s: float = 60.0


def _work(conn: Connection, data: bytes, name: str, doc_id: str, source: str,
          limits: ParseLimits) -> None:
    """In the worker: parse, and send back ("ok", Document) or ("error", class name, text)."""
    from rag.documents import parse_bytes
    from rag.ocr import PageReader

    cap = limits.memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    reader = None if limits.ocr is None else PageReader(
        limits.ocr, lambda done, total: conn.send(("page", done, total)))
    try:
        reply: tuple[Any, ...] = ("ok", parse_bytes(data, name, doc_id, source,
                                                    limits.max_chars, reader))
    except MemoryError:
        reply = ("error", FileTooLargeError.__name__,
                 f"{name}: parsing it needs more than {limits.memory_mb} MB of memory "
                 "(RAG_PARSE_MEMORY_MB); split the document")
    except RagError as exc:
        reply = ("error", type(exc).__name__, str(exc))
    except Exception as exc:  # a reader's bug: the file is still unreadable, not a crash
        reply = ("error", UnreadableFileError.__name__,
                 f"{name}: cannot be read ({type(exc).__name__}: {str(exc)[:200]})")
    conn.send(reply)
    conn.close()


def _error(kind: str, message: str) -> RagError:
    """The library error the worker named (its classes take the message alone)."""
    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, RagError)):
        cls = UnreadableFileError
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    return error


def parse(data: bytes, name: str, doc_id: str, source: str, limits: ParseLimits,
          cancelled: threading.Event | None = None,
          on_page: OcrProgress | None = None) -> Document:
    """rag.documents.parse_bytes in a worker process; the same Document or library error,
    or FileTooLargeError when ``limits.timeout_s`` passes (time spent reading pages with
    OCR not counted) or a page's OCR takes over ``limits.ocr_page_timeout_s``,
    CancelledError when ``cancelled`` is set. ``on_page`` hears of each OCR'd page. The
    worker never outlives this call."""
    receive, send = _CONTEXT.Pipe(duplex=False)
    worker = _CONTEXT.Process(target=_work, args=(send, data, name, doc_id, source, limits),
                              name=f"rag-parse {name[:60]}", daemon=True)
    deadline = time.monotonic() + limits.timeout_s
    with _STARTING:
        main = sys.modules["__main__"]
        sys.modules["__main__"] = _NO_MAIN
        try:
            worker.start()
        finally:
            sys.modules["__main__"] = main
    send.close()
    page: tuple[int, float] | None = None  # the page being read with OCR, since when
    try:
        while True:
            while not receive.poll(_POLL_S):
                now = time.monotonic()
                if cancelled is not None and cancelled.is_set():
                    raise CancelledError(f"{name}: parsing stopped, the upload was cancelled")
                if page is not None and now - page[1] > limits.ocr_page_timeout_s:
                    raise FileTooLargeError(
                        f"{name}: reading page {page[0]} with OCR took more than "
                        f"{limits.ocr_page_timeout_s:g} s (RAG_OCR_PAGE_TIMEOUT_S)")
                if page is None and now > deadline:
                    raise FileTooLargeError(f"{name}: parsing took more than "
                                            f"{limits.timeout_s:g} s (RAG_PARSE_TIMEOUT_S); "
                                            "split the document")
                if not worker.is_alive() and not receive.poll(0):
                    raise UnreadableFileError(f"{name}: the parser stopped (exit code "
                                              f"{worker.exitcode}); the file cannot be read")
            try:
                reply = receive.recv()
            except EOFError:
                raise UnreadableFileError(f"{name}: the parser stopped (exit code "
                                          f"{worker.exitcode}); the file cannot be read"
                                          ) from None
            if reply[0] != "page":
                break
            now = time.monotonic()
            if page is not None:  # OCR time is the pages' own budget, not the file's
                deadline += now - page[1]
            _, done, total = reply
            page = (done + 1, now) if done < total else None
            if on_page is not None:
                on_page(name, done, total)
    finally:
        receive.close()
        if worker.is_alive():
            worker.kill()
        worker.join()
        worker.close()
    if reply[0] == "ok":
        doc: Document = reply[1]
        return doc
    raise _error(reply[1], reply[2])
