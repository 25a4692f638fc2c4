"""The pipeline's nouns: small immutable records passed from stage to stage."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any


@dataclass(frozen=True, slots=True)
class Locator:
    """Where a span is in the original file: a PDF page, a slide, a sheet and row, a table
    and row (with its caption), or the heading path ("Installation > Linux"); unset fields
    are None. ``ocr`` says the text was read from an image, with the engine's ``confidence``
    (0-1, its mean word confidence on that page or image)."""

    page: int | None = None
    slide: int | None = None
    sheet: str | None = None
    row: int | None = None
    heading: str | None = None
    table: int | None = None
    caption: str | None = None
    ocr: bool = False
    confidence: float | None = None
    pages: tuple[int, int] | None = None  # a span over several pages: its first and last

    def label(self) -> str:
        """How people cite it: "p. 12", "slide 3", "sheet Q1, row 5", "table 2 (Rates), row
        14", "Installation > Linux", "p. 4 (OCR)"."""
        table = "" if self.table is None else f"table {self.table}" + (
            f" ({self.caption})" if self.caption else "")
        page = f"p. {self.page}" if self.page is not None else ""
        if self.pages is not None:
            page = f"pp. {self.pages[0]}-{self.pages[1]}"
        parts = [page,
                 f"slide {self.slide}" if self.slide is not None else "",
                 f"sheet {self.sheet}" if self.sheet is not None else "", table,
                 f"row {self.row}" if self.row is not None else "", self.heading or ""]
        label = ", ".join(p for p in parts if p)
        return f"{label} (OCR)".lstrip() if self.ocr else label


@dataclass(frozen=True, slots=True)
class Mark:
    """From ``start`` in a document's text on (until the next mark), it is at ``locator``."""

    start: int
    locator: Locator


def locate(marks: Sequence[Mark], start: int) -> Locator | None:
    """The locator of a span starting at ``start``: the last mark at or before it."""
    i = bisect_right(marks, start, key=lambda m: m.start)
    return marks[i - 1].locator if i else None


def spanning(first: Locator | None, pages: Sequence[int]) -> Locator | None:
    """``first`` (where a span starts), naming the range when the span's text is on more
    than one page (``pages``: the page of its start and of every mark inside it)."""
    if first is None or len(set(pages)) < 2:
        return first
    return replace(first, pages=(min(pages), max(pages)))


@dataclass(frozen=True, slots=True)
class Document:
    """A cleaned source file. Every offset in the system points into ``text``; ``marks``,
    in increasing ``start`` order, say where its parts were in the original file.

    ``source`` is what clients see: the file's path relative to the folder it was ingested
    from, "upload:NAME", or what the code that made it says. ``path`` is where the file was
    on the machine that ingested it (None for uploads and documents made in code): it tells
    a re-ingest which file is which, and is never sent over the API.
    """

    doc_id: str
    title: str
    source: str
    text: str
    sha256: str
    marks: tuple[Mark, ...] = ()
    path: str | None = None
    # Metadata beyond title and source (rag.metadata): format, modified, size, and what
    # users gave (keys and string, number or boolean values).
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A token-bounded span of a document: ``document.text[char_start:char_end] == text``."""

    doc_id: str
    chunk_id: str
    ordinal: int
    text: str
    char_start: int
    char_end: int
    n_tokens: int


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its rank, final score and the score from each stage."""

    rank: int
    score: float
    chunk: Chunk
    title: str
    source: str
    stage_scores: Mapping[str, float] = field(default_factory=dict)
    row: int = -1  # the chunk's id in the index (FAISS, BM25, sentences)
    # Where the chunk starts in the original file; ``pages`` set when it runs over a page
    # break (a chunk never holds two slides or two sheets: rag.chunking).
    locator: Locator | None = None

    def as_dict(self) -> dict[str, Any]:
        """The wire form shared by ``rag search --json`` and ``POST /v1/search``."""
        c = self.chunk
        return {"rank": self.rank, "score": self.score, "doc_id": c.doc_id,
                "chunk_id": c.chunk_id, "title": self.title, "source": self.source,
                "text": c.text, "char_start": c.char_start, "char_end": c.char_end,
                "stage_scores": dict(self.stage_scores),
                "locator": None if self.locator is None else asdict(self.locator)}


