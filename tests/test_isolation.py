"""Parsing in a worker process: the same Document or error as in process, and a worker that
is stopped by the time budget, by cancellation and by the memory cap, never outliving it."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from rag.documents import parse_bytes
from rag.errors import CancelledError, FileTooLargeError, UnsupportedFileError
from rag.isolation import ParseLimits, parse
from tests import formats_corpus as fc

LIMITS = ParseLimits(max_chars=100_000, timeout_s=60, memory_mb=2048)
# A PDF pypdf takes seconds over: many pages, each of thousands of text operators.
SLOW_PDF_PAGES = 400


def _workers() -> set[int]:
    """Grandchildren of this process: the workers the forkserver (a child) has forked."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # a process that ended meanwhile
    children = {pid for pid, parent in parents.items() if parent == os.getpid()}
    return {pid for pid, parent in parents.items() if parent in children}


def _slow_pdf() -> bytes:
    lines = [f"Line {n} of a long report on basalt and granite." for n in range(60)]
    return fc.pdf_bytes([lines] * SLOW_PDF_PAGES)


def test_the_worker_gives_what_parsing_here_gives() -> None:
    data = fc.docx_bytes()
    there = parse(data, "handbook.docx", "h", "handbook.docx", LIMITS)
    assert there == parse_bytes(data, "handbook.docx", "h", "handbook.docx", LIMITS.max_chars)
    with pytest.raises(UnsupportedFileError, match="GIF image"):
        parse(b"GIF89a" + bytes(64), "p.txt", "p", "p", LIMITS)
    with pytest.raises(FileTooLargeError, match="more than 100 characters"):
        parse(b"word " * 100, "long.txt", "l", "l", ParseLimits(100, 60, 2048))


def test_the_time_budget_stops_the_worker() -> None:
    t0 = time.monotonic()
    with pytest.raises(FileTooLargeError, match=r"more than 0\.5 s \(RAG_PARSE_TIMEOUT_S\)"):
        parse(_slow_pdf(), "slow.pdf", "s", "s", ParseLimits(10_000_000, 0.5, 2048))
    assert time.monotonic() - t0 < 5
    assert _workers() == set()  # killed and reaped


def test_cancelling_stops_the_worker() -> None:
    gone = threading.Event()
    threading.Timer(0.3, gone.set).start()
    with pytest.raises(CancelledError, match="cancelled"):
        parse(_slow_pdf(), "slow.pdf", "s", "s", ParseLimits(10_000_000, 60, 2048), gone)
    assert _workers() == set()


def test_the_memory_cap_is_a_clear_refusal_not_a_crash() -> None:
    """A 100 MB text file needs several hundred MB to decode and clean: over a 256 MB cap."""
    with pytest.raises(FileTooLargeError, match=r"more than 256 MB of memory "
                                                r"\(RAG_PARSE_MEMORY_MB\)"):
        parse(b"basalt " * 15_000_000, "big.txt", "b", "b", ParseLimits(10**9, 60, 256))
    assert parse(b"basalt " * 1000, "b.txt", "b", "b", ParseLimits(10**9, 60, 256)).text
