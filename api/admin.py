"""/v1/collections and /v1/keys: collections (list, create, delete, with document counts)
and API keys (list, create, revoke), each showing only what the request's key may see."""

from __future__ import annotations

import time
from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Path, Request

from api.access import Forbidden, reach
from api.admin_schemas import (
    CollectionCreate,
    CollectionDeleted,
    CollectionList,
    CollectionOut,
    KeyCreate,
    KeyCreated,
    KeyList,
    KeyOut,
)
from api.deps import GrantDep, PipelinesDep
from api.routes import ERRORS, CollectionName
from rag.errors import CollectionNotFoundError
from rag.keys import ALL, Grant, KeyStore, check_scope
from rag.pipelines import Pipelines

router = APIRouter(prefix="/v1", responses=ERRORS, tags=["collections and keys"])


def _out(pipelines: Pipelines, name: str) -> CollectionOut:
    return CollectionOut.model_validate({"name": name, **pipelines.counts(name)})


@router.get("/collections", response_model=CollectionList)
def list_collections(pipelines: PipelinesDep, grant: GrantDep) -> CollectionList:
    """The collections this key may read, with their documents and chunks."""
    return CollectionList(collections=[_out(pipelines, n) for n in pipelines.names()
                                       if grant.sees(n)])


@router.post("/collections", response_model=CollectionOut, status_code=201)
async def create_collection(body: CollectionCreate, pipelines: PipelinesDep,
                            grant: GrantDep) -> CollectionOut:
    """A new, empty collection (an admin key of every collection: "*")."""
    _admin_of_all(grant, "make collections")
    await anyio.to_thread.run_sync(pipelines.create, body.name)
    return _out(pipelines, body.name)


@router.get("/collections/{collection}", response_model=CollectionOut)
def get_collection(collection: CollectionName, pipelines: PipelinesDep,
                   grant: GrantDep) -> CollectionOut:
    """One collection's documents, chunks and snapshot (a 404 for one this key does not
    see, as for one that does not exist)."""
    reach(pipelines, grant, collection, "read")
    return _out(pipelines, collection)


@router.delete("/collections/{collection}", response_model=CollectionDeleted)
def delete_collection(collection: CollectionName, pipelines: PipelinesDep,
                      grant: GrantDep) -> CollectionDeleted:
    """Delete a collection and every document in it, at once and whole."""
    reach(pipelines, grant, collection, "admin")
    pipelines.delete(collection)
    return CollectionDeleted(name=collection, deleted=True)


def _admin_of_all(grant: Grant, what: str) -> None:
    if grant.role != "admin" or grant.collections is not None:
        raise Forbidden(f"only an admin key of every collection (RAG_API_KEY, or a key made "
                        f"with --role admin --collection '*') may {what}")


def _keys(request: Request) -> KeyStore:
    keys: KeyStore = request.app.state.keys
    return keys


@router.get("/keys", response_model=KeyList)
def list_keys(request: Request, grant: GrantDep) -> KeyList:
    """The keys of this admin's collections (never their secrets)."""
    _admin(grant)
    return KeyList.model_validate({"keys": _keys(request).listed(time.time(), grant)})


@router.post("/keys", response_model=KeyCreated, status_code=201)
def create_key(body: KeyCreate, request: Request, pipelines: PipelinesDep,
               grant: GrantDep) -> KeyCreated:
    """A new key for some of this admin's collections; the key is in this response only."""
    _admin(grant)
    scope = check_scope(body.collections)
    if scope == (ALL,):
        _admin_of_all(grant, "make keys of every collection")
    for name in scope if scope != (ALL,) else ():
        if not grant.sees(name) or not pipelines.collections.exists(name):
            raise CollectionNotFoundError(name)
    key, record = _keys(request).create(scope, body.role, time.time(), body.expires,
                                        body.label)
    return KeyCreated.model_validate({**record.public(time.time()), "key": key})


@router.delete("/keys/{key_id}", response_model=KeyOut)
def revoke_key(key_id: Annotated[str, Path(max_length=40)], request: Request,
               grant: GrantDep) -> KeyOut:
    """Revoke a key: every request with it is refused (401) from now on."""
    _admin(grant)
    record = _keys(request).revoke(key_id, time.time(), grant)
    return KeyOut.model_validate(record.public(time.time()))


def _admin(grant: Grant) -> None:
    if grant.role != "admin":
        raise Forbidden("only an admin key manages keys")

