"""OpenAI-compatible chat: `GET /v1/models` and `POST /v1/chat/completions`.

Chat front ends (Open WebUI, LibreChat) and code using the `openai` SDK reach the
same answers as `POST /v1/ask`: one model per answer mode and collection
(``rag-extractive`` answers from the default collection, ``rag-extractive@legal`` from
"legal"; `/v1/models` lists those the key may read), the question is the last user
message, the content is the answer with its [n] markers, and each marker carries a
`url_citation` annotation whose url opens the document at the exact quoted span, in
its collection. Our full citations and provenance ride along in the `rag` field; an
optional `filter` field narrows the documents as on /v1/ask. Errors on these paths take
OpenAI's shape (api.app).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Generator, Sequence
from typing import Any, Literal
from urllib.parse import quote

import anyio
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from api.access import reach
from api.deps import GrantDep, LaneDep, PipelinesDep, PublicUrlDep, SettingsDep
from api.routes import ERRORS
from api.schemas import AskResponse
from rag import filters
from rag.collections import DEFAULT
from rag.config import AnswerMode, Settings
from rag.errors import CollectionNotFoundError, InputError, RagError
from rag.generate import Sentence
from rag.keys import Grant
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines
from rag.types import Answer, Citation

PATHS = ("/v1/models", "/v1/chat/completions")
MODELS: dict[str, AnswerMode] = {"rag-extractive": "extractive", "rag-generative": "generative"}

class ErrorDetail(BaseModel):
    message: str
    type: str
    code: str


class OpenAIError(BaseModel):
    """OpenAI's error body, which these routes answer with (api.app)."""

    error: ErrorDetail


router = APIRouter(prefix="/v1", tags=["openai-compatible"], responses={
    code: {"model": OpenAIError} for code in (*ERRORS, 502, 504)})


class ModelNotFoundError(RagError):
    status = 404


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatRequest(BaseModel):
    """What OpenAI clients send; fields we do not use (temperature, …) are accepted, and a
    ``filter`` (as on /v1/ask: the docs, Collections and keys) is read from them."""

    model_config = ConfigDict(extra="allow")
    model: str
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False

    @property
    def where(self) -> filters.Filter | None:
        """The request's filter: an extension field, kept out of the schema (the recursive
        filter in an OpenAI request's schema sends schema-driven clients in circles)."""
        given = (self.model_extra or {}).get("filter")
        return None if given is None else filters.parse(given)


class UrlCitation(BaseModel):
    url: str
    title: str
    start_index: int
    end_index: int


class Annotation(BaseModel):
    type: Literal["url_citation"] = "url_citation"
    url_citation: UrlCitation


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str
    annotations: list[Annotation] = []


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    rag: AskResponse = Field(description="our full answer: citations, provenance")


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = 0
    owned_by: str = "rag"


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


def offered(pipelines: Pipelines, grant: Grant) -> list[str]:
    """The models this key may use: each mode on each collection it sees."""
    modes = [m for m, mode in MODELS.items() if mode == "extractive"
             or pipelines.default.writer]
    return [m if name == DEFAULT else f"{m}@{name}" for name in pipelines.names()
            if grant.sees(name) for m in modes]


@router.get("/models", response_model=ModelList)
async def models(pipelines: PipelinesDep, grant: GrantDep) -> ModelList:
    """One model per answer mode and collection the key may read: ``rag-extractive`` (and
    ``rag-generative`` when an LLM is configured) on the default collection,
    ``rag-extractive@NAME`` on the collection NAME."""
    return ModelList(data=[ModelCard(id=m) for m in offered(pipelines, grant)])


def question_of(messages: Sequence[ChatMessage]) -> str:
    """The last user message's text (its text parts, for content given as parts)."""
    users = [m for m in messages if m.role == "user"]
    if not users:
        raise InputError("messages hold no user message: the last one is the question")
    content = users[-1].content
    if isinstance(content, list):
        content = " ".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    if not content or not content.strip():
        raise InputError("the last user message is empty: ask something")
    return content


def span_url(base: str, c: Citation, collection: str = DEFAULT) -> str:
    """The quoted span in its collection (a doc_id means nothing in another one)."""
    where = "" if collection == DEFAULT else f"/collections/{collection}"
    return (f"{base}/v1{where}/documents/{quote(c.doc_id, safe='')}"
            f"?start={c.char_start}&end={c.char_end}")


def marker_annotations(content: str, citations: Sequence[Citation], base: str,
                       offset: int = 0, collection: str = DEFAULT) -> list[Annotation]:
    """One url_citation per [n] marker in ``content``; indices count from ``offset``."""
    out = []
    for c in citations:
        marker = f"[{c.n}]"
        at = content.find(marker)
        while at >= 0:
            out.append(Annotation(url_citation=UrlCitation(
                url=span_url(base, c, collection), title=c.title, start_index=offset + at,
                end_index=offset + at + len(marker))))
            at = content.find(marker, at + 1)
    return sorted(out, key=lambda a: a.url_citation.start_index)


