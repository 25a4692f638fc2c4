"""The MCP server (official ``mcp`` SDK): search, ask, get_document, list_documents and
list_collections as tools.

``rag mcp`` serves it over stdio (``run_stdio``: the local user, who may read every
collection); ``create_app`` routes ``/mcp`` to it over streamable HTTP behind the same keys as
/v1 (``HttpEndpoint``). Each tool takes the collection to read (default "default") and search
and ask a filter; over HTTP each call is checked against the key of the request that carries
it, so a key reaches only its collections (any other is "no collection", as one that does
not exist). Library errors come back as tool errors (``isError`` with the message), never
as a crash.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Annotated, TypeVar

import anyio
import anyio.to_thread
from fastapi.responses import JSONResponse
from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import BaseModel, Field
from starlette.datastructures import Headers, State
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from api.access import KEY_MISSING, Access, bearer_token, reach
from api.admin_schemas import CollectionList, CollectionOut
from api.deps import STARTING
from api.schemas import AnswerSpanOut, CitationOut, DocumentList, SearchResponse
from api.security import HostRule, scrub
from rag import __version__
from rag.collections import DEFAULT
from rag.config import DEFAULT_K, MAX_K, MAX_QUESTION_CHARS, AnswerMode, RetrieverName, Settings
from rag.errors import NoIndexError, RagError
from rag.filters import FilterIn
from rag.keys import ADMIN, Grant
from rag.pipeline import Pipeline
from rag.pipelines import Pipelines

log = logging.getLogger("rag.mcp")
T = TypeVar("T")

INSTRUCTIONS = ("Answers from the user's indexed documents. `ask` returns an answer whose every "
                "sentence cites a quote with its exact span in the stored text (`get_document` "
                "with start/end returns that span), or abstains when the documents don't say.")


class AskResult(BaseModel):
    question: str
    answer: str
    citations: list[CitationOut]
    abstained: bool
    answer_span: AnswerSpanOut | None = None
    mode: str


class DocumentText(BaseModel):
    doc_id: str
    title: str
    source: str
    sha256: str
    text: str = Field(description="the stored text, or its [char_start:char_end] slice")
    char_start: int
    char_end: int
    length: int = Field(description="characters in the whole stored text")


Query = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS)]
Collection = Annotated[str, Field(max_length=63, description="the collection to read "
                                  "(list_collections names those you may)")]
Where = Annotated[FilterIn | None, Field(description=(
    'which documents to read: {"field": "team", "eq": "legal"}, {"path": "reports/"}, '
    '{"doc_id": [...]}, {"and"/"or": [...]}, {"not": ...}, or terms "team=legal year>=2020"'))]
K = Annotated[int, Field(ge=1, le=MAX_K, description="passages to retrieve")]
Offset = Annotated[int | None, Field(ge=0, description="a character offset into the stored text")]


Lifespan = Callable[[MCPServer], AbstractAsyncContextManager[None]]


def create_server(pipelines: Callable[[], Pipelines], lane: anyio.CapacityLimiter,
                  lifespan: Lifespan | None = None,
                  tell: Callable[[str], str] = lambda message: message,
                  grant_of: Callable[[Context], Grant] = lambda _: ADMIN) -> MCPServer:
    """The tools over ``pipelines()``; their blocking work runs in ``lane``'s threads, each
    call allowed what ``grant_of`` its context says. A library error becomes a tool error
    whose text is ``tell(message)``."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    server: MCPServer = MCPServer("rag", version=__version__, instructions=INSTRUCTIONS,
                                  lifespan=lifespan)
    # The SDK's constructor calls logging.basicConfig (a rich handler on the root logger):
    # logging is the application's to configure, so undo it.
    for handler in root.handlers[len(handlers):]:
        root.removeHandler(handler)
    root.setLevel(level)

    async def run(ctx: Context, collection: str, work: Callable[[Pipeline], T]) -> T:
        def call() -> T:
            try:
                return work(reach(pipelines(), grant_of(ctx), collection, "read"))
            except RagError as exc:
                raise ToolError(tell(str(exc))) from exc

        return await anyio.to_thread.run_sync(call, limiter=lane)

    @server.tool()
    async def search(query: Query, ctx: Context, k: K = DEFAULT_K,
                     retriever: RetrieverName | None = None, collection: Collection = DEFAULT,
                     filter: Where = None) -> SearchResponse:
        """Ranked passages for the query, each with its document and character span."""
        hits = await run(ctx, collection, lambda p: p.search(query, k, retriever, filter))
        return SearchResponse.model_validate({"query": query, "hits": [h.as_dict() for h in hits]})

    @server.tool()
    async def ask(question: Query, ctx: Context, k: K = DEFAULT_K,
                  mode: AnswerMode | None = None, retriever: RetrieverName | None = None,
                  collection: Collection = DEFAULT, filter: Where = None) -> AskResult:
        """A short answer whose every sentence cites a verified quote (doc_id, char_start,
        char_end), or an abstention. mode: extractive (quotes) or generative (needs an LLM
        configured with RAG_LLM_BASE_URL); default: generative when one is configured."""
        answer = await run(ctx, collection, lambda p: p.ask(question, k, retriever, mode, filter))
        return AskResult.model_validate({**answer.as_dict(), "mode": answer.provenance.mode})

    @server.tool()
    async def get_document(doc_id: str, ctx: Context, start: Offset = None, end: Offset = None,
                           collection: Collection = DEFAULT) -> DocumentText:
        """The stored text of a document (what every citation offset points into), or its
        [start:end] slice."""
        doc = await run(ctx, collection, lambda p: p.document(doc_id))
        n = len(doc.text)
        lo, hi = 0 if start is None else start, n if end is None else end
        if not lo <= hi <= n:
            raise ToolError(f"bad range [{lo}:{hi}] for {doc_id!r}: need 0 <= start <= end <= "
                            f"{n}, the document's length")
        return DocumentText(doc_id=doc.doc_id, title=doc.title, source=doc.source,
                            sha256=doc.sha256, text=doc.text[lo:hi], char_start=lo, char_end=hi,
                            length=n)

    @server.tool()
    async def list_documents(ctx: Context, collection: Collection = DEFAULT) -> DocumentList:
        """The indexed documents: doc_id, title, source, sha256, characters, chunks and
        metadata."""
        return DocumentList.model_validate(
            {"documents": await run(ctx, collection, lambda p: p.documents())})

    @server.tool()
    async def list_collections(ctx: Context) -> CollectionList:
        """The collections you may read, with their documents and chunks."""
        def call() -> CollectionList:
            served, grant = pipelines(), grant_of(ctx)
            return CollectionList(collections=[
                CollectionOut.model_validate({"name": n, **served.counts(n)})
                for n in served.names() if grant.sees(n)])

        return await anyio.to_thread.run_sync(call, limiter=lane)

    return server


