"""Sentence spans, shared by chunking (boundaries) and answers (quotes), and question form.

Spans are (start, end) offsets into the document text, with surrounding
whitespace excluded, so ``text[start:end]`` is always a clean, quotable sentence.
"""

from __future__ import annotations

import re

# Abbreviations after which a full stop does not end a sentence.
_ABBREVIATIONS = frozenset(
    """mr mrs ms dr prof sr jr st mt gen col lt sgt capt sen rep gov pres rev
    inc ltd co corp dept univ vs etc al fig eq no vol pp ed eds approx est
    jan feb mar apr jun jul aug sep sept oct nov dec e.g i.e u.s u.k u.n""".split()
)
_BOUNDARY = re.compile(r"""[.!?…]+["'”’)\]]*(?=\s+["'“‘(\[]?[A-Z0-9])""")
_LINES = re.compile(r"[^\n]+")


_BULLET = re.compile(r"(?:[-*•·–]|\d{1,3}[.)])\s+")


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    bullet = _BULLET.match(text, start, end)
    if bullet:
        start = bullet.end()
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _ends_with_abbreviation(text: str, line_start: int, dot: int) -> bool:
    word_start = dot
    while word_start > line_start and not text[word_start - 1].isspace():
        word_start -= 1
    word = text[word_start:dot].lower().strip("\"'“‘([")
    if word in _ABBREVIATIONS:
        return True
    if word.isdigit() and not text[line_start:word_start].strip():
        return True  # a numbered list item: "2. Second item"
    # A single capital ("J. Smith") is an initial, not a sentence end.
    return len(word) == 1 and word.isalpha()


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences; every line break also ends one."""
    stop = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for line in _LINES.finditer(text, start, stop):
        s = line.start()
        for m in _BOUNDARY.finditer(text, line.start(), line.end()):
            if text[m.start()] == "." and _ends_with_abbreviation(text, s, m.start()):
                continue
            a, b = _strip_span(text, s, m.end())
            if a < b:
                spans.append((a, b))
            s = m.end()
        a, b = _strip_span(text, s, line.end())
        if a < b:
            spans.append((a, b))
    return spans

