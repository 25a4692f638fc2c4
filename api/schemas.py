"""Request and response bodies. Requests forbid unknown fields."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    ValidatorFunctionWrapHandler,
    computed_field,
    field_validator,
)

from rag import filters
from rag.config import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, AnswerMode, RetrieverName
from rag.errors import InputError
from rag.metadata import GIVEN_KEY, MAX_KEYS, MAX_VALUE_CHARS, Value
from rag.retrieval import check_query
from rag.types import Locator

Retriever = RetrieverName
FILTER = ("which documents to read: a filter object ({\"field\": \"team\", \"eq\": "
          "\"legal\"}, {\"path\": \"reports/\"}, {\"doc_id\": [...]}, and/or/not) or "
          "terms in a string (\"team=legal year>=2020\"); the docs: Collections and keys, "
          "Filters")


class RequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    try:
        return check_query(value)
    except InputError as exc:
        raise ValueError(str(exc)) from None


def filter_messages(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """The filter's own messages, naming the bad part (rag.filters.explain)."""
    try:
        return handler(value)
    except ValidationError as exc:
        raise ValueError(filters.explain(exc)) from None


class SearchRequest(RequestBody):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    retriever: Retriever | None = None
    filter: filters.FilterIn | None = Field(default=None, description=FILTER)

    _check = field_validator("query")(_not_blank)
    _filter = field_validator("filter", mode="wrap")(filter_messages)


class AskRequest(RequestBody):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    retriever: Retriever | None = None
    mode: AnswerMode | None = Field(
        default=None, description="extractive (quotes) or generative (an LLM writes, every "
                                  "sentence verified); default: generative when an LLM is "
                                  "configured")
    stream: bool = Field(default=False, description="server-sent events: one `sentence` "
                                                    "event per verified sentence, then `answer`")
    filter: filters.FilterIn | None = Field(default=None, description=FILTER)

    _check = field_validator("question")(_not_blank)
    _filter = field_validator("filter", mode="wrap")(filter_messages)


class LocatorOut(BaseModel):
    """Where a span starts in the original file; the fields its format has are set."""

    page: int | None = Field(default=None, description="PDF page (or page of an image "
                                                       "file), from 1")
    pages: tuple[int, int] | None = Field(
        default=None, description="a hit whose text runs over a page break: its first and "
                                  "last page (its ``page`` is the first)")
    slide: int | None = Field(default=None, description=".pptx slide, from 1")
    sheet: str | None = Field(default=None, description=".xlsx sheet name")
    row: int | None = Field(default=None, description="spreadsheet, CSV or table row, from "
                                                      "1, the header row counted")
    table: int | None = Field(default=None, description="table of a PDF, .docx or HTML "
                                                        "file, from 1 in document order")
    caption: str | None = Field(default=None, description="the table's caption, or the "
                                                          "title line before it")
    heading: str | None = Field(default=None, description='.md/.html/.docx/.epub heading '
                                                          'path, "Installation > Linux"')
    ocr: bool = Field(default=False, description="the text was read from an image with OCR")
    confidence: float | None = Field(default=None, description="the OCR engine's mean word "
                                     "confidence on that page, 0-1; text under "
                                     "RAG_OCR_MIN_CONFIDENCE is never quoted in answers")

    @computed_field(  # type: ignore[prop-decorator]
        description='how people cite it: "p. 12", "table 2 (Rates), row 14", "p. 3 (OCR)"')
    @property
    def label(self) -> str:
        return Locator(**self.model_dump(exclude={"label"})).label()


class HitOut(BaseModel):
    rank: int
    score: float
    doc_id: str
    chunk_id: str
    title: str
    source: str
    text: str
    char_start: int
    char_end: int
    stage_scores: dict[str, float]
    locator: LocatorOut | None = Field(default=None, description="where the chunk starts, "
                                       "with ``pages`` when it runs over a page break (a "
                                       "chunk never holds two slides or sheets); null for "
                                       "plain text and indexes of format 2")


class SearchResponse(BaseModel):
    query: str
    hits: list[HitOut]


class CitationOut(BaseModel):
    n: int
    doc_id: str
    chunk_id: str
    title: str
    quote: str
    char_start: int
    char_end: int
    verified: bool
    locator: LocatorOut | None = Field(default=None, description="where the quote starts; "
                                       "null for plain text and indexes of format 2")


class AnswerSpanOut(BaseModel):
    """The phrase inside citation [1] that answers the question, as offsets into the same
    document's text (verified with the quote); null when the model is not confident."""

    text: str
    char_start: int
    char_end: int
    probability: float


