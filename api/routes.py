"""The /v1 routes. Blocking work runs off the event loop: searches and asks in their own lane
of ``RAG_SEARCH_THREADS`` threads (see ``run_search``), the rest in FastAPI's thread pool."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Literal

import anyio.to_thread
from fastapi import APIRouter, File, HTTPException, UploadFile
from fastapi.responses import Response
from pydantic import BaseModel

from api.deps import LaneDep, PipelineDep, SettingsDep
from api.schemas import (
    AskRequest,
    AskResponse,
    DeleteResponse,
    DocumentList,
    DocumentOut,
    ErrorResponse,
    SearchRequest,
    SearchResponse,
    UploadResponse,
)

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 415, 422, 429, 503)
}

router = APIRouter(prefix="/v1", responses=ERRORS)


async def run_search(lane: anyio.CapacityLimiter, work: Callable[[], BaseModel]) -> Response:
    """Run ``work`` in the search lane and send its model as JSON.

    The response is validated and serialized in the worker thread, so a search costs one
    thread hop; for a sync endpoint FastAPI would validate the response in a second one.
    """
    def run() -> Response:
        return Response(work().model_dump_json(), media_type="application/json")

    return await anyio.to_thread.run_sync(run, limiter=lane)


@router.post("/search", response_model=SearchResponse)
async def search(body: SearchRequest, pipeline: PipelineDep, lane: LaneDep) -> Response:
    def work() -> SearchResponse:
        hits = pipeline.search(body.query, body.k, body.retriever)
        return SearchResponse.model_validate({"query": body.query,
                                              "hits": [h.as_dict() for h in hits]})

    return await run_search(lane, work)


@router.post("/ask", response_model=AskResponse)
async def ask(body: AskRequest, pipeline: PipelineDep, lane: LaneDep) -> Response:
    def work() -> AskResponse:
        return AskResponse.model_validate(pipeline.ask(body.question, body.k,
                                                       body.retriever).as_dict())

    return await run_search(lane, work)


@router.get("/documents", response_model=DocumentList)
def list_documents(pipeline: PipelineDep) -> DocumentList:
    return DocumentList.model_validate({"documents": pipeline.documents()})


@router.get("/documents/{doc_id:path}", response_model=DocumentOut)
def get_document(doc_id: str, pipeline: PipelineDep) -> DocumentOut:
    doc = pipeline.document(doc_id)
    return DocumentOut(doc_id=doc.doc_id, title=doc.title, source=doc.source, sha256=doc.sha256,
                       text=doc.text)


@router.post("/documents", response_model=UploadResponse, status_code=201)
def upload_document(pipeline: PipelineDep, settings: SettingsDep,
                    file: Annotated[UploadFile, File()]) -> UploadResponse:
    if not file.filename:
        raise HTTPException(422, "the uploaded file has no name; its extension sets its type")
    data = file.file.read(settings.max_upload_bytes + 1)
    doc_id, report = pipeline.upload(file.filename, data)
    status: Literal["added", "replaced"] = "replaced" if report.replaced else "added"
    return UploadResponse(doc_id=doc_id, status=status, chunks=report.chunks,
                          snapshot=report.snapshot)


@router.delete("/documents/{doc_id:path}", response_model=DeleteResponse)
def delete_document(doc_id: str, pipeline: PipelineDep) -> DeleteResponse:
    report = pipeline.delete(doc_id)
    return DeleteResponse(doc_id=doc_id, deleted=True, snapshot=report.snapshot)