def source_event(c: Citation, base: str, collection: str = DEFAULT) -> dict[str, Any]:
    """Open WebUI's own convention for a source, with the quote and its span."""
    url = span_url(base, c, collection)
    return {"type": "source", "data": {
        "source": {"id": str(c.n), "name": c.title, "url": url},
        "document": [c.quote],
        "metadata": [{"source": url, "name": c.title, "doc_id": c.doc_id,
                      "char_start": c.char_start, "char_end": c.char_end}]}}


def _model(model: str, pipelines: Pipelines, grant: Grant) -> tuple[AnswerMode, Pipeline]:
    """The answer mode and collection a model name picks ("rag-extractive@legal"); a model
    of a collection the key does not see does not exist, as one of no collection."""
    name, _, collection = model.partition("@")
    known = offered(pipelines, grant)
    try:
        if name not in MODELS or (name != "rag-extractive" and pipelines.default.writer is None):
            raise CollectionNotFoundError(collection)
        return MODELS[name], reach(pipelines, grant, collection or DEFAULT, "read")
    except CollectionNotFoundError:
        raise ModelNotFoundError(f"the model {model[:100]!r} does not exist here: use one of "
                                 f"{', '.join(known[:20])} (GET /v1/models)") from None


@router.post("/chat/completions", response_model=ChatCompletion, responses={
    200: {"content": {"text/event-stream": {}},
          "description": "JSON, or with `stream` chat.completion.chunk events and [DONE]"}})
async def chat_completions(body: ChatRequest, pipelines: PipelinesDep, grant: GrantDep,
                           settings: SettingsDep, lane: LaneDep, base: PublicUrlDep) -> Response:
    """The OpenAI chat API: the last user message is the question, the model names the
    answer mode and the collection (``rag-extractive@NAME``); the content is the answer with
    its [n] markers, each with a ``url_citation`` annotation that opens the quoted span, and
    our whole answer is in ``rag``. An optional ``filter`` field narrows the documents as on
    /v1/ask."""
    mode, pipeline = _model(body.model, pipelines, grant)
    question = question_of(body.messages)
    events = pipeline.ask_stream(question, mode=mode, where=body.where)
    ident, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
    where = pipeline.collection
    if body.stream:
        return await _stream(events, lane, ident, created, body.model, base, settings, where)

    def work() -> dict[str, Any]:
        *_, answer = events
        assert isinstance(answer, Answer)
        notes = marker_annotations(answer.text, answer.citations, base, 0, where)
        message = AssistantMessage(content=answer.text, annotations=notes)
        return ChatCompletion(id=ident, created=created, model=body.model,
                              choices=[Choice(message=message)],
                              rag=AskResponse.model_validate(answer.as_dict())
                              ).model_dump(mode="json")

    return JSONResponse(await anyio.to_thread.run_sync(work, limiter=lane))


async def _stream(events: Generator[Sentence | Answer, None, None], lane: anyio.CapacityLimiter,
                  ident: str, created: int, model: str, base: str,
                  settings: Settings, collection: str) -> Response:
    def pull() -> Sentence | Answer | None:
        return next(events, None)

    first = await anyio.to_thread.run_sync(pull, limiter=lane)  # errors here are plain 4xx/5xx

    def frame(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        chunk = {"id": ident, "object": "chat.completion.chunk", "created": created,
                 "model": model, "choices": [{"index": 0, "delta": delta,
                                              "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode()

    async def body() -> AsyncIterator[bytes]:
        yield frame({"role": "assistant", "content": ""})
        sent, shown, event = 0, set[int](), first
        try:
            while event is not None:
                if isinstance(event, Answer):
                    rag = AskResponse.model_validate(event.as_dict()).model_dump(mode="json")
                    yield frame({}, "stop", rag=rag)
                    break
                piece = (" " if sent else "") + event.text
                new = [c for c in event.citations if c.n not in shown]
                extra: dict[str, Any] = {}
                delta: dict[str, Any] = {"content": piece}
                if settings.openai_citations == "openwebui":
                    if new:  # one source event per citation, never also annotations
                        extra["event"] = source_event(new[0], base, collection)
                else:
                    delta["annotations"] = [a.model_dump() for a in marker_annotations(
                        piece, event.citations, base, sent, collection)]
                shown |= {c.n for c in new}
                sent += len(piece)
                yield frame(delta, **extra)
                for c in new[1:] if settings.openai_citations == "openwebui" else []:
                    yield frame({"content": ""}, event=source_event(c, base, collection))
                try:
                    event = await anyio.to_thread.run_sync(pull, limiter=lane)
                except RagError as exc:
                    yield frame({}, "stop", error={"message": str(exc), "type": "server_error",
                                                   "code": exc.status})
                    break
            yield b"data: [DONE]\n\n"
        finally:
            await anyio.to_thread.run_sync(events.close)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


def error_body(status: int, message: str) -> dict[str, Any]:
    """OpenAI's error shape: {"error": {"message", "type", "code"}}."""
    kind = {400: "invalid_request_error", 401: "authentication_error",
            404: "invalid_request_error", 413: "invalid_request_error",
            429: "rate_limit_error"}.get(status, "server_error" if status >= 500
                                         else "invalid_request_error")
    code = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}.get(
        status, str(status))
    return {"error": {"message": message, "type": kind, "code": code}}