class PassageOut(BaseModel):
    """A passage the answer read: retrieved (``rank``), or the neighbour of one."""

    doc_id: str
    chunk_id: str
    rank: int | None
    score: float
    stage_scores: dict[str, float]
    char_start: int = Field(description="the passage is its document's "
                            "text[char_start:char_end]")
    char_end: int
    neighbour_of: str | None = None


class SentenceScoreOut(BaseModel):
    """Why citation ``n`` was chosen: probability, each stage's logit, every feature."""

    n: int
    probability: float
    stages: dict[str, float]
    features: dict[str, float]


class TimingsOut(BaseModel):
    retrieve: float
    compose: float
    total: float


class RejectedOut(BaseModel):
    """A generated sentence left out: no citation, citation out of range, not supported,
    number or name not in the source."""

    sentence: str
    cites: list[int]
    reason: str
    probability: float | None = None
    missing: list[str] = []


class GenerationOut(BaseModel):
    model: str
    base_url: str
    prompt: str
    kept: int
    rejected: list[RejectedOut]
    llm_ms: float | None = None
    verify_ms: float | None = None
    fallback: str | None = None
    failure: str | None = None


class ProvenanceOut(BaseModel):
    """How the answer was made; an abstention lists the ``closest`` passages instead."""

    scorer: str
    candidates: int
    best_score: float | None
    threshold: float
    passages: list[PassageOut]
    sentence_scores: list[SentenceScoreOut]
    closest: list[PassageOut]
    dropped_citations: int
    snapshot: str | None
    model: str | None
    retriever: str | None
    reranker: str | None
    timings_ms: TimingsOut | None
    mode: str
    generation: GenerationOut | None = None


class SentenceEvent(BaseModel):
    """One verified sentence of a streamed answer."""

    text: str
    citations: list[CitationOut]


class AskResponse(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    abstained: bool
    answer_span: AnswerSpanOut | None = None
    provenance: ProvenanceOut


METADATA = ("automatic (source, folder, format, title, modified, size) and user-given keys "
            "(the docs: Collections and keys, Metadata)")


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    chars: int
    chunks: int
    metadata: dict[str, Value] = Field(default_factory=dict, description=METADATA)


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class SpanOut(BaseModel):
    """``text`` is exactly the document's text[start:end]."""

    start: int
    end: int
    text: str


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    text: str
    span: SpanOut | None = None
    metadata: dict[str, Value] = Field(default_factory=dict, description=METADATA)


GivenKey = Annotated[str, StringConstraints(pattern=GIVEN_KEY)]
GivenValue = Annotated[StrictStr, StringConstraints(max_length=MAX_VALUE_CHARS)] | StrictBool \
    | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)]


class MetadataPatch(RequestBody):
    """JSON Merge Patch of a document's user-given metadata: a key set to null is removed."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")  # GIVEN_KEY looks ahead

    metadata: Annotated[dict[GivenKey, GivenValue | None], Field(
        max_length=MAX_KEYS, json_schema_extra={"additionalProperties": False})]


class MetadataResponse(BaseModel):
    doc_id: str
    metadata: dict[str, Value]
    snapshot: str | None


class UploadResponse(BaseModel):
    doc_id: str
    status: Literal["added", "replaced"]
    chunks: int
    snapshot: str | None


class DeleteResponse(BaseModel):
    doc_id: str
    deleted: bool
    snapshot: str | None


class ErrorResponse(BaseModel):
    detail: str


class SyncRunOut(BaseModel):
    """One sync run: an ingest of the watched folders with pruning."""

    started: str = Field(description="when it started, ISO 8601 UTC")
    seconds: float
    trigger: Literal["start", "changes", "retry"] = Field(
        description="start: catching up at start; changes: a quiet burst of changes; "
                    "retry: after a failed run")
    changed_files: int
    added: int
    replaced: int
    deleted: int
    failed: int
    ocr_pages: int = Field(description="scanned pages and images read with OCR")
    snapshot: str | None = Field(description="the snapshot it wrote; null when nothing "
                                 "changed or it failed")
    error: str | None = Field(description="why the run failed (it is retried)")


class FailedFileOut(BaseModel):
    path: str = Field(description="relative to its watched folder")
    reason: str


class SyncOut(BaseModel):
    """`rag serve --watch`: the folders kept equal to the index and how that is going."""

    watching: list[str] = Field(description="the watched folders; empty when not watching")
    running: bool = Field(description="a run is under way")
    runs: int
    last_run: SyncRunOut | None
    pending: list[str] = Field(description="changed files not yet in a snapshot (the first "
                               "100), relative to their folder")
    pending_count: int
    failed: list[FailedFileOut] = Field(description="files the last run could not index, "
                                        "with why (their older version, if any, stays)")


class Status(BaseModel):
    status: str
    snapshot: str | None = None
    documents: int | None = None
    chunks: int | None = None
