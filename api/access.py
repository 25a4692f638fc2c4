"""Who a request is, and which collection it may reach with which role.

- No RAG_API_KEY and no key ever made (rag.keys): every request is an admin of every
  collection, as a server was before keys existed (bound to loopback by default).
- Otherwise a request needs ``Authorization: Bearer <key>``: RAG_API_KEY is the admin key of
  every collection; a scoped key (`rag keys create`) has its role in its collections. A
  missing, wrong, revoked or expired key is a 401.
- A collection a key does not see is a 404 with the very message of one that does not exist
  (CollectionNotFoundError), so a key never learns what other collections there are; a
  collection it sees with too small a role is a 403.
"""

from __future__ import annotations

import hmac
import time

import anyio.to_thread

from rag.config import Settings
from rag.errors import CollectionNotFoundError, RagError
from rag.keys import ADMIN, Grant, KeyStore, Role
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines

KEY_MISSING = "missing or wrong API key: send 'Authorization: Bearer <key>'"


class Unauthorized(RagError):
    status = 401

    def __init__(self) -> None:
        super().__init__(KEY_MISSING)


class Forbidden(RagError):
    status = 403


class Access:
    def __init__(self, settings: Settings, keys: KeyStore) -> None:
        self.settings = settings
        self.keys = keys

    def required(self) -> bool:
        """Whether requests need a key: RAG_API_KEY is set, or a key was ever made."""
        return self.settings.api_key is not None or self.keys.any()

    def _admin_key(self, token: str) -> bool:
        expected = self.settings.api_key
        return expected is not None and hmac.compare_digest(
            token.encode(), expected.get_secret_value().encode())

    def _settled(self, token: str | None) -> Grant | None | str:
        """What every way of reading a token decides before any key lookup: ADMIN (no key
        needed, or RAG_API_KEY), None (no token); otherwise the token to look up."""
        if not self.required():
            return ADMIN
        if not token:
            return None
        token = token.strip()
        return ADMIN if self._admin_key(token) else token

    async def grant(self, token: str | None) -> Grant | None:
        """The request's grant, None when it has none (a 401). A key seen before costs a
        hash; a new one its scrypt, in a worker thread (rag.keys)."""
        settled = self._settled(token)
        if not isinstance(settled, str):
            return settled
        token = settled
        found = self.keys.remembered(token, time.time())
        if found is False:
            return await anyio.to_thread.run_sync(self.keys.verify, token, time.time())
        return found  # type: ignore[return-value]

    def known(self, token: str | None) -> Grant | None:
        """``grant`` without paying a scrypt: a key verified before, or RAG_API_KEY (for the
        open routes, where an unknown key must not cost the server anything)."""
        settled = self._settled(token)
        if not isinstance(settled, str):
            return settled
        found = self.keys.remembered(settled, time.time())
        return found if isinstance(found, Grant) else None

    def grant_now(self, token: str | None) -> Grant | None:
        """``grant``, in a worker thread already (the MCP tools)."""
        settled = self._settled(token)
        return settled if not isinstance(settled, str) else self.keys.verify(settled, time.time())


def reach(pipelines: Pipelines, grant: Grant, collection: str, role: Role) -> Pipeline:
    """The collection's pipeline if ``grant`` may act on it as ``role``: 404 when it does
    not see it (or it does not exist), 403 when it sees it with a smaller role."""
    if not grant.sees(collection):
        raise CollectionNotFoundError(collection)
    pipeline = pipelines.get(collection)
    if not grant.may(role, collection):
        raise Forbidden(f"this key may {grant.role} collection {collection!r}, not {role} it: "
                        "ask an admin for a key with that role")
    return pipeline


def bearer_token(authorization: str | None) -> str | None:
    scheme, _, token = (authorization or "").partition(" ")
    return token if scheme.lower() == "bearer" and token else None
