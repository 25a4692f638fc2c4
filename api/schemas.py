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
    field_validator,
)

from rag import filters
from rag.config import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, AnswerMode, RetrieverName
from rag.errors import InputError
from rag.keys import Role
from rag.metadata import GIVEN_KEY, MAX_KEYS, MAX_VALUE_CHARS, Value
from rag.retrieval import check_query

Retriever = RetrieverName
FILTER = ("which documents to read: a filter object ({\"field\": \"team\", \"eq\": "
          "\"legal\"}, {\"path\": \"reports/\"}, {\"doc_id\": [...]}, and/or/not) or "
          "terms in a string (\"team=legal year>=2020\"); README, Filters")


class _Request(BaseModel):
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


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    retriever: Retriever | None = None
    filter: filters.FilterIn | None = Field(default=None, description=FILTER)

    _check = field_validator("query")(_not_blank)
    _filter = field_validator("filter", mode="wrap")(filter_messages)


class AskRequest(_Request):
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

    page: int | None = Field(default=None, description="PDF page, from 1")
    slide: int | None = Field(default=None, description=".pptx slide, from 1")
    sheet: str | None = Field(default=None, description=".xlsx sheet name")
    row: int | None = Field(default=None, description="spreadsheet or CSV row, from 1, the "
                                                      "header row counted")
    heading: str | None = Field(default=None, description='.md/.html/.docx/.epub heading '
                                                          'path, "Installation > Linux"')


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
    locator: LocatorOut | None = Field(default=None, description="where the chunk starts; "
                                       "null for plain text and indexes of format 2")


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


class PassageOut(BaseModel):
    """A passage the answer read: retrieved (``rank``), or the neighbour of one."""

    doc_id: str
    chunk_id: str
    rank: int | None
    score: float
    stage_scores: dict[str, float]
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
    first_stage_best: float | None = None
    first_stage_threshold: float | None = None
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
    provenance: ProvenanceOut


METADATA = ("automatic (source, folder, format, title, modified, size) and user-given keys "
            "(README, Metadata)")


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


class MetadataPatch(_Request):
    """JSON Merge Patch of a document's user-given metadata: a key set to null is removed."""

    model_config = ConfigDict(extra="forbid", regex_engine="python-re")  # GIVEN_KEY looks ahead

    metadata: Annotated[dict[GivenKey, GivenValue | None], Field(
        max_length=MAX_KEYS, json_schema_extra={"additionalProperties": False})]


class MetadataResponse(BaseModel):
    doc_id: str
    metadata: dict[str, Value]
    snapshot: str | None


class CollectionCreate(_Request):
    name: str = Field(description="1-63 lowercase letters, digits, '-', '_'")


class CollectionOut(BaseModel):
    name: str
    documents: int
    chunks: int
    snapshot: str | None


class CollectionList(BaseModel):
    collections: list[CollectionOut]


class CollectionDeleted(BaseModel):
    name: str
    deleted: bool


class KeyCreate(_Request):
    collections: list[str] = Field(min_length=1, max_length=1000,
                                   description='its collections, or ["*"] for all')
    role: Role
    expires: str | None = Field(default=None, description="a date (2025-12-31: it stops "
                                "working at 00:00 UTC that day) or an ISO 8601 time")
    label: str = Field(default="", max_length=200)


class KeyOut(BaseModel):
    id: str
    role: Role
    collections: list[str]
    label: str
    created: str
    expires: str | None
    revoked: str | None
    active: bool


class KeyCreated(KeyOut):
    key: str = Field(description="the key itself: shown this once, never stored")


class KeyList(BaseModel):
    keys: list[KeyOut]


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


class Status(BaseModel):
    status: str
    snapshot: str | None = None
    documents: int | None = None
    chunks: int | None = None
