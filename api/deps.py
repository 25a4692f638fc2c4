"""Dependencies: the pipeline from app.state, readiness, and the API key."""

from __future__ import annotations

import hmac
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.limits import UploadSlots
from rag.config import Settings
from rag.pipeline import Pipeline

STARTING = "the service is starting: the model and index are loading"
KEY_MISSING = "missing or wrong API key: send 'Authorization: Bearer <key>'"

# The dependencies are async because FastAPI runs a sync dependency on its thread pool: one
# more thread hop per request, for work that never blocks.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def pipeline_of(request: Request) -> Pipeline:
    """The pipeline, once its model and index are loaded; 503 until then."""
    state = request.app.state
    if not state.ready.is_set():
        raise HTTPException(503, STARTING)
    pipeline: Pipeline = state.pipeline
    return pipeline


async def get_pipeline(request: Request) -> Pipeline:
    return pipeline_of(request)


async def get_lane(request: Request) -> anyio.CapacityLimiter:
    """The search lane: at most ``RAG_SEARCH_THREADS`` searches and asks at once."""
    lane: anyio.CapacityLimiter = request.app.state.search_lane
    return lane


def key_ok(settings: Settings, token: str | None) -> bool:
    """Whether ``token`` is RAG_API_KEY (compared in constant time); any, when none is set."""
    if settings.api_key is None:
        return True
    expected = settings.api_key.get_secret_value().encode()
    return token is not None and hmac.compare_digest(token.strip().encode(), expected)


async def get_public_url(request: Request) -> str:
    """The base of the URLs responses carry (api.security.public_url), never the Host header."""
    url: str = request.app.state.public_url
    return url


async def get_upload_slots(request: Request) -> UploadSlots:
    slots: UploadSlots = request.app.state.upload_slots
    return slots


bearer = HTTPBearer(auto_error=False, description="the server's RAG_API_KEY")


async def require_api_key(settings: Annotated[Settings, Depends(get_settings)],
                    credentials: Annotated[HTTPAuthorizationCredentials | None,
                                           Depends(bearer)]) -> None:
    """Every /v1 route when RAG_API_KEY is set (create_app adds it, so OpenAPI shows it)."""
    if not key_ok(settings, credentials.credentials if credentials else None):
        raise HTTPException(401, KEY_MISSING, headers={"WWW-Authenticate": "Bearer"})


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LaneDep = Annotated[anyio.CapacityLimiter, Depends(get_lane)]
PublicUrlDep = Annotated[str, Depends(get_public_url)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