def run_stdio(settings: Settings) -> None:
    """Serve over stdin/stdout until the client leaves; the SDK points fd 1 at stderr meanwhile,
    so nothing but protocol reaches stdout. The model and index load in the background."""
    pipeline = Pipeline(settings)
    served = Pipelines(pipeline)

    def load() -> None:
        try:
            pipeline.load()
        except NoIndexError as exc:
            log.warning("%s", exc)
        except Exception:  # the tools report it when they call the pipeline
            log.exception("loading the model and index failed")

    @asynccontextmanager
    async def lifespan(_: MCPServer) -> AsyncIterator[None]:
        threading.Thread(target=load, name="rag-loader", daemon=True).start()
        yield

    create_server(lambda: served, anyio.CapacityLimiter(settings.search_threads),
                  lifespan).run("stdio")


def transport_security(rule: HostRule) -> TransportSecuritySettings:
    """The SDK's own DNS-rebinding check (Host and Origin headers, every method) from the
    app's host rule (api.security, which checks every route first): its names, any port.
    Where the rule allows any host (bound to every address), it is off, as in the SDK."""
    if rule.names is None:
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    names = [f"[{h}]" if ":" in h else h for h in sorted(rule.names)]
    return TransportSecuritySettings(
        allowed_hosts=[f"{n}{port}" for n in names for port in ("", ":*")],
        allowed_origins=[f"{scheme}://{n}{port}" for n in names for scheme in ("http", "https")
                         for port in ("", ":*")] + sorted(rule.origins))


class HttpEndpoint:
    """``/mcp`` (``route``): the API key as on /v1, then the SDK's streamable-HTTP session
    manager, which ``running`` starts and stops inside the app's lifespan."""

    def __init__(self, settings: Settings, rule: HostRule, access: Access,
                 path: str = "/mcp") -> None:
        self.settings = settings
        self.access = access
        self.security = transport_security(rule)
        self.route = Route(path, self)  # every method: the transport answers POST, GET, DELETE
        self._sessions: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self, state: State) -> AsyncIterator[None]:
        def ready() -> Pipelines:
            if not state.ready.is_set():
                failed = state.load_error
                raise ToolError(f"start-up failed: {failed}" if failed else STARTING)
            pipelines: Pipelines = state.pipelines
            return pipelines

        def grant_of(ctx: Context) -> Grant:
            """The key of the HTTP request carrying this call, checked again (the endpoint
            refused the request without one; this call may belong to another's session)."""
            headers = ctx.headers or {}
            grant = self.access.grant_now(bearer_token(headers.get("authorization")))
            if grant is None:
                raise ToolError(KEY_MISSING)
            return grant

        server = create_server(ready, state.search_lane,
                               tell=lambda message: scrub(message, self.settings),
                               grant_of=grant_of)
        # Builds server.session_manager; its Starlette app is unused: /mcp is a route of ours.
        server.streamable_http_app(transport_security=self.security)
        async with server.session_manager.run():
            self._sessions = server.session_manager
            try:
                yield
            finally:
                self._sessions = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope["route"] = self.route  # a plain Route does not record itself; metrics label by it
        token = bearer_token(Headers(scope=scope).get("authorization"))
        if await self.access.grant(token) is None:
            await _error(401, KEY_MISSING, {"WWW-Authenticate": "Bearer"})(scope, receive, send)
        elif self._sessions is None:
            await _error(503, STARTING, {})(scope, receive, send)
        else:
            await self._sessions.handle_request(scope, receive, send)


def _error(status: int, detail: str, headers: dict[str, str]) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)