@dataclass(frozen=True, slots=True)
class Citation:
    """A quote that is checked character for character against the stored document."""

    n: int
    doc_id: str
    chunk_id: str
    title: str
    quote: str
    char_start: int
    char_end: int
    verified: bool
    locator: Locator | None = None  # where the quote starts in the original file


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage an answer read: retrieved itself (``rank``), or a neighbour of one."""

    doc_id: str
    chunk_id: str
    rank: int | None
    score: float
    stage_scores: Mapping[str, float]
    # Where the passage is: its document's text[char_start:char_end] (an abstention's
    # closest passages open there).
    char_start: int
    char_end: int
    neighbour_of: str | None = None  # the retrieved chunk this one lies beside

    @classmethod
    def of(cls, hit: Hit) -> Passage:
        return cls(hit.chunk.doc_id, hit.chunk.chunk_id, hit.rank, round(hit.score, 6),
                   dict(hit.stage_scores), hit.chunk.char_start, hit.chunk.char_end)


@dataclass(frozen=True, slots=True)
class SentenceScore:
    """Why citation ``n`` was chosen: its probability, each stage's logit, every feature."""

    n: int
    probability: float
    stages: Mapping[str, float]
    features: Mapping[str, float]


@dataclass(frozen=True, slots=True)
class Timings:
    """Milliseconds spent retrieving, composing, and in all."""

    retrieve: float
    compose: float
    total: float

    @classmethod
    def of(cls, start: float, retrieved: float, end: float) -> Timings:
        """From three perf_counter readings (seconds)."""
        return cls(round((retrieved - start) * 1000, 2), round((end - retrieved) * 1000, 2),
                   round((end - start) * 1000, 2))


@dataclass(frozen=True, slots=True)
class Rejected:
    """A generated sentence left out of the answer, and why (rag.verify.Reason)."""

    sentence: str
    cites: tuple[int, ...]
    reason: str
    probability: float | None = None  # its best support's, when it got that far
    missing: tuple[str, ...] = ()  # numbers and names the cited passages lack


@dataclass(frozen=True, slots=True)
class Generation:
    """How a generated answer was written and checked; ``fallback`` when it was not used."""

    model: str
    base_url: str
    prompt: str  # the template's version
    kept: int = 0
    rejected: tuple[Rejected, ...] = ()
    llm_ms: float | None = None
    verify_ms: float | None = None
    fallback: str | None = None  # "extractive: <why>"
    failure: str | None = None  # the LLM's error, when it failed and fallback is on


@dataclass(frozen=True, slots=True)
class Provenance:
    """How an answer was made, from which snapshot, model and retriever, and how fast.

    ``passages`` are those cited; an abstention lists the ``closest`` instead.
    ``best_score`` is the scorer's probability that the candidates hold the answer at
    all (its answerability); the answer abstains when it is under ``threshold``.
    The pipeline fills in the fields after ``dropped_citations``.
    """

    scorer: str
    candidates: int
    best_score: float | None
    threshold: float
    passages: tuple[Passage, ...] = ()
    sentence_scores: tuple[SentenceScore, ...] = ()
    closest: tuple[Passage, ...] = ()
    dropped_citations: int = 0
    snapshot: str | None = None
    model: str | None = None
    retriever: str | None = None
    reranker: str | None = None
    timings_ms: Timings | None = None
    mode: str = "extractive"  # who wrote the text shown: "extractive" or "generative"
    generation: Generation | None = None  # set whenever an LLM was asked


@dataclass(frozen=True, slots=True)
class AnswerSpan:
    """The phrase inside citation [1] that answers the question: ``quote[start:end]`` of that
    citation, as offsets into its document's text like every quote (re-read from the store)."""

    text: str
    char_start: int
    char_end: int
    probability: float  # the answer-phrase model's confidence in exactly this span


@dataclass(frozen=True, slots=True)
class Answer:
    """An extractive answer, or an abstention when the evidence is too weak."""

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    provenance: Provenance
    answer_span: AnswerSpan | None = None  # in citation [1]; None when not confident

    def as_dict(self) -> dict[str, Any]:
        """The wire form shared by ``rag ask --json`` and ``POST /v1/ask``."""
        return {"question": self.question, "answer": self.text,
                "citations": [asdict(c) for c in self.citations],
                "abstained": self.abstained,
                "answer_span": None if self.answer_span is None else asdict(self.answer_span),
                "provenance": asdict(self.provenance)}
