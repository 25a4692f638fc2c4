"""The routes of one collection: search, ask, documents. create_app mounts them twice: under
/v1 (the collection "default") and under /v1/collections/{collection}; each route's
dependency (api.deps.acting) resolves the collection and checks the request's key. Blocking
work runs off the event loop: searches and asks in their own lane of ``RAG_SEARCH_THREADS``
threads (see ``run_search``), the rest in FastAPI's thread pool."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Callable, Generator
from dataclasses import asdict
from typing import Annotated, Literal

import anyio
import anyio.to_thread
from fastapi import APIRouter, Depends, File, Form, HTTPException, Path, Query, Request, UploadFile
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from api.deps import LaneDep, ReaderDep, SettingsDep, UploadSlotsDep, WriterDep
from api.schemas import (
    AskRequest,
    AskResponse,
    DeleteResponse,
    DocumentList,
    DocumentOut,
    ErrorResponse,
    MetadataPatch,
    MetadataResponse,
    SearchRequest,
    SearchResponse,
    SentenceEvent,
    SpanOut,
    SyncOut,
    UploadResponse,
)
from api.security import scrub
from rag import metadata
from rag.collections import NAME
from rag.errors import InputError, RagError
from rag.generate import Sentence
from rag.types import Answer

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse}
    for code in (400, 401, 403, 404, 409, 413, 415, 421, 422, 429, 503)
}

router = APIRouter(responses=ERRORS)  # the routes' template: mounted() places them


CollectionName = Annotated[str, Path(pattern=f"^{NAME.pattern}$",
                                    description="the collection's name")]


async def _named(collection: CollectionName) -> None:
    """Declares (and checks) the {collection} of the routes mounted under one."""


def mounted(prefix: str) -> APIRouter:
    """The routes under ``prefix``, each an APIRoute of its own whose path is the whole
    template ("/v1/collections/{collection}/search": what /metrics labels by)."""
    named = [Depends(_named)] if "{collection}" in prefix else []
    out = APIRouter(prefix=prefix, responses=ERRORS, dependencies=named)
    for route in router.routes:
        assert isinstance(route, APIRoute)
        out.add_api_route(route.path, route.endpoint, methods=sorted(route.methods or ()),
                          response_model=route.response_model, status_code=route.status_code,
                          responses=route.responses, description=route.description,
                          name=route.name)
    return out


async def run_search(lane: anyio.CapacityLimiter, work: Callable[[], BaseModel]) -> Response:
    """Run ``work`` in the search lane and send its model as JSON.

    The response is validated and serialized in the worker thread, so a search costs one
    thread hop; for a sync endpoint FastAPI would validate the response in a second one.
    """
    def run() -> Response:
        return Response(work().model_dump_json(), media_type="application/json")

    return await anyio.to_thread.run_sync(run, limiter=lane)


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, pipeline: ReaderDep, lane: LaneDep) -> Response:
    """Ranked passages for ``query``, each with its score, every stage's score and where it
    is in its file (``locator``); with ``filter``, only from the documents it selects."""
    def work() -> SearchResponse:
        hits = pipeline.search(body.query, body.k, body.retriever, body.filter)
        return SearchResponse.model_validate({"query": body.query,
                                              "hits": [h.as_dict() for h in hits]})

    return await run_search(lane, work)


@router.post("/ask", response_model=AskResponse, responses={
    200: {"content": {"text/event-stream": {}},
          "description": "JSON, or with `stream` server-sent events: `sentence` "
                         "(SentenceEvent) per verified sentence, then `answer` (AskResponse); "
                         "`error` ({detail, status}) if the LLM fails midway"},
    502: {"model": ErrorResponse}, 504: {"model": ErrorResponse}})
async def ask(body: AskRequest, pipeline: ReaderDep, lane: LaneDep) -> Response:
    """An answer whose every sentence is a verified quote with its citation, or an abstention
    when the documents don't say; ``provenance`` says how it was chosen. ``"mode":
    "generative"`` has an LLM write it (each sentence then checked), ``"stream": true`` sends
    server-sent events, ``filter`` answers from the documents it selects only (none: an
    abstention)."""
    if body.stream:
        return await stream_answer(pipeline.ask_stream(body.question, body.k, body.retriever,
                                                       body.mode, body.filter), lane)

    def work() -> AskResponse:
        answer = pipeline.ask(body.question, body.k, body.retriever, body.mode, body.filter)
        return AskResponse.model_validate(answer.as_dict())

    return await run_search(lane, work)


def _event(name: str, data: BaseModel | dict[str, object]) -> bytes:
    payload = data.model_dump_json() if isinstance(data, BaseModel) else json.dumps(data)
    return f"event: {name}\ndata: {payload}\n\n".encode()


async def stream_answer(events: Generator[Sentence | Answer, None, None],
                        lane: anyio.CapacityLimiter) -> Response:
    """Server-sent events. The first event is awaited before answering, so a bad request
    or an unreachable LLM is still a plain 4xx/5xx; later failures arrive as `error`."""
    def pull() -> Sentence | Answer | None:
        return next(events, None)

    first = await anyio.to_thread.run_sync(pull, limiter=lane)

    async def body() -> AsyncIterator[bytes]:
        event = first
        try:
            while event is not None:
                if isinstance(event, Answer):
                    yield _event("answer", AskResponse.model_validate(event.as_dict()))
                    return
                yield _event("sentence", SentenceEvent.model_validate(
                    {"text": event.text, "citations": [asdict(c) for c in event.citations]}))
                try:
                    event = await anyio.to_thread.run_sync(pull, limiter=lane)
                except RagError as exc:
                    yield _event("error", {"detail": str(exc), "status": exc.status})
                    return
        finally:
            await anyio.to_thread.run_sync(events.close)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


@router.get("/sync", response_model=SyncOut)
def sync_status(request: Request, pipeline: ReaderDep) -> SyncOut:
    """The watched folders' sync into this collection (`rag serve --watch`, into
    RAG_WATCH_COLLECTION): its last run, the files changed and not yet indexed, the files that
    failed and why; nothing watched for any other collection."""
    syncer = request.app.state.syncer
    if syncer is None or request.app.state.settings.watch_collection != pipeline.collection:
        return SyncOut(watching=[], running=False, runs=0, last_run=None, pending=[],
                       pending_count=0, failed=[])
    status = syncer.status()
    settings = request.app.state.settings  # no server folder in what clients see
    if status["last_run"] is not None and status["last_run"]["error"]:
        status["last_run"]["error"] = scrub(status["last_run"]["error"], settings)
    status["failed"] = [{"path": f["path"], "reason": scrub(f["reason"], settings)}
                        for f in status["failed"]]
    return SyncOut.model_validate(status)


@router.get("/documents", response_model=DocumentList)
def list_documents(pipeline: ReaderDep) -> DocumentList:
    """The indexed documents: id, title, source, size, metadata."""
    return DocumentList.model_validate({"documents": pipeline.documents()})


@router.get("/documents/{doc_id:path}", response_model=DocumentOut)
def get_document(doc_id: str, pipeline: ReaderDep,
                 start: Annotated[int | None, Query(ge=0)] = None,
                 end: Annotated[int | None, Query(ge=0)] = None) -> DocumentOut:
    """The stored text; with ``start`` and ``end`` (a citation's span), also ``span``."""
    doc = pipeline.document(doc_id)
    span = None
    if start is not None or end is not None:
        a, b = start or 0, len(doc.text) if end is None else end
        if not a <= b <= len(doc.text):  # no such span in this document: 404, like no doc
            raise HTTPException(404, f"span {a}-{b} is outside {doc_id!r}, which has "
                                     f"{len(doc.text)} characters")
        span = SpanOut(start=a, end=b, text=doc.text[a:b])
    return DocumentOut(doc_id=doc.doc_id, title=doc.title, source=doc.source, sha256=doc.sha256,
                       text=doc.text, span=span,
                       metadata=metadata.full(doc.title, doc.source, doc.metadata))


REPLACE = ("replace the indexed document of the same doc_id; without it (or the form field "
           "of that name) an existing doc_id is a 409 naming it")
DISCONNECT_POLL_S = 0.25


UPLOAD_FIELDS = ("file", "replace")


@router.post("/documents", response_model=UploadResponse, status_code=201)
async def upload_document(request: Request, pipeline: WriterDep, settings: SettingsDep,
                          slots: UploadSlotsDep, file: Annotated[UploadFile, File()],
                          replace: Annotated[bool, Query(description=REPLACE)] = False,
                          replace_field: Annotated[bool, Form(alias="replace",
                                                              description=REPLACE)] = False,
                          ) -> UploadResponse:
    """Parse (in a worker process, rag.isolation) and index one file; at most
    RAG_MAX_CONCURRENT_UPLOADS at once. A client that goes away stops its parse. Every form
    field besides ``file`` and ``replace`` is user metadata (``team=legal``; values are read
    as numbers and booleans where they look like one: the docs, Collections and keys)."""
    if not file.filename:
        raise HTTPException(422, "the uploaded file has no name; its extension sets its type")
    given = await _form_metadata(request)
    if not slots.take():
        raise HTTPException(503, f"{slots.size} uploads are being indexed already, the most "
                                 "this server takes at once (RAG_MAX_CONCURRENT_UPLOADS): "
                                 f"retry in {slots.RETRY_AFTER_S} s",
                            headers={"Retry-After": str(slots.RETRY_AFTER_S)})
    try:
        data = await file.read(settings.max_upload_bytes + 1)
        name, gone = file.filename, threading.Event()

        def work() -> UploadResponse:
            doc_id, report = pipeline.upload(name, data, replace or replace_field, gone, given)
            status: Literal["added", "replaced"] = "replaced" if report.replaced else "added"
            return UploadResponse(doc_id=doc_id, status=status, chunks=report.chunks,
                                  snapshot=report.snapshot)

        return await _while_connected(request, gone, work)
    finally:
        slots.give_back()


async def _form_metadata(request: Request) -> dict[str, metadata.Value]:
    """The upload's other form fields, as metadata (the form is parsed already)."""
    pairs: dict[str, object] = {}
    for name, value in (await request.form()).multi_items():
        if name in UPLOAD_FIELDS:
            continue
        if not isinstance(value, str):
            raise InputError(f"form field {name!r}: one file per upload, in the field 'file'")
        pairs[name] = metadata.parse_value(value)
    return metadata.check(pairs, "form field")


async def _while_connected(request: Request, gone: threading.Event,
                           work: Callable[[], UploadResponse]) -> UploadResponse:
    """``work()`` in a thread; ``gone`` is set if the client closes the connection meanwhile
    (the request's body is read by then, so what arrives is the disconnect)."""
    async def watch() -> None:
        while not await request.is_disconnected():
            await anyio.sleep(DISCONNECT_POLL_S)
        gone.set()

    failure: Exception | None = None
    async with anyio.create_task_group() as watching:
        watching.start_soon(watch)
        try:
            done = await anyio.to_thread.run_sync(work)
        except Exception as exc:  # raised below, not wrapped in the task group's ExceptionGroup
            failure = exc
        finally:
            watching.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return done


@router.patch("/documents/{doc_id:path}", response_model=MetadataResponse)
def patch_metadata(doc_id: str, body: MetadataPatch, pipeline: WriterDep) -> MetadataResponse:
    """Change a document's user metadata only (JSON Merge Patch: null removes a key); its
    chunks keep their vectors, nothing is embedded again."""
    report = pipeline.update_metadata(doc_id, body.metadata)
    doc = pipeline.document(doc_id)
    return MetadataResponse(doc_id=doc_id, snapshot=report.snapshot,
                            metadata=metadata.full(doc.title, doc.source, doc.metadata))


@router.delete("/documents/{doc_id:path}", response_model=DeleteResponse)
def delete_document(doc_id: str, pipeline: WriterDep) -> DeleteResponse:
    """Remove a document: the snapshot it writes no longer holds it."""
    report = pipeline.delete(doc_id)
    return DeleteResponse(doc_id=doc_id, deleted=True, snapshot=report.snapshot)
