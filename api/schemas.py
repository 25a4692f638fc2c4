"""Request and response bodies. Requests forbid unknown fields."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.config import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, RetrieverName

Retriever = RetrieverName


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or whitespace")
    return value


class SearchRequest(_Request):
    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    retriever: Retriever | None = None

    _check = field_validator("query")(_not_blank)


class AskRequest(_Request):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    k: int = Field(default=DEFAULT_K, ge=1, le=MAX_K)
    retriever: Retriever | None = None

    _check = field_validator("question")(_not_blank)


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


class AskResponse(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    abstained: bool
    provenance: dict[str, Any]


class DocumentSummary(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    chars: int
    chunks: int


class DocumentList(BaseModel):
    documents: list[DocumentSummary]


class DocumentOut(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    text: str


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
