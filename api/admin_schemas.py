"""Request and response bodies of /v1/collections and /v1/keys (api/admin.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from api.schemas import RequestBody
from rag.keys import Role


class CollectionCreate(RequestBody):
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


class KeyCreate(RequestBody):
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
