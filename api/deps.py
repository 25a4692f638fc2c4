"""Dependencies: readiness, the request's grant, the collection it acts on, and app state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import anyio
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.access import KEY_MISSING, Access, reach
from api.limits import UploadSlots
from rag.collections import DEFAULT
from rag.config import Settings
from rag.keys import Grant, Role
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines

STARTING = "the service is starting: the model and index are loading"

# The dependencies are async because FastAPI runs a sync dependency on its thread pool: one
# more thread hop per request, for work that never blocks.


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def pipelines_of(request: Request) -> Pipelines:
    """Every collection's pipeline, once the model and index are loaded; 503 until then."""
    state = request.app.state
    if not state.ready.is_set():
        raise HTTPException(503, STARTING)
    pipelines: Pipelines = state.pipelines
    return pipelines


async def get_pipelines(request: Request) -> Pipelines:
    return pipelines_of(request)


async def get_lane(request: Request) -> anyio.CapacityLimiter:
    """The search lane: at most ``RAG_SEARCH_THREADS`` searches and asks at once."""
    lane: anyio.CapacityLimiter = request.app.state.search_lane
    return lane


async def get_public_url(request: Request) -> str:
    """The base of the URLs responses carry (api.security.public_url), never the Host header."""
    url: str = request.app.state.public_url
    return url


async def get_upload_slots(request: Request) -> UploadSlots:
    slots: UploadSlots = request.app.state.upload_slots
    return slots


bearer = HTTPBearer(auto_error=False, description="RAG_API_KEY, or a key made by "
                                                  "`rag keys create` (the docs: Collections "
                                                  "and keys)")


async def get_grant(request: Request, credentials: Annotated[
        HTTPAuthorizationCredentials | None, Depends(bearer)]) -> Grant:
    """What the request may do; 401 without a valid key when keys are required (every /v1
    route has it: create_app adds it, so OpenAPI shows the scheme)."""
    access: Access = request.app.state.access
    grant = await access.grant(credentials.credentials if credentials else None)
    if grant is None:
        raise HTTPException(401, KEY_MISSING, headers={"WWW-Authenticate": "Bearer"})
    return grant


def collection_name(request: Request) -> str:
    """The collection a route acts on: its {collection}, or "default" on the routes
    without one."""
    return str(request.path_params.get("collection", DEFAULT))


def acting(role: Role) -> Callable[..., Awaitable[Pipeline]]:
    """A dependency: the pipeline of the route's collection, if the request may act on it
    as ``role`` (api.access.reach: 404 for a collection it does not see, 403 for a role)."""
    async def dependency(request: Request, grant: Annotated[Grant, Depends(get_grant)]
                         ) -> Pipeline:
        return reach(pipelines_of(request), grant, collection_name(request), role)

    return dependency


PipelinesDep = Annotated[Pipelines, Depends(get_pipelines)]
GrantDep = Annotated[Grant, Depends(get_grant)]
ReaderDep = Annotated[Pipeline, Depends(acting("read"))]
WriterDep = Annotated[Pipeline, Depends(acting("write"))]
SettingsDep = Annotated[Settings, Depends(get_settings)]
LaneDep = Annotated[anyio.CapacityLimiter, Depends(get_lane)]
PublicUrlDep = Annotated[str, Depends(get_public_url)]
UploadSlotsDep = Annotated[UploadSlots, Depends(get_upload_slots)]
