"""Dependencies: the pipeline from app.state, readiness, and the API key."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from rag.config import Settings
from rag.pipeline import Pipeline


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_pipeline(request: Request) -> Pipeline:
    """The pipeline, once its model and index are loaded; 503 until then."""
    state = request.app.state
    if not state.ready.is_set():
        raise HTTPException(503, "the service is starting: the model and index are loading")
    pipeline: Pipeline = state.pipeline
    return pipeline


def require_api_key(request: Request,
                    settings: Annotated[Settings, Depends(get_settings)]) -> None:
    if settings.api_key is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    expected = settings.api_key.get_secret_value().encode()
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), expected):
        raise HTTPException(401, "missing or wrong API key: send 'Authorization: Bearer <key>'",
                            headers={"WWW-Authenticate": "Bearer"})


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
