"""The /v1 routes. Sync handlers: FastAPI runs them in its threadpool, off the event loop."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, File, HTTPException, UploadFile

from api.deps import PipelineDep, SettingsDep
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


@router.post("/search", response_model=SearchResponse)
def search(body: SearchRequest, pipeline: PipelineDep) -> SearchResponse:
    hits = pipeline.search(body.query, body.k, body.retriever)
    return SearchResponse.model_validate({"query": body.query,
                                          "hits": [h.as_dict() for h in hits]})


@router.post("/ask", response_model=AskResponse)
def ask(body: AskRequest, pipeline: PipelineDep) -> AskResponse:
    answer = pipeline.ask(body.question, body.k, body.retriever)
    return AskResponse.model_validate(answer.as_dict())


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
