"""Documents to token-bounded Chunks that end at sentence or paragraph boundaries.

Budgets are counted in tiktoken cl100k tokens, and every chunk is also checked
against the embedding model's own word-piece limit: text past that limit would
be silently dropped by the model, so such a chunk is split further. A chunk never
holds two slides or two sheets (``sections``): a hit's locator is then where all of it is.
"""

from __future__ import annotations

import base64
import hashlib
from bisect import bisect_right
from collections.abc import Callable, Sequence
from functools import lru_cache
from importlib import resources

import tiktoken

from rag.sentence_split import sentence_spans
from rag.types import Chunk, Document, Mark

CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+"""
    r"""|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)


@lru_cache(maxsize=1)
def cl100k() -> tiktoken.Encoding:
    """cl100k_base built from the copy shipped in rag/data: tiktoken would download it."""
    data = resources.files("rag").joinpath("data/cl100k_base.tiktoken").read_bytes()
    if hashlib.sha256(data).hexdigest() != CL100K_SHA256:
        raise RuntimeError("rag/data/cl100k_base.tiktoken is corrupt: reinstall the package")
    ranks = {
        base64.b64decode(token): int(rank)
        for token, rank in (line.split() for line in data.splitlines() if line)
    }
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=_CL100K_PATTERN,
        mergeable_ranks=ranks,
        special_tokens={"<|endoftext|>": 100257, "<|fim_prefix|>": 100258,
                        "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260,
                        "<|endofprompt|>": 100276},
    )


Span = tuple[int, int]


def sections(marks: Sequence[Mark]) -> list[int]:
    """Offsets where a new slide or sheet starts: no chunk runs over one."""
    out: list[int] = []
    last: tuple[int | None, str | None] = (None, None)
    for m in marks:
        where = (m.locator.slide, m.locator.sheet)
        if where != (None, None) and where != last:
            if m.start > 0:
                out.append(m.start)
            last = where
    return out


class Chunker:
    """Greedy sentence packing with overlap, under two token limits."""

    def __init__(
        self,
        max_tokens: int = 200,
        overlap: int = 30,
        count_wordpieces: Callable[[str], int] | None = None,
        max_wordpieces: int | None = None,
    ) -> None:
        if overlap >= max_tokens:
            raise ValueError("chunk overlap must be smaller than the chunk size")
        self.max_tokens = max_tokens
        self.overlap = overlap
        self._count_wordpieces = count_wordpieces
        self._max_wordpieces = max_wordpieces
        self._enc = cl100k()

    def describe(self) -> dict[str, object]:
        """What the manifest records: chunks are only comparable under equal settings."""
        return {"tokenizer": "cl100k_base", "max_tokens": self.max_tokens,
                "overlap": self.overlap, "max_wordpieces": self._max_wordpieces}

    def count(self, text: str) -> int:
        return len(self._enc.encode_ordinary(text))

    def _fits_model(self, text: str) -> bool:
        if self._count_wordpieces is None or self._max_wordpieces is None:
            return True
        return self._count_wordpieces(text) <= self._max_wordpieces

    def _split_long(self, text: str, span: Span, budget: int) -> list[Span]:
        """Cut one over-long sentence into token windows, snapping cuts to spaces."""
        start, end = span
        tokens = self._enc.encode_ordinary(text[start:end])
        if len(tokens) <= budget:
            return [span]
        _, offsets = self._enc.decode_with_offsets(tokens)
        pieces: list[Span] = []
        piece_start = start
        i = budget
        while i < len(tokens):
            cut = start + offsets[i]
            window_floor = start + offsets[max(i - budget // 2, 0)]
            space = text.rfind(" ", window_floor, cut + 1)
            if space > piece_start:
                cut = space
            pieces.append((piece_start, cut))
            piece_start = cut
            while piece_start < end and text[piece_start].isspace():
                piece_start += 1
            i = next((j for j, off in enumerate(offsets) if start + off >= piece_start),
                     len(tokens)) + budget
        if piece_start < end:
            pieces.append((piece_start, end))
        return [p for p in pieces if p[0] < p[1]]

    def _units(self, doc: Document) -> list[tuple[Span, int]]:
        units: list[tuple[Span, int]] = []
        for span in sentence_spans(doc.text):
            for piece in self._split_long(doc.text, span, self.max_tokens):
                units.append((piece, self.count(doc.text[piece[0]:piece[1]])))
        return units

    def _pack(self, text: str, units: list[tuple[Span, int]], i: int,
              section: Sequence[int]) -> int:
        """Return j such that units[i:j] is the longest chunk that fits both limits and
        stays in units[i]'s section."""
        total, j = 0, i
        while j < len(units) and (j == i or (total + units[j][1] + 1 <= self.max_tokens
                                             and section[j] == section[i])):
            total += units[j][1] + (1 if j > i else 0)
            j += 1
        # Prefer ending at a paragraph break if that keeps most of the budget.
        if j < len(units):
            for k in range(j - 1, i, -1):
                gap = text[units[k - 1][0][1]:units[k][0][0]]
                if "\n" in gap:
                    if sum(n for _, n in units[i:k]) >= 0.7 * self.max_tokens:
                        j = k
                    break
        while j - i > 1 and not (
            self._fits_model(text[units[i][0][0]:units[j - 1][0][1]])
            and self.count(text[units[i][0][0]:units[j - 1][0][1]]) <= self.max_tokens
        ):
            j -= 1
        return j

    def chunk(self, doc: Document) -> list[Chunk]:
        text = doc.text
        units = self._units(doc)
        breaks = sections(doc.marks)
        section = [bisect_right(breaks, u[0][0]) for u in units]
        spans: list[Span] = []
        i = 0
        while i < len(units):
            j = self._pack(text, units, i, section)
            start, end = units[i][0][0], units[j - 1][0][1]
            if j - i == 1 and not (self._fits_model(text[start:end])
                                   and units[i][1] <= self.max_tokens):
                # One sentence alone is over a limit: halve it and retry.
                halves = self._split_long(text, units[i][0], max(8, units[i][1] // 2))
                units[i:i + 1] = [((a, b), self.count(text[a:b])) for a, b in halves]
                section[i:i + 1] = [section[i]] * len(halves)
                continue
            spans.append((start, end))
            if j >= len(units):
                break
            k, carried = j, 0
            while k - 1 > i and carried + units[k - 1][1] <= self.overlap \
                    and section[k - 1] == section[j]:
                k -= 1
                carried += units[k][1]
            i = k
        return [
            Chunk(doc_id=doc.doc_id, chunk_id=f"{doc.doc_id}#{n}", ordinal=n,
                  text=text[a:b], char_start=a, char_end=b, n_tokens=self.count(text[a:b]))
            for n, (a, b) in enumerate(spans)
        ]
